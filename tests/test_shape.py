"""Input summaries: structure only, bounded, never raising, never importing numpy/pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferobs.shape import ENVELOPE_KEYS, MAX_KEYS, summarize


def test_numpy_arrays_and_scalars() -> None:
    x = np.zeros((1, 20), dtype=np.float32)
    assert summarize(x) == {"kind": "ndarray", "shape": [1, 20], "dtype": "float32", "nbytes": 80}
    assert summarize(np.int64(3)) == {
        "kind": "numpy.int64",
        "shape": [],
        "dtype": "int64",
        "nbytes": 8,
    }


def test_pandas_frames_and_series() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2], "c": ["x", "y"], "d": [0.5, 0.1]})
    summary = summarize(frame)
    assert summary["kind"] == "dataframe"
    assert summary["shape"] == [2, 4]
    assert summary["dtypes"]["float64"] == 2 and summary["dtypes"]["int64"] == 1
    assert sum(summary["dtypes"].values()) == 4
    assert summarize(frame["a"]) == {"kind": "series", "shape": [2], "dtype": "float64"}


def test_lists_rectangular_ragged_and_empty() -> None:
    assert summarize([[1, 2, 3], [4, 5, 6]]) == {
        "kind": "list",
        "n_items": 2,
        "shape": [2, 3],
        "dtype": "int",
    }
    assert summarize([[1, 2.5]]) == {
        "kind": "list",
        "n_items": 1,
        "shape": [1, 2],
        "dtype": "float",
    }
    ragged = summarize([[1, 2], [3]])
    assert ragged["kind"] == "list" and "shape" not in ragged and ragged["first"]["n_items"] == 2
    assert summarize([]) == {"kind": "list", "n_items": 0}
    assert summarize(([], [])) == {"kind": "tuple", "n_items": 2, "shape": [2, 0], "dtype": "none"}


def test_dicts_strings_and_bytes() -> None:
    value = {"text": "hello", "ids": [1, 2], "raw": b"\x00\x01", 7: "skip", "x": "other"}
    assert summarize(value, keys=("ids", "raw")) == {
        "kind": "dict",
        "n_items": 5,
        "items": {
            "text": {"kind": "str", "len": 5},
            "ids": {"kind": "list", "n_items": 2, "shape": [2], "dtype": "int"},
            "raw": {"kind": "bytes", "nbytes": 2},
        },
        "other_keys": 2,
        "other_values": [
            {"count": 1, "kind": "str", "len": 4},
            {"count": 1, "kind": "str", "len": 5},
        ],
    }


def test_standard_json_batches_get_a_shape_and_a_dtype_from_a_sample() -> None:
    batch = summarize({"instances": [[0.0] * 784] * 32})["items"]["instances"]
    assert batch == {
        "kind": "list",
        "n_items": 32,
        "shape": [32, 784],
        "dtype": "float",
        "sampled": True,
    }
    assert summarize([0.0] * 1_000_000) == {
        "kind": "list",
        "n_items": 1_000_000,
        "shape": [1_000_000],
        "dtype": "float",
        "sampled": True,
    }
    assert summarize({"inputs": ["a tweet", "another"]})["items"]["inputs"] == {
        "kind": "list",
        "n_items": 2,
        "shape": [2],
        "dtype": "str",
    }


def test_the_sample_covers_both_ends_of_every_checked_row() -> None:
    # the last row, and the last leaves of a long row, are always looked at
    assert "shape" not in summarize([[0.0] * 10] * 99 + [[0.0] * 9])
    assert summarize([0.0] * 999_999 + ["x"])["dtype"] == "mixed"
    assert summarize([[0] * 784] * 31 + [[0] * 783 + [0.5]])["dtype"] == "float"
    # a spot-checked row's length is compared too
    rows: list[list[float]] = [[0.0] * 784 for _ in range(32)]
    rows[17] = [0.0] * 3  # one of the eight rows spread between the first and the last
    assert "shape" not in summarize(rows)
    # what fits in the budget is checked whole, and then said to be exact
    assert "sampled" not in summarize([[1, 2], [3, 4], [5, 6]])
    assert summarize([[]] * 1_000_000) == {
        "kind": "list",
        "n_items": 1_000_000,
        "shape": [1_000_000, 0],
        "dtype": "none",
        "sampled": True,
    }


def test_every_key_gets_a_fair_share_of_the_budget() -> None:
    two = summarize({"a": [0.0] * 100_000, "b": [1] * 100_000}, keys=["a", "b"])
    assert two["items"]["a"]["shape"] == [100_000] and two["items"]["b"]["dtype"] == "int"
    names = [f"feature_{i}" for i in range(MAX_KEYS)]
    wide = summarize({name: [0.5] * 10_000 for name in names}, keys=names)
    assert list(wide["items"]) == names
    assert all(item["shape"] == [10_000] for item in wide["items"].values())


def test_key_text_is_written_only_for_allowed_keys() -> None:
    """Keys are request data too: a user id as a key, a header name."""
    event = {
        "someone@example.com": [0.1, 0.2],
        "other@example.com": [0.3, 0.4],
        "headers": {"X-Someone-Example-Com": "1", "content-type": "text/plain"},
        "body": "{}",
        7: None,
    }
    summary = summarize(event)
    text = json.dumps(summary)
    for secret in ("someone", "other@", "X-Someone", "content-type", '"7"'):
        assert secret not in text
    assert summary["other_keys"] == 3
    assert summary["other_values"] == [
        {"count": 2, "kind": "list", "n_items": 2, "shape": [2], "dtype": "float"},
        {"count": 1, "kind": "none"},
    ]
    assert summary["items"]["headers"] == {
        "kind": "dict",
        "n_items": 2,
        "other_keys": 2,
        "other_values": [
            {"count": 1, "kind": "str", "len": 1},
            {"count": 1, "kind": "str", "len": 10},
        ],
    }
    assert summarize(event, keys=["someone@example.com"])["other_keys"] == 2
    # past the covered keys, unlisted ones are still counted exactly
    users: dict[str, Any] = {f"user-{i}": i for i in range(100)} | {"instances": []}
    many = summarize(users)
    assert (many["other_keys"], many["truncated"]) == (100, True)
    assert "user-" not in json.dumps(many)
    assert {"instances", "inputs", "signature_name", "headers", "body"} <= ENVELOPE_KEYS


def test_numpy_structured_dtypes_keep_their_field_names_out() -> None:
    table = np.zeros(3, dtype=[("someone@example.com", "f4"), ("count", "i4")])
    assert summarize(table) == {
        "kind": "ndarray",
        "shape": [3],
        "dtype": "structured",
        "fields": 2,
        "nbytes": 24,
    }
    frame = pd.DataFrame({"someone@example.com": [1.0]})
    assert "someone" not in json.dumps([summarize(frame), summarize(frame.iloc[:, 0])])


def test_nested_arrow_types_keep_their_field_names_out() -> None:
    class ArrowBacked:  # how a pyarrow-backed column spells its type
        shape = (4,)

        def __init__(self, dtype: str) -> None:
            self.dtype = dtype

    for text, kind in (
        ("list<item: struct<someone@example.com: int64>>[pyarrow]", "list"),
        ("struct<someone@example.com: double>[pyarrow]", "struct"),
        ("map<string, struct<someone@example.com: int8>>[pyarrow]", "map"),
    ):
        assert summarize(ArrowBacked(text))["dtype"] == kind
    assert summarize(np.array(["ab"]))["dtype"] == "<U2"  # numpy's byte order is not nesting


def test_depth_and_work_are_bounded_on_huge_and_self_referencing_inputs() -> None:
    looped: list[Any] = []
    looped.append(looped)
    assert summarize(looped, max_depth=3)["kind"] == "list"
    deep: Any = 0
    for _ in range(10_000):
        deep = {"k": deep}
    assert json.dumps(summarize(deep)).count("dict") <= 6
    big = [Counted([0.0] * 1000) for _ in range(1000)]
    summary = summarize(Counted(big), max_items=500)
    assert summary["shape"] == [1000, 1000] and summary["sampled"] is True
    assert Counted.touched <= 2 * 500
    Counted.touched = 0
    summarize(Counted([Counted() for _ in range(100_000)]), max_items=500)
    assert Counted.touched <= 2 * 500
    wide: dict[str, Any] = {f"k{i}": {f"j{j}": [0.0] * 100 for j in range(32)} for i in range(32)}
    assert json.dumps(summarize(wide, max_items=64)).count('"kind"') <= 2 * 64 + 2


class Counted(list[Any]):
    """A list that counts the elements read from it."""

    touched = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            Counted.touched += 1
            yield item

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        Counted.touched += len(found) if isinstance(index, slice) else 1
        return found


def test_unknown_objects_and_hostile_ones() -> None:
    class Tensor:
        shape = (2, 3)
        dtype = "torch.float16"
        nbytes = 12

    class HostileList(list[int]):
        def __len__(self) -> int:
            raise RuntimeError("no")

    assert summarize(Tensor()) == {
        "kind": "tests.Tensor",
        "shape": [2, 3],
        "dtype": "torch.float16",
        "nbytes": 12,
    }
    assert summarize(HostileList([1])) == {"kind": "tests.HostileList", "unreadable": True}
    assert summarize({"data": HostileList()})["items"]["data"]["unreadable"] is True
    assert summarize(iter([1, 2])) == {"kind": "list_iterator"}


def test_array_libraries_are_recognised_without_being_imported() -> None:
    """Look-alike classes from modules named numpy and pandas, neither one imported."""
    code = """
