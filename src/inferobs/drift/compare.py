"""Drift over time: window records merged by group and period, then compared with the baseline.

Windows merge only when they were counted against the same baseline (its
hash) and belong to the same function, model, model version and variant, so
A/B arms are compared with the baseline each, never pooled. Within a group,
the windows of every instance that fall in one period (``period_s``, a
multiple of the window) are added together first; only then is a statistic
computed, so it is the statistic of all the traffic, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .baseline import Baseline, Categorical, ClassScores, Numeric
from .statistics import chi2, jensen_shannon, ks, merge, psi, wasserstein

__all__ = ["ColumnDrift", "Period", "compare"]

_GROUP = ("function", "model", "model_version", "variant")


@dataclass
class ColumnDrift:
    """One column's statistics for one period (None where the column has none of that kind)."""

    column: str  # the feature's name, the prediction's, or "prediction.<class>" for class scores
    observations: int  # values in the bins (missing and invalid ones are counted apart)
    missing: int
    invalid: int
    psi: float | None = None
    jensen_shannon: float | None = None
    wasserstein: float | None = None
    ks: float | None = None
    chi2: float | None = None
    chi2_p_value: float | None = None


@dataclass
class Period:
    """One group's drift over one period: every column's statistics."""

    group: tuple[str | None, ...]
    start_ns: int
    end_ns: int
    windows: int
    columns: list[ColumnDrift] = field(default_factory=list)


def compare(
    baseline: Baseline, records: list[dict[str, Any]], period_s: float
) -> tuple[list[Period], int]:
    """Periods of drift, oldest first, and how many records were left out (another baseline)."""
    period_ns = int(period_s * 1e9)
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    other = 0
    for record in records:
        if record.get("baseline_hash") != baseline.hash:
            other += 1
            continue
        group = tuple(record.get(key) for key in _GROUP)
        start = int(record["window_start"]) // period_ns * period_ns
        buckets.setdefault((group, start), []).append(record)
    periods = []
    for (group, start), windows in sorted(buckets.items(), key=lambda item: item[0][1]):
        period = Period(group, start, start + period_ns, len(windows))
        name, spec = baseline.prediction
        period.columns += _column(name, spec, [w["prediction"][name] for w in windows])
        for feature, feature_spec in baseline.features.items():
            period.columns += _column(
                feature, feature_spec, [w["features"][feature] for w in windows]
            )
        periods.append(period)
    return periods, other


def _column(name: str, spec: Any, counts: list[Any]) -> list[ColumnDrift]:
    if isinstance(spec, ClassScores):
        out = _column(name, spec.label, [c["label"] for c in counts])
        for n, (cls, scores) in enumerate(zip(spec.classes, spec.scores, strict=True)):
            out += _column(f"{name}.{cls}", scores, [c["scores"][n] for c in counts])
        if out:
            out[0].invalid = int(sum(c["invalid"] for c in counts))
        return out
    merged = merge(counts)
    if isinstance(spec, Numeric):
        bins, missing, invalid = merged[:-2], int(merged[-2]), int(merged[-1])
        drift = ColumnDrift(name, int(bins.sum()), missing, invalid)
        if bins.sum() > 0:
            drift.psi = psi(spec.proportions, bins)
            drift.jensen_shannon = jensen_shannon(spec.proportions, bins)
            drift.wasserstein = wasserstein(spec.proportions, bins, spec.values)
            drift.ks = ks(spec.proportions, bins)
        return [drift]
    assert isinstance(spec, Categorical)
    bins, missing = merged[:-1], int(merged[-1])  # categories and "other", then missing
    drift = ColumnDrift(name, int(bins.sum()), missing, 0)
    if bins.sum() > 0:
        drift.psi = psi(spec.proportions, bins)
        drift.jensen_shannon = jensen_shannon(spec.proportions, bins)
        expected = [share * spec.count for share in spec.proportions]
        test = chi2(expected, bins)
        drift.chi2, drift.chi2_p_value = test.statistic, test.p_value
    return [drift]
