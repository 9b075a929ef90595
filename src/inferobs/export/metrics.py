"""The metrics every backend gets from a record: one table, one function per record kind.

Each metrics exporter (CloudWatch EMF, and the network backends after it)
turns records into metric points through here, so a figure has the same
name, unit and meaning wherever it lands; docs/metrics.md renders `METRICS`
as the table users read. Names follow the record's own fields where one
exists (``duration_ms`` is the record's ``duration_ms``), so a CloudWatch
metric, a log query and the analyzer agree; each row says which
OpenTelemetry FaaS semantic convention it stands for, where one does.

Standard library only: it runs on the handler's path.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["METRICS", "STAGE_PREFIX", "Metric", "invocation_points", "window_points"]

STAGE_PREFIX = "stage."  # stage.<path>_ms: one metric per stage (a dimension takes one value)
PSI_PREFIX = "drift.psi."  # drift.psi.<column>: per column, from a drift window line


class Metric:
    """One row of the table: what a metric is called, counts and stands for."""

    __slots__ = ("description", "name", "otel", "unit")

    def __init__(self, name: str, unit: str, otel: str | None, description: str) -> None:
        self.name = name
        self.unit = unit  # a CloudWatch unit name; OpenTelemetry exporters map it to UCUM
        self.otel = otel
        self.description = description


METRICS: tuple[Metric, ...] = (
    Metric("invocations", "Count", "faas.invocations", "1 per invocation or timeout line"),
    Metric("duration_ms", "Milliseconds", "faas.invoke_duration", "handler wall-clock time"),
    Metric("init_ms", "Milliseconds", "faas.init_duration", "init work, on an environment's first"),
    Metric("coldstarts", "Count", "faas.coldstarts", "1 when a request waited for init, else 0"),
    Metric("errors", "Count", "faas.errors", "1 when the invocation failed or timed out, else 0"),
    Metric("timeouts", "Count", "faas.timeouts", "1 on a timeout line, else 0"),
    Metric(
        f"{STAGE_PREFIX}<stage>_ms",
        "Milliseconds",
        None,
        "time in one stage (nested: `stage.inference/forward_ms`)",
    ),
    Metric("input_bytes", "Bytes", None, "the input's size, where its summary knows it"),
    Metric("max_rss_mb", "Megabytes", "faas.mem_usage", "peak resident memory so far"),
    Metric(
        f"{PSI_PREFIX}<column>",
        "None",
        None,
        "one instance's PSI of a column in a drift window (from the window line)",
    ),
)

# A point: (name, unit, value)
Point = tuple[str, str, float]


def invocation_points(record: Mapping[str, Any]) -> list[Point]:
    """The metric points one invocation record gives, in the table's order.

    Keep-warm pings give none: they are nobody's request. Counters are
    written as 0 too, so a backend's average of ``coldstarts`` or ``errors``
    is the rate.
    """
    kind = record.get("kind", "invocation")
    if kind == "warmup":
        return []
    failed = record.get("status") == "error"
    points: list[Point] = [
        ("invocations", "Count", 1),
        ("duration_ms", "Milliseconds", record["duration_ms"]),
    ]
    init_ms = record.get("init_ms")
    if init_ms is not None:
        points.append(("init_ms", "Milliseconds", init_ms))
    points.append(("coldstarts", "Count", 1 if record.get("cold_start") else 0))
    points.append(("errors", "Count", 1 if failed else 0))
    points.append(("timeouts", "Count", 1 if kind == "timeout" else 0))
    stages = record.get("stages")
    if stages:
        points.extend((f"{STAGE_PREFIX}{p}_ms", "Milliseconds", ms) for p, ms in stages.items())
    summary = record.get("input")
    size = summary.get("nbytes") if summary else None
    if isinstance(size, int) and not isinstance(size, bool):
        points.append(("input_bytes", "Bytes", size))
    rss = record.get("max_rss_mb")
    if rss is not None:
        points.append(("max_rss_mb", "Megabytes", rss))
    return points


def window_points(window: Mapping[str, Any]) -> list[Point]:
    """The metric points of a drift window line: each column's instance-local PSI."""
    psi = window.get("instance_psi") or {}
    return [(f"{PSI_PREFIX}{column}", "None", value) for column, value in psi.items()]
