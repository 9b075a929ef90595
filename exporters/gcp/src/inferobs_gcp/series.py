"""Per-series state between writes: what one instance has counted since it started.

Cloud Monitoring takes at most one point per series per sampling period, and
user-defined metrics cannot be DELTA, so each series keeps a running total
(a sum, a distribution, or the latest gauge value) from a fixed start time;
every write sends the total so far. A write that is lost loses nothing the
next one does not carry. Standard library only: ``add`` runs on the handler's
path.
"""

from __future__ import annotations

from bisect import bisect_right

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    Value: TypeAlias = "int | float | Buckets"
    # (metric, resource labels' values, metric labels as (name, value) pairs)
    Key: TypeAlias = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]

__all__ = [
    "BYTE_BOUNDS",
    "LATENCY_BOUNDS",
    "Buckets",
    "Distribution",
    "Gauge",
    "Series",
    "Snapshot",
    "Sum",
]

# Bucket bounds, in the metric's unit: bucket i holds values in [bounds[i-1], bounds[i]),
# with one more bucket below the first bound and one above the last.
# Milliseconds: 1 ms to 15 min (Lambda's longest timeout), about three per decade.
LATENCY_BOUNDS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500,
    1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 120_000, 300_000, 900_000,
)  # fmt: skip
# Bytes: powers of four from 256 B to 1 GiB.
BYTE_BOUNDS: tuple[float, ...] = tuple(float(4**n) for n in range(4, 16))
_HUGE = 1e300  # beyond it a value is taken for infinite; NaN fails every comparison


class Buckets:
    """A distribution's totals at one moment: count, mean, squared deviations, buckets."""

    __slots__ = ("bounds", "counts", "mean", "n", "squares")

    def __init__(
        self,
        n: int,
        mean: float,
        squares: float,
        counts: tuple[int, ...],
        bounds: tuple[float, ...],
    ) -> None:
        self.n = n
        self.mean = mean
        self.squares = squares  # sum of squared deviations from the mean
        self.counts = counts
        self.bounds = bounds


class Snapshot:
    """One point of one series, ready to send: immutable once made.

    ``key`` is (metric, resource labels, metric labels); the sender thread
    reads snapshots while the handler's thread goes on counting.
    """

    __slots__ = ("end_ns", "key", "start_ns", "value")

    def __init__(self, key: Key, start_ns: int, end_ns: int, value: Value) -> None:
        self.key = key
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.value = value


class Series:
    """One series' identity, start time and last point's end time; its totals in subclasses."""

    __slots__ = ("end_ns", "key", "start_ns")

    def __init__(self, key: Key, start_ns: int) -> None:
        self.key = key
        self.start_ns = start_ns
        self.end_ns: int | None = None  # the last point's, once one was cut

    def add(self, value: float) -> None:
        raise NotImplementedError

    def value(self) -> Value:
        raise NotImplementedError

    def cut(self, end_ns: int) -> Snapshot:
        """The totals so far as a point ending at ``end_ns``."""
        self.end_ns = end_ns
        return Snapshot(self.key, self.start_ns, end_ns, self.value())


class Sum(Series):
    """A CUMULATIVE INT64: the total of the values added since ``start_ns``."""

    __slots__ = ("total",)

    def __init__(self, key: Key, start_ns: int) -> None:
        super().__init__(key, start_ns)
        self.total = 0

    def add(self, value: float) -> None:
        self.total += int(value)

    def value(self) -> Value:
        return self.total


class Distribution(Series):
    """A CUMULATIVE DISTRIBUTION: every value added since ``start_ns``, in buckets.

    The mean and the sum of squared deviations are kept with Welford's
    update, which stays exact where summing squares would lose precision.
    """

    __slots__ = ("bounds", "counts", "mean", "n", "squares")

    def __init__(self, key: Key, start_ns: int, bounds: tuple[float, ...]) -> None:
        super().__init__(key, start_ns)
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.n = 0
        self.mean = 0.0
        self.squares = 0.0

    def add(self, value: float) -> None:
        if not -_HUGE < value < _HUGE:
            return  # NaN or infinite: one would spoil the series' mean, and every call after
        self.counts[bisect_right(self.bounds, value)] += 1
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.squares += delta * (value - self.mean)

    def value(self) -> Value:
        return Buckets(self.n, self.mean, self.squares, tuple(self.counts), self.bounds)


class Gauge(Series):
    """A GAUGE DOUBLE: the latest value added (its points have no start time)."""

    __slots__ = ("latest",)

    def __init__(self, key: Key, start_ns: int) -> None:
        super().__init__(key, start_ns)
        self.latest = 0.0

    def add(self, value: float) -> None:
        if -_HUGE < value < _HUGE:
            self.latest = float(value)

    def value(self) -> Value:
        return self.latest
