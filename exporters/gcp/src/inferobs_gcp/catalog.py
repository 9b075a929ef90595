"""Which Cloud Monitoring metric each point of the metric table becomes.

The points come from `inferobs.export.metrics` (the one table); this says
only how Cloud Monitoring holds them: counters as CUMULATIVE INT64,
latencies and sizes as CUMULATIVE DISTRIBUTION with explicit buckets, the
peak memory and drift PSI as GAUGE DOUBLE. Per-stage latency is one metric
with a ``stage`` label (a request takes many series), and drift PSI one with
a ``column`` label. Standard library only.
"""

from __future__ import annotations

from inferobs.export.metrics import METRICS as TABLE
from inferobs.export.metrics import PSI_PREFIX, STAGE_PREFIX

from .series import BYTE_BOUNDS, LATENCY_BOUNDS

__all__ = ["DROPPED", "LABELS", "METRICS", "PREFIX", "PSI", "RESOURCE", "STAGE", "Kind"]

PREFIX = "custom.googleapis.com/inferobs/"
RESOURCE = "generic_task"  # project_id, location, namespace, job, task_id
# The record's fields written as labels on every metric: each of bounded cardinality.
LABELS = ("version", "model", "model_version", "variant")


class Kind:
    """How one of our metrics is written: kind, value type, unit, buckets, labels."""

    __slots__ = ("bounds", "description", "labels", "metric_kind", "unit", "value_type")

    def __init__(
        self,
        metric_kind: str,
        value_type: str,
        unit: str,
        row: str,
        *,
        bounds: tuple[float, ...] | None = None,
        labels: tuple[str, ...] = LABELS,
    ) -> None:
        self.metric_kind = metric_kind
        self.value_type = value_type
        self.unit = unit  # UCUM, as Cloud Monitoring takes it
        self.description = _DESCRIPTIONS.get(row, row)  # the table's row, where it has one
        self.bounds = bounds
        self.labels = labels


_DESCRIPTIONS = {row.name: row.description for row in TABLE}


def _counter(row: str) -> Kind:
    return Kind("CUMULATIVE", "INT64", "1", row)


def _latency(row: str, labels: tuple[str, ...] = LABELS) -> Kind:
    return Kind("CUMULATIVE", "DISTRIBUTION", "ms", row, bounds=LATENCY_BOUNDS, labels=labels)


STAGE = "stage_ms"
PSI = "drift/psi"
DROPPED = "dropped"

# our metric name (after PREFIX) -> how it is written
METRICS: dict[str, Kind] = {
    "invocations": _counter("invocations"),
    "duration_ms": _latency("duration_ms"),
    "init_ms": _latency("init_ms"),
    "coldstarts": _counter("coldstarts"),
    "errors": _counter("errors"),
    "timeouts": _counter("timeouts"),
    STAGE: _latency(f"{STAGE_PREFIX}<stage>_ms", (*LABELS, "stage")),
    "input_bytes": Kind("CUMULATIVE", "DISTRIBUTION", "By", "input_bytes", bounds=BYTE_BOUNDS),
    "max_rss_mb": Kind("GAUGE", "DOUBLE", "MiBy", "max_rss_mb"),
    PSI: Kind("GAUGE", "DOUBLE", "1", f"{PSI_PREFIX}<column>", labels=("column",)),
    DROPPED: Kind(
        "CUMULATIVE", "INT64", "1", "points of this instance that could not be sent", labels=()
    ),
}
