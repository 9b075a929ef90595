"""How far merged counts have moved from a baseline: PSI, Jensen-Shannon, Wasserstein, chi², KS.

Every statistic here takes the baseline's proportions and the counts observed
in the same bins, merged exactly across instances and windows first (`merge`),
so a hundred instances that each saw a few requests are judged as the one
stream they are.

Each statistic is written once, over rows: the ``*_rows`` functions compare
one reference with a matrix of observed counts (one row per period, the way
`drift.compare` judges a month of periods at once) and return one value per
row, NaN for a row with no observations. The scalar functions (`psi`, `ks`,
...) check their input and call them with one row.

- **PSI**, sum of (q - p) ln(q / p): a bin empty on either side would make it
  infinite, so both sides are floored at ``EMPTY_BIN`` (1e-4) and renormalised
  before it is computed.
- **Jensen-Shannon distance**, base 2: 0 for the same distribution, 1 for
  ones with nothing in common (scipy's formula, to 1e-9).
- **Wasserstein distance** on the binned distributions, each bin standing at
  the reference's mean within it (`baseline.Numeric.values`), the open-ended
  first and last bins included: the gap between the two CDFs times the
  distance between neighbouring values, summed (scipy's, to 1e-9).
- **chi²** for categories: the observed counts against the reference's, as a
  2 x k Pearson test without continuity correction, categories empty on both
  sides left out (scipy's ``chi2_contingency``, to 1e-9).
- **KS**: the largest gap between the two binned CDFs, an approximation of the
  sample statistic that is exact when every value sits on its bin's value.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, TypeAlias

    import numpy as np
    import numpy.typing as npt

    # counts or shares per bin: a list, or a numpy array
    Counts: TypeAlias = Sequence[float] | npt.NDArray[Any]
    # counts per bin (columns) of many periods (rows)
    Matrix: TypeAlias = Sequence[Sequence[float]] | npt.NDArray[Any]
    Floats: TypeAlias = npt.NDArray[np.float64]

__all__ = [
    "EMPTY_BIN",
    "Chi2",
    "Chi2Rows",
    "chi2",
    "chi2_rows",
    "jensen_shannon",
    "jensen_shannon_rows",
    "ks",
    "ks_rows",
    "merge",
    "psi",
    "psi_rows",
    "wasserstein",
    "wasserstein_rows",
]

EMPTY_BIN = 1e-4


def merge(counts: Iterable[Counts]) -> Floats:
    """Counts of many windows or instances in the same bins, added: exact, in any order."""
    import numpy as np

    rows = [np.asarray(c, dtype=np.float64) for c in counts]
    if not rows:
        raise ValueError("no counts to merge")
    if len({len(r) for r in rows}) != 1:
        raise ValueError("counts of different bins cannot be merged")
    merged: Floats = np.sum(rows, axis=0)
    return merged


def _counts(values: Counts | Matrix, name: str, ndim: int) -> Floats:
    """``values`` as floats, refused unless finite, non-negative and of ``ndim`` dimensions."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.full(0, np.nan)  # ragged or not numbers: refused below
    if array.ndim != ndim or not np.all(np.isfinite(array)) or np.any(array < 0):
        what = "counts or shares" if ndim == 1 else "a matrix of counts, a row per period"
        raise ValueError(f"{name}: expected {what}, non-negative and finite")
    return array


def _shares(values: Counts, name: str) -> Floats:
    array = _counts(values, name, 1)
    total = array.sum()
    if total <= 0:
        raise ValueError(f"{name}: expected non-negative counts or shares with a positive sum")
    shares: Floats = array / total
    return shares


def _rows(reference: Counts, observed: Matrix) -> tuple[Floats, Floats, Floats]:
    """The reference's shares (k,), each row's shares (n, k; NaN for an empty row), and
    each row's total (n,)."""
    import numpy as np

    p = _shares(reference, "reference")
    counts = _counts(observed, "observed", 2)
    if counts.shape[1] != len(p):
        raise ValueError(f"{len(p)} reference bins against {counts.shape[1]} observed")
    totals: Floats = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q: Floats = counts / totals[:, None]
    return p, q, totals


def _empty_rows_nan(values: Floats, totals: Floats) -> Floats:
    import numpy as np

    values[totals <= 0] = np.nan
    return values


def psi_rows(reference: Counts, observed: Matrix) -> Floats:
    """PSI of each row of ``observed`` against ``reference``, empty bins floored at `EMPTY_BIN`."""
    import numpy as np

    p, q, totals = _rows(reference, observed)
    p = np.maximum(p, EMPTY_BIN)
    p = p / p.sum()
    q = np.maximum(q, EMPTY_BIN)
    q = q / q.sum(axis=1, keepdims=True)
    return _empty_rows_nan(np.sum((q - p) * np.log(q / p), axis=1), totals)


