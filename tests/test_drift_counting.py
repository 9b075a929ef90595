"""Counting in the handler: the baseline's bins, clock-aligned windows, nothing ever raised."""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferobs.config import parse_window
from inferobs.drift.baseline import Baseline
from inferobs.drift.counting import DRIFT_EVENT, DriftWindows
from inferobs.drift.statistics import merge

RNG = np.random.default_rng(5)


def baseline() -> Baseline:
    return Baseline.from_frame(
        {
            "p": list(RNG.dirichlet([2, 1, 1], 2000)),
            "x": RNG.normal(size=2000),
            "country": RNG.choice(["de", "fr"], 2000),
        },
        prediction="p",
        features=["x", "country"],
        bins=4,
        classes=["cat", "dog", "eel"],
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_windows_are_aligned_to_the_clock_and_close_when_it_moves_on() -> None:
    clock = Clock(1_000_000_323.0)  # 123 s into a 5-minute window (from :200)
    windows = DriftWindows(baseline(), parse_window("5m"), clock=clock)
    assert windows.observe_prediction([0.7, 0.2, 0.1]) == 1
    clock.now += 100
    assert windows.observe_features({"x": 0.3, "country": "fr"}) == 1
    assert windows.take_closed() == []  # still open
    clock.now += 300
    (record,) = windows.take_closed()
    assert record["event"] == DRIFT_EVENT
    assert record["window_start"] == 1_000_000_200 * 10**9
    assert record["window_end"] - record["window_start"] == 300 * 10**9
    assert record["observations"] == 2 and record["baseline_hash"] == windows.baseline.hash


def test_values_land_in_the_bins_the_baseline_draws() -> None:
    built = baseline()
    windows = DriftWindows(built, 60, clock=Clock(0.0))
    edges = built.features["x"].edges  # type: ignore[union-attr]
    rows = [{"x": edges[0]}, {"x": edges[0] + 1e-9}, {"x": -1e9}, {"x": 1e9}]
    windows.observe_features(rows)
    (record,) = windows.take_closed(flush=True)
    x = record["features"]["x"]
    # right-closed bins: an edge belongs to the bin below it
    assert x[:4] == [2, 1, 0, 1] and x[4:] == [0, 0]
    assert record["features"]["country"] == [0, 0, 0, 4]  # de, fr, other, missing


def test_missing_unusable_and_unseen_values_have_their_own_buckets() -> None:
    windows = DriftWindows(baseline(), 60, clock=Clock(0.0))
    windows.observe_features(
        [
            {"x": None, "country": None},
            {"x": math.nan, "country": math.nan},
            {"x": "tall", "country": "jp"},
            {"x": math.inf, "country": 7},
        ]
    )
    windows.observe_prediction([[0.5, 0.5], [math.nan, 0.1, 0.1], "cat", [0.1, 0.2, 0.7]])
    (record,) = windows.take_closed(flush=True)
    x, country = record["features"]["x"], record["features"]["country"]
    assert x[-2:] == [3, 1]  # missing: None, NaN, inf; invalid: "tall"
    assert country[-2:] == [2, 2]  # other: jp, 7; missing: None, NaN
    prediction = record["prediction"]["p"]
    assert prediction["invalid"] == 2  # the 2-vector and "cat"
    assert prediction["label"][:3] == [0, 0, 1]  # the last vector's argmax: eel
    assert prediction["label"][-1] == 1  # a vector with NaN has no label


def test_a_batch_counts_every_row_whatever_its_shape() -> None:
    import pandas as pd

    windows = DriftWindows(baseline(), 60, clock=Clock(0.0))
    assert windows.observe_prediction(np.array([[0.6, 0.3, 0.1]] * 5)) == 5
    assert windows.observe_prediction(np.array([0.1, 0.1, 0.8])) == 1
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3], "country": ["de", "de", "fr"]})
    assert windows.observe_features(frame) == 3
    assert windows.observe_features(frame.iloc[0]) == 1
    assert windows.observe_features(np.array([[0.5, "fr"], [0.2, "de"]], dtype=object)) == 2
    (record,) = windows.take_closed(flush=True)
    assert record["observations"] == 12
    assert sum(record["features"]["country"]) == 6


def test_windows_of_many_instances_merge_into_the_counts_of_one() -> None:
    built = baseline()
    values = RNG.normal(size=5000).tolist()
    one = DriftWindows(built, 300, clock=Clock(600.0))
    one.observe_features([{"x": v} for v in values])
    pooled = one.take_closed(flush=True)[0]["features"]["x"]
    parts = []
    for chunk in np.array_split(np.array(values), 50):
        instance = DriftWindows(built, 300, clock=Clock(600.0 + RNG.uniform(0, 299)))
        instance.observe_features([{"x": v} for v in chunk.tolist()])
        (record,) = instance.take_closed(flush=True)
        assert record["window_start"] == 600 * 10**9  # the same window everywhere
        parts.append(record["features"]["x"])
    assert merge(parts).tolist() == pooled


