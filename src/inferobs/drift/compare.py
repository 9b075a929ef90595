"""Drift over time: windows merged by group and period, then compared with the baseline.

Windows merge only when they were counted against the same baseline (its
hash) and belong to the same function, model, model version and variant, so
A/B arms are compared with the baseline each, never pooled. Within a group,
the windows of every instance that fall in one period (``period_s``, a
multiple of the window) are added together first; only then is a statistic
computed, so it is the statistic of all the traffic, exactly.

A month of five-minute windows from twenty instances is a matrix of some
170,000 rows (`WindowTable`): the rows of a period are added with one sparse
product (an indicator of each window's period times the counts, integers
throughout, so exact in any order), and each column's statistics come for
every period at once from the ``*_rows`` functions of `drift.statistics`.
Python objects are made only for the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .baseline import Baseline, Categorical, Numeric
from .layout import Segment
from .statistics import chi2_rows, jensen_shannon_rows, ks_rows, psi_rows, wasserstein_rows
from .window_table import WindowTable

__all__ = ["ColumnDrift", "Period", "compare"]


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
    instances: int = 0  # distinct instances whose windows were merged
    observations: int = 0  # the windows' observations (predictions or feature rows), added


# the statistics of a column, in ColumnDrift's order: after column, observations, missing, invalid
_METRICS = tuple(f.name for f in fields(ColumnDrift))[4:]


def compare(
    baseline: Baseline, windows: WindowTable | list[dict[str, Any]], period_s: float
) -> tuple[list[Period], int]:
    """Periods of drift, by start then group, and how many windows were left out (counted
    against another baseline).

    ``windows`` is a `WindowTable` of windows counted against ``baseline``, or window
    records as `DriftWindows` writes them; a record that cannot be read is a ValueError
    naming it and what is wrong.
    """
    period_ns = int(period_s * 1e9)
    if period_ns <= 0:
        raise ValueError(f"period_s={period_s!r}: expected a positive number of seconds")
    table = _table(baseline, windows)
    if not len(table):
        return [], table.other
    merged = _merge(table, period_ns)
    columns = _columns(table.layout, merged.counts)
    periods = []
    for n, drifts in enumerate(zip(*columns, strict=True)):
        start = int(merged.start_ns[n])
        periods.append(
            Period(
                table.groups[merged.group[n]],
                start,
                start + period_ns,
                int(merged.windows[n]),
                list(drifts),
                int(merged.instances[n]),
                int(merged.observations[n]),
            )
        )
    return periods, table.other


def _table(baseline: Baseline, windows: WindowTable | list[dict[str, Any]]) -> WindowTable:
    """``windows`` as a table of ``baseline``'s layout; ValueError for what does not fit."""
    if isinstance(windows, WindowTable):
        if windows.baseline.hash != baseline.hash:
            raise ValueError(
                f"the windows were counted against baseline {windows.baseline.hash}, "
                f"not {baseline.hash}"
            )
        width = windows.layout[-1].stop
        if windows.counts.shape != (len(windows), width):
            raise ValueError(
                f"the windows' counts are {windows.counts.shape}, not {len(windows)} rows "
                f"of {width}"
            )
        return windows
    table, problems = WindowTable.from_records(baseline, windows)
    if problems:
        n, why = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"window record {n}: {why}{more}")
    return table


@dataclass
class _Merged:
    """Per (group, period), by start then group: the summed counts and what went in."""

    start_ns: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]  # an index into the table's groups
    windows: npt.NDArray[np.int64]
    instances: npt.NDArray[np.int64]
    observations: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]


def _merge(table: WindowTable, period_ns: int) -> _Merged:
    from scipy.sparse import csr_matrix

    groups = len(table.groups)
    # groups in the order of their values (None first), so the result does not
    # depend on the order the windows came in
    ranked = sorted(
        range(groups), key=lambda g: [(v is not None, v or "") for v in table.groups[g]]
    )
    rank = np.empty(groups, dtype=np.int64)
    rank[ranked] = np.arange(groups)
    slot = table.start_ns // period_ns
    first = int(slot.min())
    # each window's (period, group) as one key; ``which`` is its place among the keys
    keys, which = np.unique((slot - first) * groups + rank[table.group], return_inverse=True)
    rows = len(table)
    indicator = csr_matrix(
        (np.ones(rows, dtype=np.int64), (which, np.arange(rows))), shape=(len(keys), rows)
    )
    codes: dict[str | None, int] = {}
    instance = np.fromiter(
        (codes.setdefault(i, len(codes)) for i in table.instance), dtype=np.int64, count=rows
    )
    pairs = np.unique(which * len(codes) + instance)
    return _Merged(
        start_ns=(keys // groups + first) * period_ns,
        group=np.asarray(ranked, dtype=np.int64)[keys % groups],
        windows=np.bincount(which, minlength=len(keys)),
        instances=np.bincount(pairs // len(codes), minlength=len(keys)),
        observations=np.asarray(indicator @ table.observations, dtype=np.int64),
        counts=np.asarray(indicator @ table.counts, dtype=np.int64),
    )


def _columns(layout: list[Segment], counts: npt.NDArray[np.int64]) -> list[list[ColumnDrift]]:
    """Each column's drift in every period (a list per column, a row of ``counts`` each)."""
    out: list[list[ColumnDrift]] = []
    labels: dict[tuple[str | int, ...], list[ColumnDrift]] = {}
    for segment in layout:
        block = counts[:, segment.start : segment.stop]
        if segment.spec is None:  # class vectors that could not be read: the label's
            for drift, invalid in zip(labels[segment.path[:-1]], block[:, 0].tolist(), strict=True):
                drift.invalid = invalid
            continue
        drifts = _column(segment.column, segment.spec, block)
        if segment.path[-1] == "label":
            labels[segment.path[:-1]] = drifts
        out.append(drifts)
    return out


def _column(
    name: str, spec: Numeric | Categorical, block: npt.NDArray[np.int64]
) -> list[ColumnDrift]:
    reference = np.asarray(spec.proportions)
    if isinstance(spec, Numeric):
        bins, missing, invalid = block[:, :-2], block[:, -2], block[:, -1]
        metrics = {
            "psi": psi_rows(reference, bins),
            "jensen_shannon": jensen_shannon_rows(reference, bins),
            "wasserstein": wasserstein_rows(reference, bins, spec.values),
            "ks": ks_rows(reference, bins),
        }
    else:  # categories and "other", then missing
        bins, missing, invalid = block[:, :-1], block[:, -1], np.zeros_like(block[:, -1])
        test = chi2_rows(reference * spec.count, bins)
        metrics = {
            "psi": psi_rows(reference, bins),
            "jensen_shannon": jensen_shannon_rows(reference, bins),
            "chi2": test.statistic,
            "chi2_p_value": test.p_value,
        }
    observations = bins.sum(axis=1)
    seen = (observations > 0).tolist()
    values = {
        key: [v if ok else None for v, ok in zip(array.tolist(), seen, strict=True)]
        for key, array in metrics.items()
    }
    return [
        ColumnDrift(name, *row)
        for row in zip(
            observations.tolist(),
            missing.tolist(),
            invalid.tolist(),
            *(values.get(key, [None] * len(seen)) for key in _METRICS),
            strict=True,
        )
    ]