import sys, types
import inferobs.shape as s

def fake(module, name, **attrs):
    cls = type(name, (), attrs)
    cls.__module__ = module
    return cls()

array = fake("numpy", "ndarray", shape=(4, 2), dtype="float64", nbytes=64)
frame = fake("pandas.core.frame", "DataFrame", shape=(3, 2), dtypes=["int64", "object"])
series = fake("pandas.core.series", "Series", shape=(3,), dtype="int64")
print(s.summarize([array, frame, series][0]))
print(s.summarize(frame))
print(s.summarize(series))
print(sorted({"numpy", "pandas"} & set(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "{'kind': 'ndarray', 'shape': [4, 2], 'dtype': 'float64', 'nbytes': 64}",
        "{'kind': 'dataframe', 'shape': [3, 2], 'dtypes': {'int64': 1, 'object': 1}}",
        "{'kind': 'series', 'shape': [3], 'dtype': 'int64'}",
        "[]",
    ]


DECLARED = "declared_key"
keys = st.sampled_from(["instances", "inputs", DECLARED]) | st.text(max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 6), st.integers(1, 200))
def test_any_nested_data_gives_a_small_json_summary_without_its_values(
    value: Any, depth: int, items: int
) -> None:
    summary = summarize(value, max_depth=depth, max_items=items, keys=(DECLARED,))
    text = json.dumps(summary)
    assert json.loads(text) == summary
    assert text.count('"kind"') <= 2 * items + 2
    # no string, bytes or key text appears but allowed keys and the summaries'
    # own words, which a random leaf or key may happen to spell
    allowed = json.dumps(sorted(ENVELOPE_KEYS | {DECLARED}))
    for leaf in _strings(value) + _keys(value):
        quoted = json.dumps(leaf)[1:-1]
        if len(leaf) >= 8 and quoted not in SUMMARY_WORDS and quoted not in allowed:
            assert quoted not in text


SUMMARY_WORDS = json.dumps(
    [
        "kind",
        "n_items",
        "shape",
        "dtype",
        "nbytes",
        "len",
        "items",
        "first",
        "truncated",
        "sampled",
        "other_keys",
        "other_values",
        "count",
        "unreadable",
        "list",
        "tuple",
        "dict",
        "str",
        "bytes",
        "int",
        "float",
        "bool",
        "none",
        "mixed",
        "complex",
        "true",
        "false",
    ]
)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value if isinstance(k, str)] + [
            k for v in value.values() for k in _keys(v)
        ]
    if isinstance(value, (list, tuple)):
        return [k for v in value for k in _keys(v)]
    return []