@pytest.mark.parametrize("text", ["", "0.5", "m", "0s", "-1m", "25h", "2d", "5 minutes", "nanm"])
def test_a_bad_window_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def test_a_window_is_a_duration_or_seconds() -> None:
    assert [parse_window(t) for t in ("30s", "5m", "1h", "1d", "300", " 2H ")] == [
        30.0,
        300.0,
        3600.0,
        86400.0,
        300.0,
        7200.0,
    ]


anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(prediction=anything, features=anything)
def test_nothing_given_to_the_counters_raises(prediction: Any, features: Any) -> None:
    windows = DriftWindows(baseline(), 60, clock=Clock(0.0))
    assert windows.observe_prediction(prediction) >= 1
    assert windows.observe_features(features) >= 1
    windows.take_closed(flush=True)


def test_batches_of_arrays_and_frames_count_every_row() -> None:
    """Lists of numpy rows or vectors and DataFrames of predictions are batches too, and an
    integer past float's range is counted as invalid, not raised."""
    import pandas as pd

    rng = np.random.default_rng(2)
    built = Baseline.from_frame(
        {"p": list(rng.dirichlet([1, 1, 1], 500)), "a": rng.normal(size=500)},
        prediction="p",
        features=["a"],
        classes=["x", "y", "z"],
    )
    windows = DriftWindows(built, 300)
    probabilities = rng.dirichlet([1, 1, 1], 8)
    assert windows.observe_prediction(list(probabilities)) == 8  # a list of arrays
    assert windows.observe_prediction(pd.DataFrame(probabilities)) == 8
    assert windows.observe_features([np.array([0.5])] * 4) == 4  # a list of numpy rows
    assert windows.observe_features(10**400) == 1
    (record,) = windows.take_closed(flush=True)
    counts = record["prediction"]["p"]
    assert counts["invalid"] == 0 and sum(counts["label"]) == 16
    assert record["features"]["a"][-1] == 1  # the huge integer: invalid
    assert sum(record["features"]["a"][:-2]) == 4


def _bin_one(edges: list[float], value: Any) -> int:
    """Where one value belongs, decided alone: the meaning the blocks must keep (the
    last two places are missing and invalid)."""
    if value is None:
        return -2
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return -1
    return bisect_left(edges, x) if math.isfinite(x) else -2


numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-3, max_value=3)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.sampled_from([10**400, None, "tall", True])
)


@given(
    rows=st.lists(st.lists(numbers, min_size=2, max_size=2), max_size=300),
    scores=st.lists(st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3)),
    data=st.data(),
)
def test_rows_binned_a_block_at_a_time_land_where_each_value_alone_would(
    rows: list[list[Any]], scores: list[list[float]], data: st.DataObject
) -> None:
    """Rows of finite numbers wait in blocks that are binned a column at a time; what the
    window says must be what binning each value on its own gives, values on an edge,
    rows with a bad value and blocks cut anywhere (a window closed mid-block) included."""
    built = Baseline.from_frame(
        {
            "p": list(RNG.dirichlet([1, 1, 1], 300)),
            "a": RNG.normal(size=300),
            "b": RNG.normal(size=300),
        },
        prediction="p",
        features=["a", "b"],
        bins=5,
        classes=["x", "y", "z"],
    )
    edges = {name: list(built.features[name].edges) for name in ("a", "b")}  # type: ignore[union-attr]
    on_edges = [[edges["a"][k], edges["b"][k]] for k in range(len(edges["a"]))]
    rows = rows * data.draw(st.integers(min_value=1, max_value=8)) + on_edges  # blocks fill
    clock = Clock(0.0)
    windows = DriftWindows(built, 60, clock=clock)
    cut = data.draw(st.integers(min_value=0, max_value=len(rows)))
    for n, row in enumerate(rows):
        if n == cut:
            clock.now = 60.0  # the next observation closes the window
        if n % 2:
            windows.observe_features(row)
        else:
            windows.observe_features(dict(zip(("a", "b"), row, strict=True)))
    windows.observe_prediction(scores)
    records = windows.take_closed(flush=True)
    for place, name in enumerate(("a", "b")):
        expected = [0] * (len(edges[name]) + 3)
        for row in rows:
            expected[_bin_one(edges[name], row[place])] += 1
        assert merge([r["features"][name] for r in records]).tolist() == expected
    score_edges = [list(s.edges) for s in built.prediction[1].scores]  # type: ignore[union-attr]
    for k, column in enumerate(score_edges):
        expected = [0] * (len(column) + 3)
        for vector in scores:
            expected[bisect_left(column, vector[k])] += 1
        found = merge([r["prediction"]["p"]["scores"][k] for r in records]).tolist()
        assert found == expected
