"""A record's spans: the invocation's, one per stage, their times, attributes and parent.

Standard library only at import; the OpenTelemetry objects are made by the
two functions at the end, which run on the sending thread. Attributes that
describe the environment (function, region, instance) are the resource's in
OpenTelemetry's conventions: `environment` gives them, `invocation` what
changes per call. Exception messages never become attributes, only types.
"""

from __future__ import annotations

import os
import sys

from inferobs.export.timeline import layout, span_ids
from inferobs.export.timeline import trace_id as record_trace_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["Parent", "environment", "invocation", "parent_now"]

# (trace id, span id, sampled, is the handler's own OpenTelemetry span)
Parent = tuple[int, int, bool, bool]

X_RAY_HEADER = "_X_AMZN_TRACE_ID"
_CLOUDS = {  # the record's platform -> (cloud.provider, cloud.platform)
    "aws_lambda": ("aws", "aws_lambda"),
    "gcp_cloud_functions": ("gcp", "gcp_cloud_functions"),
    "gcp_cloud_run": ("gcp", "gcp_cloud_run"),
    "azure_functions": ("azure", "azure_functions"),
}
_REGIONS = ("AWS_REGION", "GOOGLE_CLOUD_REGION", "REGION_NAME")
MIB = 1 << 20
# the record's field -> its attribute
_PER_CALL = {
    "id": "faas.invocation_id",
    "model": "inferobs.model",
    "model_version": "inferobs.model_version",
    "variant": "inferobs.variant",
}
_PER_PROCESS = {"function": "faas.name", "version": "faas.version", "instance_id": "faas.instance"}


def parent_now() -> Parent | None:
    """Where this invocation's span belongs, read on the handler's thread while it runs.

    The handler's current OpenTelemetry span when there is one (only looked
    for when the handler's code imported OpenTelemetry); else, on Lambda with
    active tracing, the platform's segment from the X-Ray trace header, whose
    ids are OpenTelemetry's in another spelling; else nowhere.
    """
    api = sys.modules.get("opentelemetry.trace")
    if api is not None:
        context = api.get_current_span().get_span_context()
        if context.is_valid:
            return context.trace_id, context.span_id, context.trace_flags.sampled, True
    header = os.environ.get(X_RAY_HEADER)
    if header:
        fields = dict(part.partition("=")[::2] for part in header.split(";"))
        root = fields.get("Root", "").split("-")
        try:
            if len(root) == 3 and root[0] == "1":
                trace_id, span_id = int(root[1] + root[2], 16), int(fields.get("Parent", ""), 16)
                if trace_id and span_id:
                    return trace_id, span_id, fields.get("Sampled") == "1", False
        except ValueError:  # not hex: a header we cannot join
            pass
    return None


def invocation(record: Mapping[str, Any]) -> dict[str, Any]:
    """The invocation span's own attributes (OpenTelemetry FaaS names where there are)."""
    out: dict[str, Any] = {
        "faas.trigger": "other",
        "faas.coldstart": bool(record.get("cold_start")),
    }
    _copy(record, _PER_CALL, out)
    if record.get("kind") == "timeout":
        out["error.type"] = "timeout"
    elif record.get("status") == "error":
        out["error.type"] = record.get("error_type") or "_OTHER"
    return out


def environment(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the record says of where it ran, as resource attributes; constant per process."""
    out: dict[str, Any] = {}
    cloud = _CLOUDS.get(record.get("platform") or "")
    if cloud is not None:
        out["cloud.provider"], out["cloud.platform"] = cloud
    region = next((os.environ[v] for v in _REGIONS if os.environ.get(v)), None)
    if region:
        out["cloud.region"] = region
    _copy(record, _PER_PROCESS, out)
    memory = record.get("memory_mb")
    if memory:
        out["faas.max_memory"] = memory * MIB  # bytes, as the convention counts it
    return out


def _copy(record: Mapping[str, Any], names: dict[str, str], out: dict[str, Any]) -> None:
    for field, name in names.items():
        value = record.get(field)
        if value is not None:
            out[name] = value


def readable(
    record: Mapping[str, Any], parent: Parent | None, resource: Any, scope: Any
) -> list[Any]:
    """The record's spans as the SDK's finished spans, for an OTLP span exporter."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    sampled = TraceFlags(TraceFlags.SAMPLED)
    trace_id = parent[0] if parent else record_trace_id(record)
    above = (
        SpanContext(trace_id, parent[1], is_remote=not parent[3], trace_flags=sampled)
        if parent
        else None
    )
    # under the handler's own span ours is one step of its work; else it is the invocation
    kind = SpanKind.INTERNAL if parent and parent[3] else SpanKind.SERVER
    nodes = layout(record)
    contexts: list[Any] = []
    spans = []
    for span_id, (name, holder, start, end, failed, _) in zip(
        span_ids(len(nodes)), nodes, strict=True
    ):
        context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=sampled)
        contexts.append(context)
        spans.append(
            ReadableSpan(
                name,
                context=context,
                parent=contexts[holder] if holder >= 0 else above,
                resource=resource,
                attributes=invocation(record) if holder < 0 else None,
                kind=kind if holder < 0 else SpanKind.INTERNAL,
                status=Status(StatusCode.ERROR) if failed else Status(StatusCode.UNSET),
                start_time=start,
                end_time=end,
                instrumentation_scope=scope,
            )
        )
    return spans


def through(
    tracer: Any, record: Mapping[str, Any], parent: Parent | None, extra: dict[str, Any]
) -> None:
    """The record's spans started and ended through the handler's own tracer, so its
    processors export them; ``extra`` (the environment) goes on the invocation span,
    since the resource is theirs."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

    context = None
    if parent is not None:
        flags = TraceFlags(TraceFlags.SAMPLED if parent[2] else TraceFlags.DEFAULT)
        above = SpanContext(parent[0], parent[1], is_remote=not parent[3], trace_flags=flags)
        context = trace.set_span_in_context(NonRecordingSpan(above))
    kind = SpanKind.INTERNAL if parent and parent[3] else SpanKind.SERVER
    opened: list[Any] = []
    for name, holder, start, end, failed, _ in layout(record):
        if holder < 0:
            span = tracer.start_span(
                name, context, kind, {**extra, **invocation(record)}, start_time=start
            )
        else:
            inside = trace.set_span_in_context(opened[holder])
            span = tracer.start_span(name, inside, start_time=start)
        if failed:
            span.set_status(StatusCode.ERROR)
        opened.append(span)
        span.end(end)
