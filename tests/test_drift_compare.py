"""Drift over time from windows: shifted columns move, untouched ones do not, merging is exact."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from inferobs.drift.baseline import Baseline, Numeric
from inferobs.drift.compare import ColumnDrift, compare
from inferobs.drift.counting import DriftWindows
from inferobs.drift.statistics import psi, wasserstein
from inferobs.drift.window_table import WindowTable

RNG = np.random.default_rng(9)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reference() -> Baseline:
    n = 20_000
    return Baseline.from_frame(
        {
            "label": RNG.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "x": RNG.normal(size=n),
            "y": RNG.normal(size=n),
            "country": RNG.choice(["de", "fr"], n),
        },
        prediction="label",
        features=["x", "y", "country"],
        bins=10,
    )


def traffic(built: Baseline, start: float, shifted: bool, instances: int = 5) -> list[Any]:
    records = []
    for _ in range(instances):
        windows = DriftWindows(built, 300, clock=Clock(start + RNG.uniform(0, 299)))
        n = 2000
        labels = RNG.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5] if shifted else [0.6, 0.3, 0.1])
        windows.observe_prediction(labels.tolist())
        x = RNG.normal(loc=1.0 if shifted else 0.0, size=n)
        y = RNG.normal(size=n)
        country = RNG.choice(["de", "fr", "jp"] if shifted else ["de", "fr"], n)
        windows.observe_features(
            [{"x": a, "y": b, "country": c} for a, b, c in zip(x, y, country, strict=True)]
        )
        for record in windows.take_closed(flush=True):
            records.append({**record, "function": "f", "model": "m"})
    return records


def test_a_shift_shows_in_the_shifted_columns_only() -> None:
    built = reference()
    records = traffic(built, 0.0, shifted=False) + traffic(built, 3600.0, shifted=True)
    periods, other = compare(built, records, period_s=3600)
    assert other == 0 and [p.windows for p in periods] == [5, 5]
    before = {c.column: c for c in periods[0].columns}
    after = {c.column: c for c in periods[1].columns}
    for column in ("label", "x", "country"):
        calm, moved = before[column].psi, after[column].psi
        assert calm is not None and calm < 0.02
        assert moved is not None and moved > 0.25, column
    assert after["y"].psi is not None and after["y"].psi < 0.02  # untouched
    assert after["x"].wasserstein is not None and after["x"].wasserstein > 0.8
    assert after["country"].chi2_p_value is not None and after["country"].chi2_p_value < 1e-6
    assert before["x"].observations == 10_000


def test_windows_of_another_baseline_are_left_out_and_counted() -> None:
    built, other = reference(), reference()
    records = traffic(built, 0.0, shifted=False, instances=2)
    records += traffic(other, 0.0, shifted=False, instances=3)
    periods, left_out = compare(built, records, period_s=300)
    assert left_out == 3 and periods[0].windows == 2


def test_arms_of_an_experiment_are_compared_apart() -> None:
    built = reference()
    a = [{**r, "variant": "A"} for r in traffic(built, 0.0, shifted=False, instances=2)]
    b = [{**r, "variant": "B"} for r in traffic(built, 0.0, shifted=True, instances=2)]
    periods, _ = compare(built, a + b, period_s=300)
    by_arm = {p.group[3]: {c.column: c for c in p.columns} for p in periods}
    arm_a, arm_b = by_arm["A"]["x"].psi, by_arm["B"]["x"].psi
    assert arm_a is not None and arm_a < 0.05
    assert arm_b is not None and arm_b > 0.25


def test_a_table_of_windows_compares_as_its_records_do() -> None:
    built = reference()
    records = traffic(built, 0.0, shifted=False) + traffic(built, 3600.0, shifted=True)
    records += traffic(reference(), 0.0, shifted=False, instances=2)  # another baseline
    table, problems = WindowTable.from_records(built, records)
    assert problems == [] and table.other == 2
    from_records = compare(built, records, period_s=3600)
    assert compare(built, table, period_s=3600) == from_records
    # two sources' tables, in either order, are the same windows
    halves = [WindowTable.from_records(built, part)[0] for part in (records[:4], records[4:])]
    assert compare(built, WindowTable.concat(built, halves[::-1]), 3600) == from_records


def fifty_instances_and_their_pool(built: Baseline) -> tuple[list[Any], list[Any]]:
    """Three hours of traffic counted by fifty instances (uneven shares, windows
    anywhere in the hour), and the same traffic counted by one."""
    instances, pooled = [], []
    for hour in range(3):
        n = 6000
        labels = RNG.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).tolist()
        rows = [
            {"x": a, "y": b, "country": c}
            for a, b, c in zip(
                RNG.normal(loc=0.3 * hour, size=n),
                RNG.normal(size=n),
                RNG.choice(["de", "fr", "jp"], n, p=[0.5, 0.4, 0.1]),
                strict=True,
            )
        ]
        rows[::97] = [{"x": None, "y": "?", "country": None}] * len(rows[::97])
        cuts = np.sort(RNG.choice(np.arange(1, n), 49, replace=False))
        for k, (begin, end) in enumerate(zip([0, *cuts], [*cuts, n], strict=True)):
            windows = DriftWindows(built, 300, clock=Clock(hour * 3600 + (k % 12) * 300 + 1))
            windows.observe_prediction(labels[begin:end])
            windows.observe_features(rows[begin:end])
            instances += [{**r, "instance_id": f"i{k}"} for r in windows.take_closed(flush=True)]
        everything = DriftWindows(built, 300, clock=Clock(hour * 3600 + 1))
        everything.observe_prediction(labels)
        everything.observe_features(rows)
        pooled += [{**r, "instance_id": "one"} for r in everything.take_closed(flush=True)]
    return instances, pooled


def test_fifty_instances_merge_into_the_statistics_of_their_pooled_traffic() -> None:
    built = reference()
    instances, pooled = fifty_instances_and_their_pool(built)
    table = WindowTable.from_records(built, instances)[0]
    merged, _ = compare(built, table, period_s=3600)
    alone, _ = compare(built, pooled, period_s=3600)
    assert [p.start_ns for p in merged] == [p.start_ns for p in alone] == [0, 3600e9, 7200e9]
    assert [(p.windows, p.instances) for p in merged] == [(50, 50)] * 3
    assert [p.observations for p in merged] == [p.observations for p in alone] == [12_000] * 3
    for together, one in zip(merged, alone, strict=True):
        assert together.columns == one.columns  # every count and statistic, exactly
    x = {c.column: c for c in merged[2].columns}["x"]
    spec = built.features["x"]
    assert isinstance(spec, Numeric)
    counts = np.sum([r["features"]["x"] for r in instances if r["window_start"] >= 7200e9], 0)
    assert (x.observations, x.missing, x.invalid) == (int(counts[:-2].sum()), 62, 0)
    assert x.psi == pytest.approx(psi(spec.proportions, counts[:-2]), abs=1e-12)
    assert x.wasserstein == pytest.approx(
        wasserstein(spec.proportions, counts[:-2], spec.values), abs=1e-12
    )


def test_periods_come_by_start_then_group_whatever_order_the_windows_came_in() -> None:
    built = reference()
    records = []
    for variant in ("B", None, "A"):
        for start in (7200.0, 0.0, 3600.0):
            records += [
                {**r, "variant": variant}
                for r in traffic(built, start, shifted=variant == "B", instances=2)
            ]
    periods, _ = compare(built, records, period_s=3600)
    order = [(p.start_ns // 3_600_000_000_000, p.group[3]) for p in periods]
    assert order == [(h, v) for h in (0, 1, 2) for v in (None, "A", "B")]
    shuffled = [records[i] for i in RNG.permutation(len(records))]
    assert compare(built, shuffled, period_s=3600)[0] == periods
    for p in periods:  # each arm is judged on its own traffic only
        assert p.windows == 2 and p.observations == 2 * 2 * 2000
        moved = {c.column: c for c in p.columns}["x"].psi
        assert moved is not None and (moved > 0.25 if p.group[3] == "B" else moved < 0.05)


def test_a_period_counts_each_instance_once() -> None:
    built = reference()
    records = traffic(built, 0.0, shifted=False, instances=3)
    records += traffic(built, 600.0, shifted=False, instances=3)  # the same three, later
    records = [{**r, "instance_id": f"i{n % 3}"} for n, r in enumerate(records)]
    periods, _ = compare(built, records, period_s=3600)
    assert [(p.windows, p.instances) for p in periods] == [(6, 3)]
    five_minutes, _ = compare(built, records, period_s=300)
    assert [(p.windows, p.instances) for p in five_minutes] == [(3, 3), (3, 3)]


def test_class_scores_are_a_column_per_class_and_the_argmax_label() -> None:
    n = 5000
    scores = RNG.dirichlet([4, 2, 1], size=n)
    built = Baseline.from_frame(
        {"p": list(scores), "x": RNG.normal(size=n)},
        prediction="p",
        features=["x"],
        classes=["cat", "dog", "eel"],
    )
    windows = DriftWindows(built, 300, clock=Clock(1.0))
    windows.observe_prediction(RNG.dirichlet([1, 2, 4], size=400))
    for broken in ([0.5, 0.5], "not a vector", [0.1, math.nan, 0.9]):
        windows.observe_prediction([broken])
    windows.observe_features([{"x": v} for v in RNG.normal(size=403)])
    records = windows.take_closed(flush=True)
    periods, _ = compare(built, WindowTable.from_records(built, records)[0], period_s=300)
    columns = {c.column: c for c in periods[0].columns}
    assert list(columns) == ["p", "p.cat", "p.dog", "p.eel", "x"]
    label = columns["p"]
    assert (label.observations, label.missing, label.invalid) == (400, 1, 2)
    assert label.chi2_p_value is not None and label.chi2_p_value < 1e-6
    assert columns["p.eel"].psi is not None and columns["p.eel"].psi > 0.25
    assert columns["p.dog"].missing == 1 and columns["p.dog"].wasserstein is not None


def test_a_column_with_nothing_in_its_bins_has_no_statistic() -> None:
    built = reference()
    windows = DriftWindows(built, 300, clock=Clock(1.0))
    windows.observe_prediction(["a", "b"])
    windows.observe_features([{"x": None, "y": 1.0}, {"x": math.nan, "y": 2.0}])
    periods, _ = compare(built, windows.take_closed(flush=True), period_s=300)
    columns = {c.column: c for c in periods[0].columns}
    assert columns["x"] == ColumnDrift("x", 0, 2, 0)  # no statistic at all
    assert columns["country"] == ColumnDrift("country", 0, 2, 0)
    assert columns["y"].psi is not None and columns["label"].chi2 is not None


def test_windows_that_do_not_fit_are_refused_naming_what_is_wrong() -> None:
    built = reference()
    records = traffic(built, 0.0, shifted=False, instances=2)
    broken = {**records[1], "features": {**records[1]["features"], "x": [1, 2]}}
    with pytest.raises(ValueError, match=r"window record 1: features\.x: expected 12 counts"):
        compare(built, [records[0], broken], period_s=300)
    elsewhere = WindowTable.from_records(reference(), [])[0]
    with pytest.raises(ValueError, match="counted against baseline"):
        compare(built, elsewhere, period_s=300)
    with pytest.raises(ValueError, match="period_s=0"):
        compare(built, records, period_s=0)


def test_no_windows_no_periods() -> None:
    built = reference()
    assert compare(built, WindowTable.empty(built), period_s=300) == ([], 0)
    assert compare(built, traffic(reference(), 0.0, False, 2), period_s=300) == ([], 2)
