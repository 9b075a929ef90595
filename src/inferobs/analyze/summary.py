"""Per-group operating figures from invocation records: the body of `obs report`.

Records are grouped by function, model, model version and variant, so models,
versions and shadow deployments compare side by side (off-cloud, where records
carry no function name, the model is what tells one group from another).
Warm-up pings are counted but kept out of latency and cold-start figures (init
included: the init figures are those requests waited for); timeouts are
counted and kept out of latency (their duration is cut short). Stage
percentiles come from the lines that carry detail, each weighted by
``1 / sample_rate``, so sampled setups report what the whole traffic did.

Percentiles are the weighted inverse of the empirical distribution: the
smallest value whose cumulative weight reaches the fraction asked for (with
equal weights, the nearest-rank percentile).
"""

from __future__ import annotations

from ..export.lines import encode
from ..read import function_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..record import Invocation

    GroupKey = tuple[str | None, str | None, str | None, str | None]  # function .. variant

__all__ = ["PERCENTILES", "GroupSummary", "Rates", "percentile", "summarize_records"]

PERCENTILES = (50, 95, 99)


def percentile(values: list[tuple[float, float]], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of (value, weight) pairs; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    total = sum(weight for _, weight in ordered)
    target = q / 100 * total
    reached = 0.0
    for value, weight in ordered:
        reached += weight
        if reached >= target - 1e-9 * total:
            return value
    return ordered[-1][0]


class Rates:
    """Error and cold-start rates of requests, for any group that counts them."""

    __slots__ = ()

    invocations: int
    errors: int
    cold_starts: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.invocations if self.invocations else None

    @property
    def cold_start_rate(self) -> float | None:
        return self.cold_starts / self.invocations if self.invocations else None


class GroupSummary(Rates):
    """The figures for one (function, model, model version, variant) group."""

    __slots__ = (
        "cold_starts",
        "duration",
        "errors",
        "init",
        "invocations",
        "key",
        "line_bytes",
        "stages",
        "timeouts",
        "warmups",
    )

    def __init__(self, key: GroupKey) -> None:
        self.key = key
        self.invocations = 0  # requests: invocations and timeouts, not warm-ups
        self.errors = 0  # requests that ended in error, timeouts included
        self.timeouts = 0
        self.cold_starts = 0
        self.warmups = 0
        self.duration: list[tuple[float, float]] = []
        self.init: list[tuple[float, float]] = []
        self.stages: dict[str, list[tuple[float, float]]] = {}
        self.line_bytes: list[tuple[float, float]] = []

    @property
    def function(self) -> str | None:
        return self.key[0]

    @property
    def model(self) -> str | None:
        return self.key[1]

    @property
    def model_version(self) -> str | None:
        return self.key[2]

    @property
    def variant(self) -> str | None:
        return self.key[3]

    def add(self, record: Invocation) -> None:
        self.line_bytes.append((float(len(encode(record))), 1.0))
        if record.kind == "warmup":
            self.warmups += 1
            return
        self.invocations += 1
        if record.status == "error":
            self.errors += 1
        if record.cold_start:
            self.cold_starts += 1
            if record.init_ms is not None:  # the init a request waited for
                self.init.append((record.init_ms, 1.0))
        if record.kind == "timeout":
            self.timeouts += 1
            return
        self.duration.append((record.duration_ms, 1.0))
        if "stages" in record:
            weight = 1.0 / record.sample_rate if record.sample_rate > 0 else 1.0
            for name, ms in record.stages.items():
                self.stages.setdefault(name, []).append((ms, weight))

    def as_dict(self) -> dict[str, object]:
        """Plain data, for JSON output and for other report sections to build on."""

        def spread(values: list[tuple[float, float]]) -> dict[str, float | None]:
            return {f"p{q}": percentile(values, q) for q in PERCENTILES}

        return {
            "function": self.function,
            "model": self.model,
            "model_version": self.model_version,
            "variant": self.variant,
            "invocations": self.invocations,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "timeouts": self.timeouts,
            "cold_starts": self.cold_starts,
            "cold_start_rate": self.cold_start_rate,
            "warmups": self.warmups,
            "duration_ms": spread(self.duration),
            "cold_init_ms": spread(self.init),
            "stages_ms": {name: spread(values) for name, values in self.stages.items()},
            "line_bytes_p50": percentile(self.line_bytes, 50),
        }


def summarize_records(records: Iterable[Invocation]) -> list[GroupSummary]:
    """One summary per (function, model, model version, variant), in order of first appearance."""
    groups: dict[GroupKey, GroupSummary] = {}
    for record in records:
        key = (function_of(record), record.model, record.model_version, record.variant)
        group = groups.get(key)
        if group is None:
            group = groups[key] = GroupSummary(key)
        group.add(record)
    return list(groups.values())
