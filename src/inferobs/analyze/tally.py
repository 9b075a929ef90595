"""Per (hour of day, environment) sums over the requests: every policy's totals from one table.

Once each request has its environment (`concurrency.place`), what a policy
costs depends only on how many environments it keeps warm in each hour: the
requests above that level spill. Summing each quantity by hour of day and
environment, then cumulating over environments, turns every policy's totals
(spill, cold starts, billed milliseconds, busy time) into a few lookups, so
the search over every N and every hour never goes back to the requests.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .concurrency import Placement

__all__ = ["Sums", "Tally"]


class Sums:
    """``cum[q][hour, n]``: quantity q over the requests on environments 1..n in that hour;
    ``total[q][hour]``: over all of that hour's requests; ``peak``: the most environments."""

    peak: int
    cum: dict[str, npt.NDArray[np.float64]]
    total: dict[str, npt.NDArray[np.float64]]

    def served(self, name: str, levels: npt.NDArray[np.int64]) -> float:
        """Quantity ``name`` over the requests on environments 1..levels[h] in each hour h."""
        import numpy as np

        capped = np.minimum(levels, self.peak)
        return float(self.cum[name][np.arange(24), capped].sum())

    def spilled(self, name: str, levels: npt.NDArray[np.int64]) -> float:
        """Quantity ``name`` over the requests above levels[h] in each hour h."""
        return float(self.total[name].sum()) - self.served(name, levels)

    def spilled_by_hour(self, name: str) -> npt.NDArray[np.float64]:
        """``[hour, n]``: quantity ``name`` over the requests above n in that hour."""
        return self.total[name][:, None] - self.cum[name]


class Tally(Sums):
    """The sums over requests placed one by one (`concurrency.place`)."""

    def __init__(
        self,
        placement: Placement,
        *,
        hour: npt.NDArray[np.int64],
        cold: npt.NDArray[np.bool_],
        billed_ms: npt.NDArray[np.float64],
        billed_cold_ms: npt.NDArray[np.float64],
        busy_s: npt.NDArray[np.float64],
    ) -> None:
        import numpy as np

        self.peak = placement.peak
        width = self.peak + 1
        cell = hour * width + placement.level
        # requests; cold candidates (idle past the keep-alive, or never used); billed
        # ms when served warm; billed ms when spilled (the cold ones' init added)
        weights = {
            "requests": None,
            "cold": cold.astype(np.float64),
            "billed_ms": billed_ms,
            "billed_cold_ms": billed_cold_ms,
            "busy_s": busy_s,
        }
        self.cum = {}
        self.total = {}
        for name, weight in weights.items():
            sums = np.bincount(cell, weights=weight, minlength=24 * width).astype(np.float64)
            table = sums.reshape(24, width).cumsum(axis=1)
            self.cum[name] = table
            self.total[name] = table[:, -1]
