"""Drift over time from window records: shifted columns move, untouched ones do not."""

from __future__ import annotations

from typing import Any

import numpy as np

from inferobs.drift.baseline import Baseline
from inferobs.drift.compare import compare
from inferobs.drift.counting import DriftWindows

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