def jensen_shannon_rows(reference: Counts, observed: Matrix) -> Floats:
    """Jensen-Shannon distance in base 2 of each row against ``reference``: 0 to 1."""
    import numpy as np
    from scipy.special import rel_entr

    p, q, totals = _rows(reference, observed)
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m), axis=1) + np.sum(rel_entr(q, m), axis=1)) / np.log(2)
    # the sum of two divergences is never below 0; rounding must not make it NaN
    return _empty_rows_nan(np.sqrt(np.maximum(divergence, 0.0) / 2.0), totals)


def wasserstein_rows(reference: Counts, observed: Matrix, values: Counts) -> Floats:
    """Earth mover's distance of each row against ``reference``, each bin at ``values``
    (in any order: the bins are put in the order of their values first)."""
    import numpy as np

    p, q, totals = _rows(reference, observed)
    at = np.asarray(values, dtype=np.float64)
    if at.shape != p.shape or not np.all(np.isfinite(at)):
        raise ValueError(f"values: expected {len(p)} finite numbers, one per bin")
    order = np.argsort(at, kind="stable")
    gaps = np.abs(np.cumsum(p[order])[:-1] - np.cumsum(q[:, order], axis=1)[:, :-1])
    return _empty_rows_nan(gaps @ np.diff(at[order]), totals)


def ks_rows(reference: Counts, observed: Matrix) -> Floats:
    """The largest gap between the binned CDFs, of each row against ``reference``."""
    import numpy as np

    p, q, totals = _rows(reference, observed)
    gaps = np.abs(np.cumsum(p) - np.cumsum(q, axis=1))
    return _empty_rows_nan(np.max(gaps, axis=1), totals)


def psi(reference: Counts, observed: Counts) -> float:
    """Population stability index, empty bins floored at `EMPTY_BIN`."""
    p, q = _pair(reference, observed)
    return float(psi_rows(p, q[None, :])[0])


def jensen_shannon(reference: Counts, observed: Counts) -> float:
    """Jensen-Shannon distance in base 2: from 0 (the same) to 1."""
    p, q = _pair(reference, observed)
    return float(jensen_shannon_rows(p, q[None, :])[0])


def wasserstein(reference: Counts, observed: Counts, values: Counts) -> float:
    """Earth mover's distance between the binned distributions, each bin at ``values``."""
    p, q = _pair(reference, observed)
    return float(wasserstein_rows(p, q[None, :], values)[0])


def ks(reference: Counts, observed: Counts) -> float:
    """The largest gap between the binned CDFs (the KS statistic, binned)."""
    p, q = _pair(reference, observed)
    return float(ks_rows(p, q[None, :])[0])


def _pair(reference: Counts, observed: Counts) -> tuple[Floats, Floats]:
    p, q = _shares(reference, "reference"), _shares(observed, "observed")
    if len(p) != len(q):
        raise ValueError(f"{len(p)} reference bins against {len(q)} observed")
    return p, q


@dataclass(frozen=True)
class Chi2:
    statistic: float
    p_value: float
    dof: int


@dataclass(frozen=True)
class Chi2Rows:
    """`Chi2` of many rows: one statistic, p-value and degrees of freedom per row."""

    statistic: npt.NDArray[np.float64]
    p_value: npt.NDArray[np.float64]
    dof: npt.NDArray[np.int64]


def chi2_rows(reference_counts: Counts, observed: Matrix) -> Chi2Rows:
    """Pearson's chi² test of each row's counts against the reference's, 2 x k.

    Per row, categories empty on both sides are left out; a row with fewer than
    two categories left, or a side with no counts, is no test: 0.0, 1.0, 0.
    """
    import numpy as np
    from scipy.stats import chi2 as chi2_distribution

    reference = _counts(reference_counts, "reference", 1)
    counts = _counts(observed, "observed", 2)
    if counts.shape[1] != len(reference):
        raise ValueError(f"{len(reference)} reference categories against {counts.shape[1]}")
    both = counts + reference  # each category's total, per row
    seen = both > 0
    categories = seen.sum(axis=1)
    reference_total, totals = reference.sum(), counts.sum(axis=1)
    test = (categories >= 2) & (totals > 0) & (reference_total > 0)
    grand = (reference_total + totals)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_reference = reference_total * both / grand
        expected_observed = totals[:, None] * both / grand
        terms = (reference - expected_reference) ** 2 / expected_reference
        terms += (counts - expected_observed) ** 2 / expected_observed
    statistic = np.where(test, np.sum(np.where(seen, terms, 0.0), axis=1), 0.0)
    dof = np.where(test, categories - 1, 0).astype(np.int64)
    p_value = np.where(test, chi2_distribution.sf(statistic, np.maximum(dof, 1)), 1.0)
    return Chi2Rows(statistic, p_value, dof)


def chi2(reference_counts: Counts, observed: Counts) -> Chi2:
    """Pearson's chi² test of the observed counts against the reference's, 2 x k."""
    rows = chi2_rows(reference_counts, _counts(observed, "observed", 1)[None, :])
    return Chi2(float(rows.statistic[0]), float(rows.p_value[0]), int(rows.dof[0]))
