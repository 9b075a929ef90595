"""The same sums as `tally.Tally`, from per-minute aggregates where no single request is known.

Azure's 2019 trace (and any source of minute counts) gives, per minute, the
invocations and their mean duration, nothing per request. Within a minute,
arrivals are taken as Poisson with that minute's rate, so the offered load is
a = rate x mean duration (Erlang), and by the Erlang-B formula (which holds
for any distribution of durations) a fraction B(n, a) of the requests find n
environments busy. Under ordered hunting, environments 1..n carry exactly the
rest: the requests served on 1..n are count x (1 - B(n, a)).

What this approximates, beside Poisson within a minute:

- billed milliseconds are the mean duration rounded as the platform rounds
  one request, or plus half a step where that is more (each request rounded
  up, the fraction taken as uniform; `platforms.Platform.billed_mean_ms`);
- cold starts: the environments a minute needs are its peak concurrency,
  taken as the 99.9th percentile of Poisson(a); an environment above n is
  created (cold) when that need rises above what any minute within the
  keep-alive before it had already created.
"""

from __future__ import annotations

from .tally import Sums

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["MinuteTally", "erlang_b", "peak_need"]

_NEED_QUANTILE = 0.999
_NORMAL_ABOVE = 500.0


def erlang_b(most: int, load: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``[n, i]``: the blocking probability of n servers, n = 0..most, under load ``load[i]``.

    The stable recursion B(0) = 1, B(n) = a B(n-1) / (n + a B(n-1)).
    """
    import numpy as np

    out = np.empty((most + 1, len(load)))
    out[0] = 1.0
    for n in range(1, most + 1):
        previous = load * out[n - 1]
        out[n] = previous / (n + previous)
    return out


def peak_need(load: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Environments a minute needs: the 99.9th percentile of Poisson(load), at least 1 with load.

    Above a few hundred Erlang, where exp(-load) underflows, the normal
    approximation (mean + 3.1 standard deviations) stands in.
    """
    import numpy as np

    large = load > _NORMAL_ABOVE
    need = np.where(large, np.ceil(load + 3.1 * np.sqrt(load)), 0).astype(np.int64)
    small = np.where(large, 0.0, load)
    pmf = np.exp(-small)
    cdf = pmf.copy()
    k = 0
    remaining = ~large & (cdf < _NEED_QUANTILE)
    # walk k up until every minute's cumulative probability reaches the quantile
    while remaining.any():
        k += 1
        pmf = pmf * small / k
        cdf = cdf + pmf
        need[remaining] = k
        remaining = remaining & (cdf < _NEED_QUANTILE)
    return np.where(load > 0, np.maximum(need, 1), 0)


class MinuteTally(Sums):
    """The sums (`tally.Sums`) over minutes of counts."""

    def __init__(
        self,
        *,
        hour: npt.NDArray[np.int64],
        minute: npt.NDArray[np.int64],
        count: npt.NDArray[np.float64],
        mean_ms: npt.NDArray[np.float64],
        billed_ms: npt.NDArray[np.float64],
        keep_alive_s: float,
    ) -> None:
        import numpy as np

        load = count / 60.0 * mean_ms / 1000.0
        need = peak_need(load)
        self.need = need
        self.peak = int(need.max()) if len(need) else 0
        blocked = erlang_b(self.peak, load)  # [n, minute]
        served = count * (1.0 - blocked)  # requests on environments 1..n
        billed = billed_ms
        created = _created_above(minute, need, self.peak, keep_alive_s)  # [n, minute]
        per_minute = {  # [n, minute]: over the requests on environments 1..n
            "requests": served,
            "billed_ms": served * billed,
            "billed_cold_ms": served * billed,  # no init is known from minute counts
            "busy_s": served * mean_ms / 1000.0,
            "cold": created[0] - created,  # cold starts below n are absorbed by n warm ones
        }
        whole = {  # [minute]: over all of a minute's requests (some find even the peak busy)
            "requests": count,
            "billed_ms": count * billed,
            "billed_cold_ms": count * billed,
            "busy_s": count * mean_ms / 1000.0,
            "cold": created[0],
        }
        self.cum = {}
        self.total = {}
        for name, values in per_minute.items():
            table = np.zeros((24, self.peak + 1))
            for n in range(self.peak + 1):
                table[:, n] = np.bincount(hour, weights=values[n], minlength=24)
            self.cum[name] = table
            self.total[name] = np.bincount(hour, weights=whole[name], minlength=24).astype(float)


def _created_above(
    minute: npt.NDArray[np.int64], need: npt.NDArray[np.int64], most: int, keep_alive_s: float
) -> npt.NDArray[np.float64]:
    """``[n, i]``: environments above n created in minute i (need above what was kept alive)."""
    import numpy as np

    order = np.argsort(minute, kind="stable")
    kept = np.zeros(len(need), dtype=np.int64)  # the most needed within the keep-alive before
    window = max(1, int(keep_alive_s // 60))
    sorted_minutes = minute[order]
    sorted_need = need[order]
    for i in range(len(order)):
        low = np.searchsorted(sorted_minutes, sorted_minutes[i] - window, side="left")
        kept[order[i]] = sorted_need[low:i].max() if i > low else 0
    n = np.arange(most + 1)[:, None]
    return np.maximum(0, need[None, :] - np.maximum(kept[None, :], n)).astype(np.float64)
