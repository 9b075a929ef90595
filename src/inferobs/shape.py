"""Summaries of a model's input that say what it looked like, never what it held.

A summary gives kind, shape, dtype, sizes and counts. Strings become lengths,
numbers become their type. Dict keys are request data too (a user id used as a
key, a header name), so a key's text is written only when it is on an
allowlist: the envelope keys of model servers and gateways (`ENVELOPE_KEYS`)
plus the ones the user declares (``input_keys``). Every other key is counted,
and its value summarised, without its text. A numpy structured dtype's field
names are kept out the same way.

Nested lists, the JSON batches of TensorFlow Serving, SageMaker and KServe, get
a shape and a leaf type inferred from a bounded sample: the first and last rows
are checked fully and a few rows in between by length, and ``sampled: true``
says that not every element was looked at.

numpy, pandas and other array libraries are recognised by their class's module
and attributes, never imported: a handler that does not use pandas must not
pay for importing it. Work is bounded by depth and by a count of visited
elements shared fairly between a dict's keys, so a huge or self-referencing
input costs the same as a small one.
"""

from __future__ import annotations

from itertools import islice

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Collection, Iterator
    from typing import Any

__all__ = ["ENVELOPE_KEYS", "summarize"]

MAX_KEYS = 32  # keys of one dict covered by its summary
MAX_KEY_TEXT = 64
MAX_OTHER_SHAPES = 4  # distinct value summaries listed for the keys whose text is not written
SPOT_CHECKS = 8  # rows between the first and the last whose length is checked
ROW_COST = 4  # budget a nested row costs besides its elements: a call is dearer than a leaf

# Keys that public request formats define, so their text says nothing about a
# caller: model servers (TensorFlow Serving, KServe v1/v2 and Triton, SageMaker,
# MLflow, Hugging Face) and event sources (API Gateway REST/HTTP, function URLs,
# SQS/SNS/S3 batches, EventBridge).
ENVELOPE_KEYS = frozenset(
    {
        # model servers
        "instances",
        "inputs",
        "outputs",
        "signature_name",
        "parameters",
        "data",
        "features",
        "name",
        "shape",
        "datatype",
        "dataframe_split",
        "dataframe_records",
        "columns",
        "index",
        "text",
        "texts",
        "prompt",
        "messages",
        "image",
        "images",
        "options",
        # gateways and event sources
        "body",
        "isBase64Encoded",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "httpMethod",
        "path",
        "resource",
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "cookies",
        "Records",
        "detail",
        "detail-type",
        "source",
    }
)

_SCALAR_KINDS = {type(None): "none", bool: "bool", int: "int", float: "float", complex: "complex"}
# what may sit at the bottom of a nested list with a shape
_LEAF_KINDS = {**_SCALAR_KINDS, str: "str", bytes: "bytes"}
_SEQUENCES = (list, tuple)


