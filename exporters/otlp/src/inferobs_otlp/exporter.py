"""`OTLPExporter`: spans and metrics of each invocation over OTLP, sent off the handler's thread.

``export`` only notes where the invocation's span belongs (the handler's
current OpenTelemetry span, or Lambda's X-Ray segment) and queues the record
in a `BatchSender`; the sender's thread turns records into spans and metric
points and calls the OTLP exporters itself, with a short timeout. The SDK's
BatchSpanProcessor and PeriodicExportingMetricReader are not used: each keeps
a thread and a schedule of its own, and serverless code has to force-flush
them on every invocation, which is most of what OpenTelemetry costs there.

Where the handler's code set an SDK tracer (or meter) provider of its own,
ours joins it: spans are started through its tracer (so its processors,
sampler and resource apply) and points recorded on its instruments (its
readers export them); nothing of that signal goes through our exporters.
"""

from __future__ import annotations

import sys
import time

from inferobs.export.sending import BatchSender, quiet

from . import settings
from .points import DROPPED, GAUGE, HISTOGRAM, INSTRUMENTS, SUM, Series, points, record_through
from .spans import environment, parent_now, readable, through

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from inferobs.record import Invocation

    from .spans import Parent

__all__ = ["NotSent", "OTLPExporter"]

SCOPE = "inferobs"
_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics"}
_OTLP = "opentelemetry.exporter.otlp.proto."
_CLASSES = {  # (protocol, signal) -> the OpenTelemetry exporter's module and class
    ("grpc", "traces"): (_OTLP + "grpc.trace_exporter", "OTLPSpanExporter"),
    ("grpc", "metrics"): (_OTLP + "grpc.metric_exporter", "OTLPMetricExporter"),
    ("http/protobuf", "traces"): (_OTLP + "http.trace_exporter", "OTLPSpanExporter"),
    ("http/protobuf", "metrics"): (_OTLP + "http.metric_exporter", "OTLPMetricExporter"),
}


class NotSent(Exception):
    """The OTLP receiver did not take a batch (refused, throttled, unreachable, timed out)."""