def _strings(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        return [value.decode("latin-1") if isinstance(value, bytes) else value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def test_what_model_servers_receive_is_summarised_by_size_never_by_content() -> None:
    import base64
    import io

    from PIL import Image

    image = Image.new("RGB", (640, 480), (10, 20, 30))
    assert summarize(image) == {"kind": "PIL.Image", "size": [640, 480], "mode": "RGB"}

    png = io.BytesIO()
    image.save(png, format="PNG")
    encoded = base64.b64encode(png.getvalue()).decode()
    assert summarize({"image": encoded})["items"]["image"] == {
        "kind": "str",
        "len": len(encoded),
        "base64_bytes": len(png.getvalue()),
    }
    data_url = "data:image/png;base64," + encoded
    assert summarize(data_url) == {
        "kind": "str",
        "len": len(data_url),
        "media_type": "image/png",
        "base64_bytes": len(png.getvalue()),
    }
    prose = "a long prompt, in words, that only happens to be long enough " * 3
    assert summarize(prose) == {"kind": "str", "len": len(prose)}
    digests = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" * 2
    assert summarize(digests) == {"kind": "str", "len": 128}  # hex is not base64 here
    named = "data:johnsmith;base64," + encoded  # free text where a media type goes: left out
    assert summarize(named) == {"kind": "str", "len": len(named)}


def test_a_multipart_body_is_its_parts_count_and_sizes() -> None:
    from urllib3 import encode_multipart_formdata

    body, _ = encode_multipart_formdata(
        {"meta": "x" * 10, "upload": ("cat.jpg", b"\xff\xd8" + b"\x00" * 998, "image/jpeg")}
    )
    assert summarize(body) == {
        "kind": "bytes",
        "nbytes": len(body),
        "multipart_bytes": [10, 1000],
    }
    text = body.decode("latin-1")
    assert summarize(text)["multipart_bytes"] == [10, 1000]


def test_a_torch_tensor_is_told_by_its_attributes_with_its_device() -> None:
    torch = pytest.importorskip("torch")  # in the dev extra where a CPU build is at hand
    tensor = torch.zeros((2, 3), dtype=torch.float32)
    assert summarize(tensor) == {
        "kind": "torch.Tensor",
        "shape": [2, 3],
        "dtype": "torch.float32",
        "nbytes": 24,
        "device": "cpu",
    }
    assert summarize({"inputs": tensor})["items"]["inputs"]["kind"] == "torch.Tensor"
