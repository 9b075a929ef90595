"""Records and drift windows as the OpenTelemetry SDK's span and metric data, as Application
Insights reads them.

Imported on the sending thread only (it loads the OpenTelemetry SDK). The
Azure exporters turn what this builds into envelopes: a SERVER span into a
request, any other kind into a dependency (``InProc`` for an internal one),
its attributes into ``customDimensions``; a metric point into a
``customMetrics`` item whose point attributes are its ``customDimensions``;
the resource's ``service.name`` and ``service.instance.id`` into the cloud
role and role instance.

An invocation is one span (named after the model, else the function) with a
child span per stage, placed where the stage first started and as long as
it ran, nested as the stages nest. Its metrics are the metric table's
(`inferobs.export.metrics`), with the change the doc allows network
backends, as the other network exporters make it: the stage metrics are one
metric, ``stage_ms``, with a ``stage`` dimension, and a window's PSI one,
``drift.psi``, with a ``column`` dimension (one alert rule, split by it).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from inferobs.export.metrics import PSI_PREFIX, STAGE_PREFIX, invocation_points, window_points
from inferobs.export.timeline import layout, span_ids, trace_id

__all__ = ["DROPPED", "PSI_METRIC", "STAGE_METRIC", "Converter"]

SCOPE = InstrumentationScope("inferobs")
STAGE_METRIC = STAGE_PREFIX.rstrip(".") + "_ms"  # stage.<path>_ms as stage_ms{stage=<path>}
PSI_METRIC = PSI_PREFIX.rstrip(".")  # drift.psi.<column> as drift.psi{column=<column>}
DROPPED = "dropped"
# record field -> span attribute; present fields only
SPAN_FIELDS = (
    ("id", "faas.invocation_id"),
    ("function", "faas.name"),
    ("version", "faas.version"),
    ("instance_id", "faas.instance"),
    ("model", "inferobs.model"),
    ("model_version", "inferobs.model_version"),
    ("variant", "inferobs.variant"),
    ("init_ms", "inferobs.init_ms"),
    ("error_type", "inferobs.error_type"),
    ("error_stage", "inferobs.error_stage"),
)
# record (or window) field -> metric dimension: bounded values only, never ids
DIMENSIONS = ("function", "model", "model_version", "variant")
_ERROR = Status(StatusCode.ERROR)
_OK = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

Point = tuple[str, dict[str, Any], float, int]  # name, dimensions, value, time (epoch ns)


class Converter:
    """Turns a batch of queued records and windows into spans and metric data.

    ``as_requests``: invocation spans are SERVER spans (requests), else
    INTERNAL (dependencies); ``host`` is where the process runs when the
    records do not say (the Functions host's platform), ``site`` the app's
    name there (the cloud role the host's own telemetry uses).
    """

    def __init__(
        self,
        *,
        as_requests: bool,
        region: str | None = None,
        host_platform: str | None = None,
        site: str | None = None,
    ) -> None:
        self.kind = SpanKind.SERVER if as_requests else SpanKind.INTERNAL
        self.region = region
        self.host_platform = host_platform
        self.site = site
        self._resources: dict[tuple[Any, ...], Resource] = {}

    def convert(
        self, batch: list[dict[str, Any]], dropped: int
    ) -> tuple[list[ReadableSpan], MetricsData | None]:
        """The spans and the metric data (None when there are no points) of ``batch``,
        with ``dropped``, when not 0, as the ``dropped`` metric."""
        spans: list[ReadableSpan] = []
        points: dict[Resource, list[Point]] = {}
        for item in batch:
            resource = self._resource(item)
            if "instance_psi" in item:  # a drift window
                at = int(item.get("window_start") or time.time_ns())
                dims = _dimensions(item)
                points.setdefault(resource, []).extend(
                    (PSI_METRIC, {**dims, "column": name[len(PSI_PREFIX) :]}, value, at)
                    for name, _, value in window_points(item)
                )
                continue
            spans.extend(self._spans(item, resource))
            points.setdefault(resource, []).extend(_points(item))
        if dropped:
            anywhere = next(iter(points), None) or self._resource({})
            points.setdefault(anywhere, []).append((DROPPED, {}, dropped, time.time_ns()))
        if not points:
            return spans, None
        return spans, _metrics_data(points)

    def _resource(self, item: dict[str, Any]) -> Resource:
        """The cloud role (the service, else the app, else the function) and instance."""
        get = item.get
        key = (get("service"), get("function"), get("instance_id"), get("version"))
        resource = self._resources.get(key)
        if resource is None:
            service, function, instance, version = key
            attributes = {"service.name": service or self.site or function or "inferobs"}
            if instance:
                attributes["service.instance.id"] = instance
            if version:
                attributes["service.version"] = version
            resource = self._resources[key] = Resource(attributes)
        return resource

    def _spans(self, record: dict[str, Any], resource: Resource) -> list[ReadableSpan]:
        nodes = layout(record)
        trace = trace_id(record)
        contexts: list[SpanContext] = []
        out = []
        for span_id, (name, holder, first, last, failed, path) in zip(
            span_ids(len(nodes)), nodes, strict=True
        ):
            context = SpanContext(trace, span_id, is_remote=False, trace_flags=_SAMPLED)
            contexts.append(context)
            top = holder < 0
            out.append(
                ReadableSpan(
                    str(name),
                    context=context,
                    parent=None if top else contexts[holder],
                    resource=resource,
                    attributes=(
                        self._attributes(record, record.get("stages") or {})
                        if top
                        else {"inferobs.stage": path}
                    ),
                    kind=self.kind if top else SpanKind.INTERNAL,
                    status=_ERROR if failed else _OK,
                    start_time=first,
                    end_time=last,
                    instrumentation_scope=SCOPE,
                )
            )
        return out

    def _attributes(self, record: dict[str, Any], stages: dict[str, float]) -> dict[str, Any]:
        attributes: dict[str, Any] = {"faas.trigger": "other"}
        platform = record.get("platform")
        if not platform or platform == "local":
            platform = self.host_platform
        if platform:
            attributes["cloud.provider"] = platform.partition("_")[0]
            attributes["cloud.platform"] = platform
        if self.region:
            attributes["cloud.region"] = self.region
        attributes["faas.coldstart"] = bool(record.get("cold_start"))
        for field, name in SPAN_FIELDS:
            value = record.get(field)
            if value is not None:
                attributes[name] = value
        memory = record.get("memory_mb")
        if memory:
            attributes["faas.max_memory"] = memory * 1024 * 1024  # bytes, as the convention has it
        if record.get("kind") == "timeout":
            attributes["inferobs.kind"] = "timeout"
        for path, ms in stages.items():
            attributes[f"inferobs.{STAGE_PREFIX}{path}_ms"] = ms
        return attributes


def _points(record: dict[str, Any]) -> list[Point]:
    dims = _dimensions(record)
    dims["cold_start"] = bool(record.get("cold_start"))
    at = int(record["start"])
    out: list[Point] = []
    for name, _, value in invocation_points(record):
        if name.startswith(STAGE_PREFIX):
            out.append((STAGE_METRIC, {**dims, "stage": name[len(STAGE_PREFIX) : -3]}, value, at))
        else:
            out.append((name, dims, value, at))
    return out


def _dimensions(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in DIMENSIONS if item.get(key) is not None}


def _metrics_data(points: dict[Resource, list[Point]]) -> MetricsData:
    resource_metrics = []
    for resource, listed in points.items():
        by_name: dict[str, list[NumberDataPoint]] = {}
        for name, dims, value, at in listed:
            by_name.setdefault(name, []).append(NumberDataPoint(dims, at, at, value))
        metrics = [Metric(name, None, None, Gauge(data)) for name, data in by_name.items()]
        resource_metrics.append(ResourceMetrics(resource, [ScopeMetrics(SCOPE, metrics, "")], ""))
    return MetricsData(resource_metrics)