class OTLPExporter:
    """Sends each invocation's spans and metrics to an OTLP receiver.

    Configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables (docs/otlp.md);
    the arguments override them for both signals: ``endpoint`` (a base URL:
    ``/v1/traces`` and ``/v1/metrics`` are added for HTTP), ``headers``,
    ``protocol`` (``grpc`` or ``http/protobuf``), ``timeout_ms`` (a bound on
    each export, retries included) and ``temporality`` (``cumulative``,
    ``delta`` or ``lowmemory``). A value out of range is a `ConfigError`.
    """

    traces_stages = True  # records carry stage_starts: stages are laid on the timeline

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        protocol: str | None = None,
        timeout_ms: float | None = None,
        temporality: str | None = None,
    ) -> None:
        traces = settings.signal("traces", protocol, timeout_ms)
        metrics = settings.signal("metrics", protocol, timeout_ms)
        self._series = Series(settings.delta_temporality(temporality))
        self._timeout_s = max(traces.timeout_s, metrics.timeout_s)
        self._sender = BatchSender(self._send, name="otlp")
        # the libraries load now, at init, not inside the first invocation's flush
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from inferobs import __version__

        self._resource_type = Resource
        self._sdk_tracer_provider = TracerProvider
        self._scope = InstrumentationScope(SCOPE, __version__)
        self._resources: dict[tuple[tuple[str, Any], ...], Any] = {}
        self._latest: Any = None  # the resource of the last record sent
        self._tracer: tuple[Any, Any] = (None, None)  # (the handler's provider, our tracer on it)
        self._meter: tuple[Any, Any] = (None, None)  # (the handler's provider, our instruments)
        # a setting the library refuses (a compression it does not know) raises here: inferobs
        # then says so once and goes on with its other exporters
        self._spans = _exporter("traces", traces, endpoint, headers)
        self._metrics = _exporter("metrics", metrics, endpoint, headers)

    @classmethod
    def check(cls) -> None:
        """Check the variables read here, at configure time, without loading OpenTelemetry."""
        for name in _PATHS:
            settings.signal(name)
        settings.delta_temporality()

    def export(self, record: Invocation) -> None:
        """Queue the record with the span it belongs under; nothing is sent here."""
        if record.get("kind") == "warmup":  # nobody's request: no span, no metrics
            return
        self._sender.add((False, record, parent_now()))

    def export_window(self, window: dict[str, Any]) -> None:
        """Queue a drift window: each column's instance PSI becomes a gauge point."""
        self._sender.add((True, window, None))

    def flush_by(self, deadline: float) -> bool:
        """Have what is queued sent, waiting until ``deadline`` (``time.monotonic()``) at most."""
        return self._sender.flush_by(deadline)

    def flush(self) -> bool:
        """Have what is queued sent, waiting for one export timeout at most."""
        return self._sender.flush_by(time.monotonic() + self._timeout_s)

    def _send(self, batch: list[tuple[bool, Mapping[str, Any], Parent | None]]) -> None:
        """On the sender's thread: spans and points of a batch, to the handler's providers
        where it set its own, else to our exporters; raises `NotSent` if either refused."""
        tracer = self._their_tracer()
        instruments = self._their_instruments()
        spans: list[Any] = []
        found = []
        for is_window, item, parent in batch:
            found.extend(points(item, window=is_window))
            if is_window:
                continue
            if tracer is not None:
                through(tracer, item, parent, environment(item))
                continue
            self._latest = self._resource(item)
            if parent is None or parent[2]:  # a trace not sampled gets no spans
                spans.extend(readable(item, parent, self._latest, self._scope))
        dropped = self._sender.take_dropped()
        if dropped:
            found.append((DROPPED, dropped, {}))
        failed = []
        if spans and self._spans.export(spans).name != "SUCCESS":
            failed.append("traces")
        if instruments is not None:
            record_through(instruments, found)
        else:
            for name, value, attributes in found:
                self._series.add(name, value, attributes)
            if self._series:
                # the process's resource: that of its records (a drift window has none)
                resource = self._latest or self._resource({})
                data = self._series.take(resource, self._scope)
                if self._metrics.export(data).name != "SUCCESS":
                    failed.append("metrics")
        if failed:
            raise NotSent(f"the OTLP receiver did not take the {' and '.join(failed)}")

    def _resource(self, record: Mapping[str, Any]) -> Any:
        """The resource of a record's environment, made once per environment (a process
        has one). ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` win over what the
        record says: they are the user's word."""
        attributes = environment(record)
        key = tuple(sorted(attributes.items()))
        found = self._resources.get(key)
        if found is None:
            from opentelemetry.sdk.resources import OTELResourceDetector

            service = record.get("service") or record.get("function")
            if service:
                attributes["service.name"] = service
            found = self._resource_type.create(attributes).merge(OTELResourceDetector().detect())
            self._resources[key] = found
        return found

    def _their_tracer(self) -> Any:
        """A tracer on the handler's own SDK tracer provider, if it set one; else None."""
        api = sys.modules.get("opentelemetry.trace")
        provider = api.get_tracer_provider() if api is not None else None
        if not isinstance(provider, self._sdk_tracer_provider):
            return None
        if self._tracer[0] is not provider:
            self._tracer = (provider, provider.get_tracer(SCOPE, self._scope.version))
        return self._tracer[1]

    def _their_instruments(self) -> dict[str, Any] | None:
        """Our instruments on the handler's own SDK meter provider, if it set one; else None."""
        api = sys.modules.get("opentelemetry.metrics")
        provider = api.get_meter_provider() if api is not None else None
        sdk = sys.modules.get("opentelemetry.sdk.metrics")
        if sdk is None or not isinstance(provider, sdk.MeterProvider):
            return None
        if self._meter[0] is not provider:
            meter = provider.get_meter(SCOPE, self._scope.version)
            made: dict[str, Any] = {}
            for instrument in INSTRUMENTS.values():
                if instrument.kind == SUM:
                    made[instrument.name] = meter.create_counter(
                        instrument.name, instrument.unit, instrument.description
                    )
                elif instrument.kind == HISTOGRAM:
                    made[instrument.name] = meter.create_histogram(
                        instrument.name,
                        instrument.unit,
                        instrument.description,
                        explicit_bucket_boundaries_advisory=instrument.bounds,
                    )
                elif instrument.kind == GAUGE:
                    made[instrument.name] = meter.create_gauge(
                        instrument.name, instrument.unit, instrument.description
                    )
            self._meter = (provider, made)
        return self._meter[1]  # type: ignore[no-any-return]


def _exporter(
    signal: str,
    chosen: settings.Signal,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
) -> Any:
    """The OpenTelemetry OTLP exporter of a signal, for its protocol; endpoint, headers,
    compression, certificates and ``insecure`` come from the variables unless given."""
    import importlib

    quiet("opentelemetry.exporter.otlp")
    module, name = _CLASSES[chosen.protocol, signal]
    made = getattr(importlib.import_module(module), name)
    if endpoint is not None and chosen.protocol != "grpc":
        endpoint = endpoint.rstrip("/") + _PATHS[signal]
    return made(
        endpoint=endpoint, headers=dict(headers) if headers else None, timeout=chosen.timeout_s
    )
