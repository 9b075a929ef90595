"""The metric table's points as OpenTelemetry instruments, and their aggregation.

`inferobs.export.metrics` says what each record gives; here each point finds
its instrument: a row's OpenTelemetry name where the table has one
(``duration_ms`` is ``faas.invoke_duration``), else an ``inferobs.`` name.
Times become seconds and sizes bytes, the conventions' units. Counts are
monotonic sums, times and sizes histograms, a drift window's PSI a gauge. A
backend that takes several points per call gets the stage and the drift
column as attributes of one instrument, not one instrument per stage.

`Series` aggregates on the sending thread, as totals for the process
(cumulative, the specification's default) or per export (delta), and builds
the SDK's `MetricsData` for an OTLP metric exporter; standard library only
until then.
"""

from __future__ import annotations

import bisect
import time

from inferobs.export.metrics import (
    METRICS,
    PSI_PREFIX,
    STAGE_PREFIX,
    invocation_points,
    window_points,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    # a point to record: (table name, value in the table's unit, attributes)
    Point = tuple[str, float, dict[str, Any]]

__all__ = [
    "DROPPED",
    "INSTRUMENTS",
    "Instrument",
    "Series",
    "instrument_of",
    "points",
    "record_through",
]

SECONDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
BYTES = tuple(float(1 << n) for n in range(10, 35, 2))  # 1 KiB .. 16 GiB, by fours

SUM, HISTOGRAM, GAUGE = "sum", "histogram", "gauge"


class Instrument:
    """One OpenTelemetry instrument: its name, unit, kind and how table values convert."""

    __slots__ = ("bounds", "description", "kind", "name", "scale", "unit")

    def __init__(self, name: str, unit: str, kind: str, scale: float, description: str) -> None:
        self.name = name
        self.unit = unit
        self.kind = kind
        self.scale = scale  # table value * scale = the instrument's unit
        self.description = description
        self.bounds = SECONDS if unit == "s" else BYTES if unit == "By" else ()


def _instruments() -> dict[str, Instrument]:
    """The table's rows by their table name (``stage.`` and ``drift.psi.`` rows by prefix)."""
    out = {}
    for row in METRICS:
        name = row.otel
        if row.unit == "Count":
            kind, scale = SUM, 1.0
            unit = "{" + (name or row.name).rpartition(".")[2].removesuffix("s") + "}"
        elif row.unit == "Milliseconds":
            kind, scale, unit = HISTOGRAM, 0.001, "s"
        elif row.unit in ("Bytes", "Megabytes"):
            kind, scale, unit = HISTOGRAM, (1 << 20) if row.unit == "Megabytes" else 1, "By"
        else:
            kind, scale, unit = GAUGE, 1.0, "1"
        key = row.name
        if key.startswith(STAGE_PREFIX):
            key, name = STAGE_PREFIX, "inferobs.stage.duration"
        elif key.startswith(PSI_PREFIX):
            key, name = PSI_PREFIX, "inferobs.drift.psi"
        elif name is None:
            name = "inferobs." + row.name.replace("_bytes", ".size")
        out[key] = Instrument(name, unit, kind, scale, row.description)
    return out


INSTRUMENTS = _instruments()
# What could not be sent, in records and drift windows: not a row of the table, which
# describes records, but sent beside its metrics.
DROPPED = "dropped"
INSTRUMENTS[DROPPED] = Instrument("inferobs.dropped", "{record}", SUM, 1.0, "records not sent")


def points(item: Mapping[str, Any], window: bool = False) -> list[Point]:
    """A record's (or a drift window's) points, with the model arm as attributes (bounded;
    the environment is the resource's)."""
    shared = {
        f"inferobs.{f}": item[f]
        for f in ("model", "model_version", "variant")
        if item.get(f) is not None
    }
    found = window_points(item) if window else invocation_points(item)
    return [(name, value, shared) for name, _, value in found]


def instrument_of(name: str, attributes: dict[str, Any]) -> tuple[Instrument, dict[str, Any]]:
    """A table point's instrument, and its attributes with the stage or column its name
    carries."""
    if name.startswith(STAGE_PREFIX):
        return INSTRUMENTS[STAGE_PREFIX], {**attributes, "stage": name[len(STAGE_PREFIX) : -3]}
    if name.startswith(PSI_PREFIX):
        return INSTRUMENTS[PSI_PREFIX], {**attributes, "column": name[len(PSI_PREFIX) :]}
    return INSTRUMENTS[name], attributes


class Series:
    """Every series' aggregate since the start (cumulative) or the last export (delta)."""

    def __init__(self, delta: bool) -> None:
        self.delta = delta
        self.since = time.time_ns()
        # (instrument name, attributes) -> [instrument, attributes, start, aggregate]
        self._series: dict[tuple[str, tuple[tuple[str, Any], ...]], list[Any]] = {}
        self._gauges: list[tuple[Instrument, dict[str, Any], float, int]] = []

    def add(self, name: str, value: float, attributes: dict[str, Any]) -> None:
        instrument, attributes = instrument_of(name, attributes)
        value *= instrument.scale
        if instrument.kind == GAUGE:
            self._gauges.append((instrument, attributes, value, time.time_ns()))
            return
        key = (instrument.name, tuple(sorted(attributes.items())))
        entry = self._series.get(key)
        if entry is None:
            if instrument.kind == SUM:
                aggregate: list[Any] = [0]
            else:  # count, sum, min, max, bucket counts
                aggregate = [0, 0.0, value, value, [0] * (len(instrument.bounds) + 1)]
            entry = self._series[key] = [instrument, attributes, self.since, aggregate]
        aggregate = entry[3]
        if instrument.kind == SUM:
            aggregate[0] += value
        else:
            aggregate[0] += 1
            aggregate[1] += value
            aggregate[2] = min(aggregate[2], value)
            aggregate[3] = max(aggregate[3], value)
            aggregate[4][bisect.bisect_left(instrument.bounds, value)] += 1

    def __bool__(self) -> bool:
        return bool(self._series or self._gauges)

    def take(self, resource: Any, scope: Any) -> Any:
        """The SDK's `MetricsData` of every series now; with delta, the aggregates restart."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Gauge,
            Histogram,
            HistogramDataPoint,
            Metric,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )

        now = time.time_ns()
        temporality = (
            AggregationTemporality.DELTA if self.delta else AggregationTemporality.CUMULATIVE
        )
        grouped: dict[str, tuple[Instrument, list[Any]]] = {}
        for instrument, attributes, start, aggregate in self._series.values():
            if instrument.kind == SUM:
                point: Any = NumberDataPoint(attributes, start, now, aggregate[0])
            else:
                count, total, low, high, buckets = aggregate
                point = HistogramDataPoint(
                    attributes,
                    start,
                    now,
                    count,
                    total,
                    list(buckets),
                    instrument.bounds,
                    low,
                    high,
                )
            grouped.setdefault(instrument.name, (instrument, []))[1].append(point)
        for instrument, attributes, value, at in self._gauges:
            grouped.setdefault(instrument.name, (instrument, []))[1].append(
                NumberDataPoint(attributes, at, at, value)
            )
        self._gauges = []
        if self.delta:
            self._series = {}
            self.since = now
        metrics = []
        for instrument, points in grouped.values():
            data: Any
            if instrument.kind == SUM:
                data = Sum(points, temporality, is_monotonic=True)
            elif instrument.kind == HISTOGRAM:
                data = Histogram(points, temporality)
            else:
                data = Gauge(points)
            metrics.append(Metric(instrument.name, instrument.description, instrument.unit, data))
        return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, metrics, "")], "")])


def record_through(instruments: Mapping[str, Any], found: Iterable[Point]) -> None:
    """Points recorded on instruments of the handler's own meter, by instrument name."""
    for name, value, shared in found:
        instrument, attributes = instrument_of(name, shared)
        target = instruments[instrument.name]
        if instrument.kind == SUM:
            target.add(value * instrument.scale, attributes)
        elif instrument.kind == HISTOGRAM:
            target.record(value * instrument.scale, attributes)
        else:
            target.set(value * instrument.scale, attributes)