class _Budget:
    """Elements a summary may still visit."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def summarize(
    value: object, max_depth: int = 4, max_items: int = 2048, keys: Collection[str] = ()
) -> dict[str, Any]:
    """Describe ``value`` by structure only: a small JSON-ready dict, never raising.

    ``keys`` are dict keys whose text may be written, besides `ENVELOPE_KEYS`.
    """
    return _summary(value, max_depth, _Budget(max_items), _allowed(keys))


# the last keys asked for and their union with the envelope keys: the settings
# pass the same tuple on every call, so the union is built once
_last_allowed: tuple[object, frozenset[str]] = ((), ENVELOPE_KEYS)


def _allowed(keys: Collection[str]) -> frozenset[str]:
    global _last_allowed
    last = _last_allowed
    if keys is last[0]:
        return last[1]
    given = keys if isinstance(keys, (tuple, frozenset)) else tuple(keys)
    if given == last[0]:
        return last[1]
    allowed = ENVELOPE_KEYS.union(key for key in given if isinstance(key, str))
    _last_allowed = (given, allowed)  # one assignment: threads see the old pair or the new
    return allowed


def _summary(value: object, depth: int, budget: _Budget, allowed: frozenset[str]) -> dict[str, Any]:
    budget.left -= 1
    cls = type(value)
    kind = _SCALAR_KINDS.get(cls)
    if kind is not None:
        return {"kind": kind}
    try:
        kind = _ARRAY_KINDS.get(cls)
        if kind is not None:
            return _array(value, kind)
        if cls is str:
            return _text(value)  # type: ignore[arg-type]
        if cls is bytes or cls is bytearray:
            return _binary(value)  # type: ignore[arg-type]
        if cls is memoryview:
            return {"kind": "bytes", "nbytes": value.nbytes}  # type: ignore[attr-defined]
        if isinstance(value, _SEQUENCES):
            return _sequence(value, depth, budget, allowed)
        if isinstance(value, dict):
            return _mapping(value, depth, budget, allowed)
        return _object(value, cls, budget)
    except Exception:  # a hostile __len__, __iter__ or property: say we could not look
        return {"kind": _type_name(cls), "unreadable": True}


def _sequence(
    value: list[Any] | tuple[Any, ...], depth: int, budget: _Budget, allowed: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "list" if isinstance(value, list) else "tuple",
        "n_items": len(value),
    }
    if not value:
        return out
    nested = _grid(value, depth, budget) if budget.left > 0 else None
    if nested is not None:
        out["shape"], out["dtype"], sampled = nested
        if sampled:
            out["sampled"] = True
    elif depth > 0 and budget.left > 0:
        out["first"] = _summary(value[0], depth - 1, budget, allowed)
    else:
        out["truncated"] = True
    return out


def _grid(
    value: list[Any] | tuple[Any, ...], depth: int, budget: _Budget
) -> tuple[list[int], str, bool] | None:
    """(shape, leaf kind, sampled) when ``value`` looks like a rectangular nest of leaves.

    The first row is checked with half the budget; when what it cost, times the
    other rows, fits what is left they are all checked too, else the lengths of
    a few evenly spaced rows and then the last row are. None when a checked
    part is ragged, holds something other than leaves, or nests deeper than
    ``depth`` levels below this one. Every row looked at costs budget besides
    its elements (ROW_COST when it holds rows), so rows of empty rows are
    bounded too.
    """
    n = len(value)
    if n == 0:
        return [0], "none", False
    if not isinstance(value[0], _SEQUENCES):
        return _leaves(value, n, budget)
    if depth <= 0:
        return None
    rest = budget.left
    share = budget.left = max(rest // 2, 1) if n > 1 else rest
    first = _grid(value[0], depth - 1, budget)
    cost = share - budget.left
    if first is None:
        budget.left = rest - cost
        return None
    shape, leaf, sampled = first
    # a row of leaves is read in one pass; a row of rows costs a call per row
    per_row = 1 if len(shape) == 1 else ROW_COST
    cost += per_row
    budget.left = rest - cost
    rows: Any = islice(value, 1, None)
    if len(shape) == 1 and cost * (n - 1) <= budget.left:
        return _leaf_rows(rows, n, shape[0], first, budget)
    if cost * (n - 1) > budget.left:
        sampled = True
        for index in _spots(n):
            budget.left -= 1
            row = value[index]
            if not isinstance(row, _SEQUENCES) or len(row) != shape[0]:
                return None
        rows = (value[-1],)
    for row in rows:
        if budget.left <= 0:
            sampled = True
            break
        budget.left -= per_row
        if not isinstance(row, _SEQUENCES):
            return None
        found = _grid(row, depth - 1, budget)
        if found is None or found[0] != shape:
            return None
        leaf = _merge(leaf, found[1])
        sampled = sampled or found[2]
    return [n, *shape], leaf, sampled


def _leaf_rows(
    rows: Any, n: int, width: int, first: tuple[list[int], str, bool], budget: _Budget
) -> tuple[list[int], str, bool] | None:
    """The rows after the first, all of ``width`` leaves, checked in one pass.

    Called when the budget holds them all: each is looked at in full, and no
    call per row is paid.
    """
    types: set[type] = set()
    for row in rows:
        if not isinstance(row, _SEQUENCES) or len(row) != width:
            return None
        types.update(map(type, row))
    budget.left -= (n - 1) * (width + 1)
    kind = _kind(types)
    if kind is None:
        return None
    _, leaf, sampled = first
    return [n, width], _merge(leaf, kind) if types else leaf, sampled


def _spots(n: int) -> Iterator[int]:
    """Up to SPOT_CHECKS indices spread evenly strictly between the first and the last."""
    inner = n - 2
    count = min(SPOT_CHECKS, inner)
    return (1 + inner * (2 * i + 1) // (2 * count) for i in range(count))


def _leaves(
    value: list[Any] | tuple[Any, ...], n: int, budget: _Budget
) -> tuple[list[int], str, bool] | None:
    """A sequence whose first item is not a sequence: all leaves, or the ends within budget."""
    if value[0].__class__ not in _LEAF_KINDS:  # a list of dicts or objects: no shape
        return None
    if n <= budget.left:
        types = set(map(type, value))
        sampled = False
    else:
        half = max(budget.left // 2, 1)
        types = set(map(type, value[:half])) | set(map(type, value[-half:]))
        n = min(2 * half, n)
        sampled = n < len(value)
    budget.left -= n
    leaf = _kind(types)
    if leaf is None:
        return None
    return [len(value)], leaf, sampled


def _kind(types: set[type]) -> str | None:
    """The leaf kind of these types ("" for none at all), None if one is not a leaf."""
    leaf = ""
    for cls in types:
        kind = _LEAF_KINDS.get(cls)
        if kind is None:  # a dict, an object, or a nested sequence among the leaves
            return None
        leaf = _merge(leaf, kind) if leaf else kind
    return leaf


def _merge(a: str, b: str) -> str:
    if a == b:
        return a
    return "float" if {a, b} <= {"int", "float"} else "mixed"


def _mapping(
    value: dict[Any, Any], depth: int, budget: _Budget, allowed: frozenset[str]
) -> dict[str, Any]:
    n = len(value)
    out: dict[str, Any] = {"kind": "dict", "n_items": n}
    if not n:
        return out
    if depth <= 0 or budget.left <= 0:
        out["truncated"] = True
        return out
    covered = min(n, MAX_KEYS, budget.left)
    items: dict[str, Any] = {}
    shapes: list[dict[str, Any]] = []  # distinct summaries of unlisted keys' values
    counts: list[int] = []  # how many values each describes
    unlisted = 0
    left = covered
    for key, item in islice(value.items(), covered):
        # each key gets its share of what is left, so the first cannot take it all
        rest = budget.left
        share = rest // left if rest >= left else 1
        left -= 1
        budget.left = share
        summary = _summary(item, depth - 1, budget, allowed)
        budget.left = rest - (share - budget.left)
        if key.__class__ is str and key in allowed:
            items[key] = summary
            continue
        unlisted += 1
        if summary in shapes:
            counts[shapes.index(summary)] += 1
        elif len(shapes) < MAX_OTHER_SHAPES:
            shapes.append(summary)
            counts.append(1)
        else:
            out["truncated"] = True
    if covered < n:
        out["truncated"] = True
        unlisted = n - _listed(value, allowed)
    if items:
        out["items"] = items
    if unlisted:
        out["other_keys"] = unlisted
    if shapes:
        out["other_values"] = [
            {"count": count, **summary} for count, summary in zip(counts, shapes, strict=True)
        ]
    return out


def _listed(value: dict[Any, Any], allowed: frozenset[str]) -> int:
    """How many of ``value``'s keys are allowed, looking up the smaller of the two."""
    if len(allowed) < len(value):
        return sum(1 for key in allowed if key in value)
    return sum(1 for key in value if key.__class__ is str and key in allowed)


