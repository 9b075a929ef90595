"""Summaries of a model's input that say what it looked like, never what it held.

A summary gives kind, shape, dtype, sizes and counts. Strings become lengths,
numbers become their type; dict keys are kept (they are the input's schema)
when they are strings of at most 64 characters, and left out otherwise.

numpy, pandas and other array libraries are recognised by their class's module
and attributes, never imported: a handler that does not use pandas must not
pay for importing it. Work is bounded by depth and by a count of visited
elements, so a huge or self-referencing input costs the same as a small one.
"""

from __future__ import annotations

from itertools import islice

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from typing import Any

__all__ = ["summarize"]

MAX_KEYS = 32
MAX_KEY_TEXT = 64
_SCALAR_KINDS = {type(None): "none", bool: "bool", int: "int", float: "float", complex: "complex"}
_SEQUENCES = (list, tuple)


class _Budget:
    """Elements a summary may still visit."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def summarize(value: object, max_depth: int = 4, max_items: int = 2048) -> dict[str, Any]:
    """Describe ``value`` by structure only: a small JSON-ready dict, never raising."""
    return _summary(value, max_depth, _Budget(max_items))


def _summary(value: object, depth: int, budget: _Budget) -> dict[str, Any]:
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
            return {"kind": "str", "len": len(value)}  # type: ignore[arg-type]
        if cls is bytes or cls is bytearray:
            return {"kind": "bytes", "nbytes": len(value)}  # type: ignore[arg-type]
        if cls is memoryview:
            return {"kind": "bytes", "nbytes": value.nbytes}  # type: ignore[attr-defined]
        if isinstance(value, _SEQUENCES):
            return _sequence(value, depth, budget)
        if isinstance(value, dict):
            return _mapping(value, depth, budget)
        return _object(value, cls, budget)
    except Exception:  # a hostile __len__, __iter__ or property: say we could not look
        return {"kind": _type_name(cls), "unreadable": True}


def _sequence(value: list[Any] | tuple[Any, ...], depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "list" if isinstance(value, list) else "tuple",
        "n_items": len(value),
    }
    if not value:
        return out
    nested = _rectangular(value, depth, budget)
    if nested is not None:
        out["shape"], out["dtype"] = nested
    elif depth > 0 and budget.left > 0:
        out["first"] = _summary(value[0], depth - 1, budget)
    else:
        out["truncated"] = True
    return out


def _rectangular(
    value: list[Any] | tuple[Any, ...], depth: int, budget: _Budget
) -> tuple[list[int], str] | None:
    """(shape, leaf type) when ``value`` is a rectangular nest of scalars, else None."""
    shape = [len(value)]
    level: list[Any] = [value]
    for _ in range(depth + 1):
        width: int | None = None
        leaf: str | None = None
        children: list[Any] = []
        for item in level:
            for child in item:
                budget.left -= 1
                if budget.left < 0:
                    return None
                if isinstance(child, _SEQUENCES):
                    if leaf is not None or (width is not None and len(child) != width):
                        return None
                    width = len(child)
                    children.append(child)
                else:
                    kind = _SCALAR_KINDS.get(type(child))
                    if kind is None or width is not None:
                        return None
                    if leaf is None:
                        leaf = kind
                    elif leaf != kind:
                        leaf = "float" if {leaf, kind} <= {"int", "float"} else "mixed"
        if leaf is not None:
            return shape, leaf
        if width is None:  # the sequences of the level above were all empty
            return shape, "none"
        shape.append(width)
        level = children
    return None


def _mapping(value: dict[Any, Any], depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "dict", "n_items": len(value)}
    if depth <= 0 or budget.left <= 0:
        if value:
            out["truncated"] = True
        return out
    items: dict[str, Any] = {}
    for key, item in islice(value.items(), MAX_KEYS):
        if budget.left <= 0:
            break
        if isinstance(key, str) and len(key) <= MAX_KEY_TEXT:
            items[key] = _summary(item, depth - 1, budget)
    if items:
        out["items"] = items
    if len(items) < len(value):
        out["truncated"] = True
    return out


def _object(value: Any, cls: type, budget: _Budget) -> dict[str, Any]:
    module = cls.__module__.partition(".")[0]
    name = cls.__name__
    if module == "pandas":
        if name == "DataFrame":
            counts: dict[str, int] = {}
            for dtype in islice(value.dtypes, max(budget.left, 1)):
                key = str(dtype)
                counts[key] = counts.get(key, 0) + 1
            budget.left -= len(counts)
            return {"kind": "dataframe", "shape": _ints(value.shape), "dtypes": counts}
        if name == "Series":
            return {"kind": "series", "shape": _ints(value.shape), "dtype": str(value.dtype)}
    if isinstance(getattr(value, "shape", None), (tuple, list)) and hasattr(value, "dtype"):
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


def _array(value: Any, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "shape": _ints(value.shape), "dtype": _dtype(value.dtype)}
    nbytes = getattr(value, "nbytes", None)
    if nbytes.__class__ is int:
        out["nbytes"] = nbytes
    return out


def _ints(shape: Any) -> list[int]:
    return [int(n) for n in shape]


def _dtype(dtype: object) -> str:
    try:
        return _DTYPE_TEXT[dtype]
    except (KeyError, TypeError):  # not seen yet, or unhashable
        pass
    text = str(dtype)[:MAX_KEY_TEXT]
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
