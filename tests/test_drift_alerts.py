"""The shipped alert rules on drift: shifted columns alert, untouched ones never do, and a
million unshifted rows (where every p-value is 0 for any difference) raise nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from inferobs.analyze.rules import judge, load_rules
from inferobs.drift.baseline import Baseline, Categorical, Numeric
from inferobs.drift.compare import compare
from inferobs.drift.window_table import WindowTable

RNG = np.random.default_rng(20261203)
HOUR_NS = 3600 * 10**9
CLASSES = ["ham", "spam", "unsure"]
PRIORS = [0.7, 0.2, 0.1]


def draw(n: int, shifted: bool) -> dict[str, Any]:
    """Rows of the four features and the label; ``shifted`` moves all but ``untouched``."""
    return {
        "label": RNG.choice(CLASSES, n, p=[0.45, 0.35, 0.2] if shifted else PRIORS),
        "level": RNG.normal(0.6 if shifted else 0.0, 1.0, n),  # a mean shift
        "spread": RNG.normal(0.0, 2.0 if shifted else 1.0, n),  # a variance change
        "country": RNG.choice(
            ["de", "fr", "it", "jp"] if shifted else ["de", "fr", "it"],
            n,
            p=[0.4, 0.2, 0.2, 0.2] if shifted else [0.5, 0.25, 0.25],
        ),  # a new category
        "untouched": RNG.normal(5.0, 2.0, n),
    }


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return Baseline.from_frame(
        draw(50_000, shifted=False),
        prediction="label",
        features=["level", "spread", "country", "untouched"],
        bins=10,
    )


def counts(spec: Any, values: Any) -> list[int]:
    """What the handler's counters make of ``values`` (bins, then the extra buckets)."""
    if isinstance(spec, Numeric):
        bins = np.bincount(np.searchsorted(spec.edges, values), minlength=len(spec.edges) + 1)
        return [*bins.tolist(), 0, 0]  # nothing missing, nothing invalid
    assert isinstance(spec, Categorical)
    index = {name: n for n, name in enumerate(spec.categories)}
    other = len(spec.categories)
    found = np.bincount([index.get(v, other) for v in values.tolist()], minlength=other + 1)
    return [*found.tolist(), 0]


def windows(
    built: Baseline, hours: range, rows_per_hour: int, shifted_from: int | None
) -> WindowTable:
    """Twenty instances, each sending one 5-minute window an hour, over ``hours``."""
    records = []
    for hour in hours:
        shifted = shifted_from is not None and hour >= shifted_from
        shares = RNG.dirichlet(np.full(20, 5.0))  # instances see uneven shares
        for instance, share in enumerate(shares):
            n = max(int(rows_per_hour * share), 1)
            data = draw(n, shifted)
            start = hour * HOUR_NS + (instance % 12) * 300 * 10**9
            records.append(
                {
                    "window_start": start,
                    "window_end": start + 300 * 10**9,
                    "baseline_hash": built.hash,
                    "function": "spam-filter",
                    "instance_id": f"i-{instance}",
                    "observations": 2 * n,
                    "prediction": {"label": counts(built.prediction[1], data["label"])},
                    "features": {
                        name: counts(spec, data[name]) for name, spec in built.features.items()
                    },
                }
            )
    table, problems = WindowTable.from_records(built, records)
    assert problems == []
    return table


def findings_of(built: Baseline, table: WindowTable) -> list[Any]:
    rules = load_rules()  # the shipped rules
    drift = {r.window_s: compare(built, table, r.window_s)[0] for r in rules}
    return judge(rules, drift=drift)


def test_a_million_unshifted_rows_raise_no_alert(baseline: Baseline) -> None:
    table = windows(baseline, range(24), rows_per_hour=1_000_000 // 24 + 1, shifted_from=None)
    rows = int(table.observations.sum()) // 2
    assert rows >= 990_000  # every row counted once (uneven shares round down a little)
    assert findings_of(baseline, table) == []
    # the trap the rules avoid: on this much data a significance test calls noise drift
    periods, _ = compare(baseline, table, 24 * 3600)
    country = next(c for c in periods[0].columns if c.column == "country")
    assert country.chi2 is not None and country.psi is not None and country.psi < 1e-3


def test_each_kind_of_shift_alerts_on_its_column_only(baseline: Baseline) -> None:
    table = windows(baseline, range(12), rows_per_hour=20_000, shifted_from=6)
    findings = findings_of(baseline, table)
    alerts = {f.subject for f in findings if f.level == "alert"}
    assert alerts == {"label", "level", "spread", "country"}
    assert all(f.subject != "untouched" for f in findings)
    first = min(f.start_ns for f in findings)
    assert first == 6 * HOUR_NS  # nothing before the shift began


def test_a_quiet_period_does_not_alert_however_far_it_moved(baseline: Baseline) -> None:
    table = windows(baseline, range(2), rows_per_hour=200, shifted_from=0)  # under min_samples
    assert findings_of(baseline, table) == []