# What model servers receive as text and bytes, told apart cheaply: a base64 payload
# (an image in a JSON body) says its decoded size; a data URL its media type too; a
# multipart body (a form upload) its parts' count and sizes. Never their contents.
_ENCODED_MIN = 64  # shorter strings are just strings
_BASE64_MIN = 128  # base64 shorter than this is as likely an id or a hash
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_BASE64 = str.maketrans("", "", _BASE64 + "-_")  # the URL-safe alphabet too
_NOT_HEX = str.maketrans("", "", "0123456789abcdefABCDEF")
_MEDIA_TYPES = ("image", "audio", "video", "text", "application", "font", "model")
_MAX_PARTS = 32
_WINDOW = 64  # base64 is told by three windows of this many characters, never the whole


def _text(value: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "str", "len": len(value)}
    n = len(value)
    if n < _ENCODED_MIN:
        return out
    if value.startswith("data:"):  # data:image/png;base64,....
        media, marker, _ = value[:128].partition(";base64,")
        kind, slash, sub = media[5:].partition("/")
        plain = sub.replace("-", "").replace(".", "").replace("+", "")
        if marker and slash and kind in _MEDIA_TYPES and plain.isalnum() and len(sub) <= 64:
            out["media_type"] = media[5:]  # a registered form, never free text
            out["base64_bytes"] = _decoded(value, len(media) + len(marker))
        return out
    if value.startswith("--"):
        parts = _parts(value, "\r\n", "\r\n\r\n")
        if parts is not None:
            out["multipart_bytes"] = parts
        return out
    if n >= _BASE64_MIN and n % 4 == 0:
        middle = n // 2
        windows = (value[:_WINDOW], value[middle : middle + _WINDOW], value[-_WINDOW:])
        if all(not w.translate(_NOT_BASE64) for w in windows) and value[:_WINDOW].translate(
            _NOT_HEX
        ):  # all base64 where looked at, and not plain hex (a digest)
            out["base64_bytes"] = _decoded(value, 0)
    return out


def _binary(value: bytes | bytearray) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "bytes", "nbytes": len(value)}
    if len(value) >= _ENCODED_MIN and value.startswith(b"--"):
        parts = _parts(value, b"\r\n", b"\r\n\r\n")
        if parts is not None:
            out["multipart_bytes"] = parts
    return out


