"""The anchor: OpenTelemetry's Lambda instrumentation, set up as its documentation shows.

A TracerProvider with a BatchSpanProcessor around the OTLP span exporter of
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc``, else HTTP/protobuf), made the global
provider, then ``AwsLambdaInstrumentor().instrument()``, which wraps the handler
``_HANDLER`` names (this module's) in a span per invocation and force-flushes
the tracer and meter providers before each invocation returns. Everything else
is the instrumentation's and the exporters' defaults (endpoint from the
``OTEL_EXPORTER_OTLP_*`` variables, a 10 s export timeout, a 30 s flush timeout).

The three stages get a span each and their durations go to a histogram, with
the invocation's count and duration, as inferobs sends a span per stage and
those metrics. With ``BENCH_OTEL_METRICS`` set, a PeriodicExportingMetricReader
with the OTLP metric exporter sends them (the per-invocation flush exports
them); without it the MeterProvider has no reader and sends nothing, as in the
documentation's traces-only setup (a provider is set either way: without one
the instrumentation logs a warning on every invocation).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aws_lambda import (  # type: ignore[import-not-found]
    AwsLambdaInstrumentor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from work import infer, postprocess, preprocess

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
        OTLPSpanExporter,
    )

tracer = trace.get_tracer("bench")
meter = metrics.get_meter("bench")
invocations = meter.create_counter("faas.invocations", unit="{invocation}")
duration = meter.create_histogram("faas.invoke_duration", unit="s")
stage_duration = meter.create_histogram("inferobs.stage.duration", unit="s")


@contextmanager
def stage(name: str) -> Iterator[None]:
    start = time.perf_counter()
    with tracer.start_as_current_span(name):
        yield
    stage_duration.record(time.perf_counter() - start, {"stage": name})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start = time.perf_counter()
    with stage("preprocess"):
        x = preprocess(event)
    with stage("inference"):
        y = infer(x)
    with stage("postprocess"):
        out = postprocess(y)
    invocations.add(1)
    duration.record(time.perf_counter() - start)
    return out


readers: list[MetricReader] = []
if os.environ.get("BENCH_OTEL_METRICS"):
    readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
metrics.set_meter_provider(MeterProvider(metric_readers=readers))
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
AwsLambdaInstrumentor().instrument()  # replaces this module's `handler` with its wrapper
