"""How far merged counts have moved from a baseline: PSI, Jensen-Shannon, Wasserstein, chi², KS.

Every statistic here takes the baseline's proportions and the counts observed
in the same bins, merged exactly across instances and windows first (`merge`),
so a hundred instances that each saw a few requests are judged as the one
stream they are. scipy computes what it has (Jensen-Shannon, Wasserstein,
chi²); the rest are a line of numpy each.

- **PSI**, sum of (q - p) ln(q / p): a bin empty on either side would make it
  infinite, so both sides are floored at ``EMPTY_BIN`` (1e-4) and renormalised
  before it is computed.
- **Jensen-Shannon distance**, base 2: 0 for the same distribution, 1 for
  ones with nothing in common.
- **Wasserstein distance** on the binned distributions, each bin standing at
  the reference's mean within it (`baseline.Numeric.values`), the open-ended
  first and last bins included.
- **chi²** for categories: the observed counts against the reference's, as a
  2 x k contingency table (categories empty on both sides left out).
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

__all__ = ["EMPTY_BIN", "Chi2", "chi2", "jensen_shannon", "ks", "merge", "psi", "wasserstein"]

EMPTY_BIN = 1e-4


def merge(counts: Iterable[Counts]) -> npt.NDArray[np.float64]:
    """Counts of many windows or instances in the same bins, added: exact, in any order."""
    import numpy as np

    rows = [np.asarray(c, dtype=np.float64) for c in counts]
    if not rows:
        raise ValueError("no counts to merge")
    if len({len(r) for r in rows}) != 1:
        raise ValueError("counts of different bins cannot be merged")
    merged: npt.NDArray[np.float64] = np.sum(rows, axis=0)
    return merged


def _shares(values: Counts, name: str) -> npt.NDArray[np.float64]:
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    total = array.sum()
    if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(array < 0) or total <= 0:
        raise ValueError(f"{name}: expected non-negative counts or shares with a positive sum")
    shares: npt.NDArray[np.float64] = array / total
    return shares


def _pair(
    reference: Counts, observed: Counts
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    p, q = _shares(reference, "reference"), _shares(observed, "observed")
    if len(p) != len(q):
        raise ValueError(f"{len(p)} reference bins against {len(q)} observed")
    return p, q


def psi(reference: Counts, observed: Counts) -> float:
    """Population stability index, empty bins floored at `EMPTY_BIN`."""
    import numpy as np

    p, q = _pair(reference, observed)
    p = np.maximum(p, EMPTY_BIN)
    q = np.maximum(q, EMPTY_BIN)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: Counts, observed: Counts) -> float:
    """Jensen-Shannon distance in base 2: from 0 (the same) to 1."""
    from scipy.spatial.distance import jensenshannon

    p, q = _pair(reference, observed)
    return float(jensenshannon(p, q, base=2))


def wasserstein(reference: Counts, observed: Counts, values: Counts) -> float:
    """Earth mover's distance between the binned distributions, each bin at ``values``."""
    from scipy.stats import wasserstein_distance

    p, q = _pair(reference, observed)
    if len(values) != len(p):
        raise ValueError(f"{len(values)} bin values for {len(p)} bins")
    return float(wasserstein_distance(values, values, u_weights=p, v_weights=q))


def ks(reference: Counts, observed: Counts) -> float:
    """The largest gap between the binned CDFs (the KS statistic, binned)."""
    import numpy as np

    p, q = _pair(reference, observed)
    return float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))


@dataclass(frozen=True)
class Chi2:
    statistic: float
    p_value: float
    dof: int


def chi2(reference_counts: Counts, observed: Counts) -> Chi2:
    """Pearson's chi² test of the observed counts against the reference's, 2 x k."""
    import numpy as np
    from scipy.stats import chi2_contingency

    table = np.array([reference_counts, observed], dtype=np.float64)
    if table.ndim != 2 or np.any(table < 0) or not np.all(np.isfinite(table)):
        raise ValueError("expected non-negative counts, the same categories on both sides")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return Chi2(0.0, 1.0, 0)
    result = chi2_contingency(table, correction=False)
    return Chi2(float(result.statistic), float(result.pvalue), int(result.dof))