def _decoded(value: str, start: int) -> int:
    """The bytes base64 text from ``start`` decodes to (padding or not)."""
    n = len(value) - start
    return n * 3 // 4 - value.count("=", len(value) - 2)


def _parts(value: Any, newline: Any, blank: Any) -> list[int] | None:
    """Each part's body size, when ``value`` is a multipart body: a first line that is
    the boundary, each part headed by headers and a blank line; else None."""
    end = value.find(newline, 0, 202)  # a boundary line is at most 70 characters and "--"
    if end < 3:
        return None
    boundary = newline + value[:end]
    dashes = "--" if isinstance(value, str) else b"--"
    sizes: list[int] = []
    at = end + len(newline)
    while len(sizes) < _MAX_PARTS:
        body = value.find(blank, at)
        close = value.find(boundary, at)
        if body < 0 or close < 0 or body > close:
            break
        sizes.append(close - body - len(blank))
        at = close + len(boundary)
        if value[at : at + 2] == dashes:  # the closing boundary
            return sizes
        at += len(newline)
    return sizes or None


def _object(value: Any, cls: type, budget: _Budget) -> dict[str, Any]:
    module = cls.__module__.partition(".")[0]
    name = cls.__name__
    if module == "PIL" and hasattr(value, "mode") and hasattr(value, "size"):
        # a PIL image, by its class's module (never imported): size and mode say it all
        return {"kind": "PIL.Image", "size": _ints(value.size), "mode": str(value.mode)[:16]}
    if module == "pandas":  # column names are data: only dtypes and counts are written
        if name == "DataFrame":
            counts: dict[str, int] = {}
            for dtype in islice(value.dtypes, max(budget.left, 1)):
                key = _dtype(dtype)
                counts[key] = counts.get(key, 0) + 1
            budget.left -= len(counts)
            return {"kind": "dataframe", "shape": _ints(value.shape), "dtypes": counts}
        if name == "Series":
            return {"kind": "series", "shape": _ints(value.shape), "dtype": _dtype(value.dtype)}
    if isinstance(getattr(value, "shape", None), (tuple, list)) and hasattr(value, "dtype"):
        # numpy, torch (a Size is a tuple), jax, cupy, ...: by their attributes
        kind = "ndarray" if module == "numpy" and name == "ndarray" else _type_name(cls)
        if len(_ARRAY_KINDS) < _CACHE_LIMIT:
            _ARRAY_KINDS[cls] = kind
        return _array(value, kind)
    return {"kind": _type_name(cls)}


# array classes met before (numpy, torch, jax, ...): the next one skips detection
_ARRAY_KINDS: dict[type, str] = {}
# dtype -> its text; numpy builds dtype names in Python, which is slow per call
_DTYPE_TEXT: dict[object, str] = {}
_CACHE_LIMIT = 256
_STRUCTURED = "structured"


def _array(value: Any, kind: str) -> dict[str, Any]:
    dtype = value.dtype
    out: dict[str, Any] = {"kind": kind, "shape": _ints(value.shape), "dtype": _dtype(dtype)}
    if out["dtype"] is _STRUCTURED:
        out["fields"] = len(getattr(dtype, "names", None) or ())
    nbytes = getattr(value, "nbytes", None)
    if nbytes.__class__ is int:
        out["nbytes"] = nbytes
    # torch: where it lives (a torch.device; numpy's array-API "cpu" says nothing)
    device = getattr(value, "device", None)
    if device is not None and not isinstance(device, (str, int)) and not callable(device):
        out["device"] = str(device)[:32]
    return out


def _ints(shape: Any) -> list[int]:
    return [int(n) for n in shape]


def _dtype(dtype: object) -> str:
    try:
        return _DTYPE_TEXT[dtype]
    except (KeyError, TypeError):  # not seen yet, or unhashable
        pass
    if getattr(dtype, "names", None):
        text = _STRUCTURED  # numpy's text of a record dtype spells its field names
    else:
        text = str(dtype)
        # Arrow types nest names: "struct<name: type>", "list<item: struct<name: ...>>"
        cut = text.find("<")
        if cut > 0:  # ("<U5" is numpy's byte order: nothing nested)
            text = text[:cut]
        text = text[:MAX_KEY_TEXT]
    try:
        if len(_DTYPE_TEXT) < _CACHE_LIMIT:
            _DTYPE_TEXT[dtype] = text
    except TypeError:
        pass
    return text


def _type_name(cls: type) -> str:
    module = cls.__module__
    if module == "builtins":
        return cls.__name__
    return f"{module.partition('.')[0]}.{cls.__name__}"
