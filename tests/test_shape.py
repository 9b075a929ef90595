"""Input summaries: structure only, bounded, never raising, never importing numpy/pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from inferobs.shape import summarize


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
    summary = summarize({"text": "hello", "ids": [1, 2], "raw": b"\x00\x01", 7: "skip"})
    assert summary == {
        "kind": "dict",
        "n_items": 4,
        "truncated": True,
        "items": {
            "text": {"kind": "str", "len": 5},
            "ids": {"kind": "list", "n_items": 2, "shape": [2], "dtype": "int"},
            "raw": {"kind": "bytes", "nbytes": 2},
        },
    }


def test_depth_and_work_are_bounded_on_huge_and_self_referencing_inputs() -> None:
    looped: list[Any] = []
    looped.append(looped)
    assert summarize(looped, max_depth=3)["kind"] == "list"
    deep: Any = 0
    for _ in range(10_000):
        deep = {"k": deep}
    assert json.dumps(summarize(deep)).count("dict") <= 6
    big = [[0.0] * 1000 for _ in range(1000)]
    summary = summarize(big, max_items=500)
    assert summary["n_items"] == 1000 and "shape" not in summary


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
    assert summarize({"x": HostileList()})["items"]["x"]["unreadable"] is True
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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=80), children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 6), st.integers(1, 200))
def test_any_nested_data_gives_a_small_json_summary_without_its_values(
    value: Any, depth: int, items: int
) -> None:
    summary = summarize(value, max_depth=depth, max_items=items)
    text = json.dumps(summary)
    assert json.loads(text) == summary
    assert text.count('"kind"') <= 2 * items + 2
    # no string or bytes content appears: only keys (which are schema) and the
    # summaries' own words, which a random leaf may happen to spell
    for leaf in _strings(value):
        quoted = json.dumps(leaf)[1:-1]
        if len(leaf) >= 8 and quoted not in SUMMARY_WORDS and quoted not in _keys(value):
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


def _keys(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(list(value)) + "".join(_keys(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "".join(_keys(v) for v in value)
    return ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        return [value.decode("latin-1") if isinstance(value, bytes) else value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []
