"""OTLP: spans and metrics reach gRPC and HTTP receivers on loopback, built on the official
service definitions; a receiver that fails in any way never reaches the handler."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import inferobs as obs
from inferobs.context import faults_seen
from inferobs.record import Invocation
from inferobs_otlp import OTLPExporter

from .helpers import ManualClock
from .test_aws_xray import staged
from .test_lambda_lifecycle import function

START_NS = ManualClock().wall
ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
PROTOCOLS = ["grpc", "http/protobuf"]
DEADLINE_MS = 50
SLACK_S = 0.5  # machines are noisy: the bound is the deadline plus this, never tighter


class Receiver:
    """What an OTLP receiver was sent, and how it answers: ``fail`` (a gRPC status code or
    an HTTP status) for the next ``failures`` requests, after ``delay_s``."""

    def __init__(self) -> None:
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.fail: Any = None
        self.failures = 0
        self.delay_s = 0.0
        self.changed = threading.Condition()
        self.endpoint = ""
        self.protocol = ""

    def take(self, request: Any, headers: dict[str, str]) -> Any:
        """The failure to answer with, or None once the request is kept."""
        time.sleep(self.delay_s)
        with self.changed:
            if self.failures:
                self.failures -= 1
                return self.fail
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.traces.append(request)
            else:
                self.metrics.append(request)
            self.headers.append(headers)
            self.changed.notify_all()
        return None

    def wait(self, what: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(what, timeout=10)

    def spans(self, count: int) -> list[tuple[dict[str, Any], Any]]:
        """The first ``count`` spans, each with its resource's attributes."""

        def found() -> list[tuple[dict[str, Any], Any]]:
            return [
                (attributes(rs.resource.attributes), span)
                for request in self.traces
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

        self.wait(lambda: len(found()) >= count)
        return found()[:count]

    def points(self, name: str, at_least: int = 1) -> list[Any]:
        """Every data point of metric ``name`` received so far, once there are some."""

        def found() -> list[Any]:
            out = []
            for request in self.metrics:
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        for metric in sm.metrics:
                            if metric.name == name:
                                kind = metric.WhichOneof("data")
                                out.extend(getattr(metric, kind).data_points)
            return out

        self.wait(lambda: len(found()) >= at_least)
        return found()

    def metric(self, name: str) -> Any:
        self.points(name)
        for request in self.metrics:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name == name:
                            return metric
        raise AssertionError(name)


def attributes(pairs: Any) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        out[pair.key] = getattr(pair.value, kind)
    return out


def serve_grpc(receiver: Receiver) -> Callable[[], None]:
    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            return answer(request, context, trace_service_pb2.ExportTraceServiceResponse())

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            return answer(request, context, metrics_service_pb2.ExportMetricsServiceResponse())

    def answer(request: Any, context: Any, ok: Any) -> Any:
        failure = receiver.take(request, dict(context.invocation_metadata()))
        if failure is not None:
            context.abort(failure, "receiver says no")
        return ok

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    return lambda: server.stop(0)


def serve_http(receiver: Receiver) -> Callable[[], None]:
    kinds: dict[str, Any] = {
        "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
        "/v1/metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            kind = kinds.get(self.path)
            if kind is None or self.headers["Content-Type"] != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            failure = receiver.take(kind.FromString(body), dict(self.headers.items()))
            self.send_response(failure or 200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.endpoint = f"http://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


@pytest.fixture(autouse=True)
def no_otel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own OpenTelemetry settings are not the test's."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_") or name in ("_X_AMZN_TRACE_ID", "AWS_REGION"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")  # ms, as the specification says


# what stops the servers a test started, run when it ends
STOPS: list[Callable[[], None]] = []


@pytest.fixture(autouse=True)
def stop_servers() -> Iterator[None]:
    yield
    while STOPS:
        STOPS.pop()()


def start(protocol: str, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """A receiver of ``protocol``, where OTEL_EXPORTER_OTLP_* points, until the test ends."""
    receiver = Receiver()
    receiver.protocol = protocol
    STOPS.append((serve_grpc if protocol == "grpc" else serve_http)(receiver))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    return receiver


@pytest.fixture(params=PROTOCOLS)
def receiver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    return start(request.param, monkeypatch)


def resnet() -> Callable[[Any, Any], str]:
    """The handler of the X-Ray tests: stages preprocess 0-2 ms, inference 2-9 ms with
    forward 5-9 ms inside it, postprocess 9-9.5 ms, 14.5 ms in all; ``"fail"`` makes
    forward raise."""
    return staged(ManualClock(), model="resnet", model_version="v2")


def configured() -> OTLPExporter:
    """inferobs configured with a new OTLP exporter (returned) and the tests' deadline."""
    exporter = OTLPExporter()
    obs.configure(exporters=[exporter], flush_deadline_ms=DEADLINE_MS)
    return exporter


def timed(handler: Callable[[Any, Any], str], events: list[Any]) -> None:
    """Each call returns or raises what the handler does, within the flush deadline."""
    for event in events:
        began = time.monotonic()
        if event == "fail":
            with pytest.raises(ValueError, match="secret input 42"):
                handler(event, None)
        else:
            assert handler(event, None) == "done"
        assert time.monotonic() - began < DEADLINE_MS / 1000 + SLACK_S


def test_an_invocation_is_a_span_with_one_child_per_stage(receiver: Receiver) -> None:
    obs.configure(exporters=["otlp"])
    assert resnet()({}, None) == "done"
    spans = receiver.spans(5)
    by_name = {span.name: span for _, span in spans}
    assert set(by_name) == {"resnet", "preprocess", "inference", "forward", "postprocess"}
    top = by_name["resnet"]
    assert top.parent_span_id == b"" and top.kind == top.SPAN_KIND_SERVER
    assert attributes(top.attributes) == {
        "faas.trigger": "other",
        "faas.coldstart": True,
        "inferobs.model": "resnet",
        "inferobs.model_version": "v2",
    }
    assert top.status.code == top.status.STATUS_CODE_UNSET

    def times(span: Any) -> tuple[float, float]:
        return (span.start_time_unix_nano - START_NS) / 1e6, (
            span.end_time_unix_nano - START_NS
        ) / 1e6

    assert times(top) == (0, 14.5)
    assert {name: times(span) for name, span in by_name.items() if span is not top} == {
        "preprocess": (0, 2),
        "inference": (2, 9),
        "forward": (5, 9),
        "postprocess": (9, 9.5),
    }
    for name in ("preprocess", "inference", "postprocess"):
        assert by_name[name].parent_span_id == top.span_id
    assert by_name["forward"].parent_span_id == by_name["inference"].span_id
    assert len({span.trace_id for span in by_name.values()}) == 1
    assert len({span.span_id for span in by_name.values()}) == 5


def test_latencies_are_histograms_in_seconds_and_counts_are_process_totals(
    receiver: Receiver,
) -> None:
    obs.configure(exporters=["otlp"])
    handler = resnet()
    handler({}, None)
    (duration,) = receiver.points("faas.invoke_duration")
    assert receiver.metric("faas.invoke_duration").unit == "s"
    assert (duration.count, duration.sum) == (1, pytest.approx(0.0145))
    assert sum(duration.bucket_counts) == 1 and duration.explicit_bounds[0] == 0.005
    assert attributes(duration.attributes) == {
        "inferobs.model": "resnet",
        "inferobs.model_version": "v2",
    }
    stages = {
        attributes(p.attributes)["stage"]: p.sum
        for p in receiver.points("inferobs.stage.duration", 4)
    }
    assert stages == pytest.approx(
        {"preprocess": 0.002, "inference": 0.007, "inference/forward": 0.004, "postprocess": 0.0005}
    )
    (coldstarts,) = receiver.points("faas.coldstarts")
    assert coldstarts.as_int == 1 or coldstarts.as_double == 1
    sums = receiver.metric("faas.invocations").sum
    assert sums.is_monotonic and sums.aggregation_temporality == 2  # cumulative
    assert receiver.metric("faas.invocations").unit == "{invocation}"

    handler({"inferobs": "warmup"}, None)  # a keep-warm ping is nobody's request: not counted
    handler({}, None)
    invocations = receiver.points("faas.invocations", 2)
    assert [p.as_double or p.as_int for p in invocations] == [1, 2]  # totals since the start
    assert invocations[0].start_time_unix_nano == invocations[1].start_time_unix_nano
    coldstarts = receiver.points("faas.coldstarts", 2)[-1]
    assert (coldstarts.as_double or coldstarts.as_int) == 1  # the second was warm
    assert receiver.points("faas.invoke_duration", 2)[-1].count == 2
    receiver.spans(10)
    sent = [
        s
        for r in receiver.traces
        for rs in r.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert len(sent) == 10  # five for each of the two requests, none for the ping


def test_delta_temporality_sends_each_interval_on_its_own(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    obs.configure(exporters=["otlp"])
    handler = resnet()
    handler({}, None)
    receiver.points("faas.invocations")
    handler({}, None)
    first, second = receiver.points("faas.invocations", 2)
    assert (first.as_double or first.as_int) == (second.as_double or second.as_int) == 1
    assert second.start_time_unix_nano >= first.time_unix_nano
    assert receiver.metric("faas.invoke_duration").histogram.aggregation_temporality == 1


def test_an_error_marks_the_spans_with_the_exception_type_only(receiver: Receiver) -> None:
    obs.configure(exporters=["otlp"])
    with pytest.raises(ValueError, match="secret input 42"):
        resnet()("fail", None)
    spans = {span.name: span for _, span in receiver.spans(4)}
    assert attributes(spans["resnet"].attributes)["error.type"] == "ValueError"
    failed = {
        name for name, span in spans.items() if span.status.code == span.status.STATUS_CODE_ERROR
    }
    assert failed == {"resnet", "inference", "forward"}
    assert all(b"secret" not in r.SerializeToString() for r in receiver.traces)
    (errors,) = receiver.points("faas.errors")
    assert (errors.as_double or errors.as_int) == 1


def test_the_span_joins_the_x_ray_segment_lambda_opened(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    obs.configure(exporters=["otlp"])
    handler = resnet()
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=1")
    handler({}, None)
    _, top = receiver.spans(1)[0]
    assert top.trace_id.hex() == "5759e988bd862e3fe1be46a994272793"
    assert top.parent_span_id.hex() == PARENT
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=0")
    handler({}, None)
    receiver.points("faas.invocations", 2)  # the second call's metrics came, its spans did not
    assert len(receiver.spans(5)) == 5 and len(receiver.traces) == 1


def test_a_drift_window_sends_each_columns_psi_as_a_gauge(receiver: Receiver) -> None:
    exporter = OTLPExporter()
    exporter.export(RECORD)
    exporter.flush()
    exporter.export_window({"model": "resnet", "instance_psi": {"age": 0.12, "income": 0.3}})
    exporter.flush()
    found = {
        attributes(p.attributes)["column"]: p.as_double
        for p in receiver.points("inferobs.drift.psi", 2)
    }
    assert found == {"age": 0.12, "income": 0.3}
    assert receiver.metric("inferobs.drift.psi").WhichOneof("data") == "gauge"
    # a window's points are the process's, under the resource its records gave
    (last,) = receiver.metrics[-1].resource_metrics
    assert attributes(last.resource.attributes)["faas.name"] == "fn"


def test_signal_variables_and_headers_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces over HTTP to one receiver, metrics over gRPC to another, each with its headers."""
    traces = start("http/protobuf", monkeypatch)
    metrics = start("grpc", monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # both overridden
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.endpoint + "/v1/traces")
    # host:port, no scheme: plaintext only because INSECURE says so
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics.endpoint.split("//")[1])
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=shared")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "true")
    obs.configure(exporters=["otlp"])
    resnet()({}, None)
    assert len(traces.spans(5)) == 5
    metrics.points("faas.invocations")
    assert traces.headers[0]["x-api-key"] == "traces"
    assert metrics.headers[0]["x-api-key"] == "shared"
    assert not traces.metrics and not metrics.traces


RECORD = Invocation(
    start=START_NS,
    duration_ms=3.0,
    platform="aws_lambda",
    function="fn",
    version="7",
    memory_mb=512,
    instance_id="2026/12/03/[7]abc",
)


def test_where_it_ran_is_the_resource(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    exporter = OTLPExporter()
    exporter.export(RECORD)
    exporter.flush()
    resource, _ = receiver.spans(1)[0]
    assert {k: v for k, v in resource.items() if k.split(".")[0] in ("cloud", "faas")} == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "faas.name": "fn",
        "faas.version": "7",
        "faas.instance": "2026/12/03/[7]abc",
        "faas.max_memory": 512 << 20,
    }
    assert resource["service.name"] == "fn"


def test_the_users_resource_attributes_win_over_the_records(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,faas.version=blue")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ranker")
    exporter = OTLPExporter()
    exporter.export(RECORD)
    exporter.flush()
    resource, _ = receiver.spans(1)[0]
    assert resource["deployment.environment"] == "prod"
    assert (resource["faas.version"], resource["service.name"]) == ("blue", "ranker")
    assert resource["faas.name"] == "fn"


def test_arguments_in_code_override_the_variables(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")  # would be refused
    exporter = OTLPExporter(
        endpoint=receiver.endpoint,
        protocol=receiver.protocol,
        headers={"x-api-key": "code"},
        temporality="delta",
    )
    exporter.export(RECORD)
    exporter.flush()
    assert receiver.metric("faas.invocations").sum.aggregation_temporality == 1  # delta
    assert receiver.headers[0]["x-api-key"] == "code"


def test_a_timeout_marks_the_span_and_runs_open_stages_to_its_end(receiver: Receiver) -> None:
    """Inference was still running at the deadline; forward, inside it, had finished."""
    record = Invocation(
        kind="timeout",
        start=START_NS,
        duration_ms=1000.0,
        status="error",
        error_stage="inference",
        function="fn",
        stages={"load": 5.0, "inference/forward": 3.0},
        stage_starts={"load": 0.5, "inference": 6.0, "inference/forward": 7.0},
    )
    exporter = OTLPExporter()
    exporter.export(record)
    exporter.flush()
    spans = {span.name: span for _, span in receiver.spans(4)}
    top, inference, forward = spans["fn"], spans["inference"], spans["forward"]
    assert attributes(top.attributes)["error.type"] == "timeout"
    failed = {n for n, span in spans.items() if span.status.code == top.status.STATUS_CODE_ERROR}
    assert failed == {"fn", "inference"}
    assert spans["load"].end_time_unix_nano == START_NS + 5_500_000
    assert inference.end_time_unix_nano == top.end_time_unix_nano == START_NS + 10**9
    assert (forward.start_time_unix_nano, forward.end_time_unix_nano) == (
        START_NS + 7_000_000,
        START_NS + 10_000_000,
    )
    (timeouts,) = receiver.points("faas.timeouts")
    assert timeouts.as_double == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-5"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes"),
    ],
)
def test_a_setting_out_of_range_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(obs.ConfigError, match=variable):
        obs.configure(exporters=["otlp"])


def test_the_handlers_own_providers_export_our_spans_and_metrics(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Joining: ours become children of the handler's current span, go through its
    processors and its metric reader, and nothing goes to our receiver."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    # what trace.set_tracer_provider does, undone after the test (it allows one per process)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: meters)
    exporter = OTLPExporter()
    obs.configure(exporters=[exporter])
    handler = resnet()
    with provider.get_tracer("user").start_as_current_span("user-handler") as outer:
        assert handler({}, None) == "done"
    assert exporter.flush()
    spans = {span.name: span for span in theirs.get_finished_spans()}
    assert set(spans) == {
        "user-handler",
        "resnet",
        "preprocess",
        "inference",
        "forward",
        "postprocess",
    }
    ours = spans["resnet"]
    assert ours.parent is not None and ours.parent.span_id == outer.get_span_context().span_id
    assert ours.context.trace_id == outer.get_span_context().trace_id
    inner = spans["forward"].parent
    assert inner is not None and inner.span_id == spans["inference"].context.span_id
    assert ours.attributes is not None and ours.attributes["inferobs.model"] == "resnet"
    with provider.get_tracer("user").start_as_current_span("user-handler-2") as outer:
        exporter.export(RECORD)
    exporter.flush()
    (direct,) = [s for s in theirs.get_finished_spans() if s.name == "fn"]
    assert direct.parent is not None and direct.parent.span_id == outer.get_span_context().span_id
    # their resource is theirs: where it ran goes on our span
    assert direct.attributes is not None and direct.attributes["faas.name"] == "fn"
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, Any] = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert found["faas.invocations"].data.data_points[0].value == 1
    assert found["faas.invoke_duration"].data.data_points[0].sum == pytest.approx(0.0145)
    assert not receiver.traces and not receiver.metrics


# The fault matrix: each with the real OTLP exporters, each handler call timed.


def refused(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")


def black_hole(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCP listener that accepts connections and never reads or answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}"
    )

    def stop() -> None:
        listener.close()
        for connection in accepted:
            connection.close()

    STOPS.append(stop)


def failing(grpc_code: grpc.StatusCode, http_status: int) -> Callable[..., None]:
    def make(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
        receiver = start(protocol, monkeypatch)
        receiver.fail = grpc_code if protocol == "grpc" else http_status
        receiver.failures = 10**6

    return make


def malformed(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port no TCP can have: the configuration reads, and every send fails."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:99999")


def raising(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    start(protocol, monkeypatch)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    def broken(self: Any, spans: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(Grpc if protocol == "grpc" else Http, "export", broken)


FAULTS: dict[str, Callable[[str, pytest.MonkeyPatch], None]] = {
    "refused": refused,
    "black_hole": black_hole,
    "unavailable_503": failing(grpc.StatusCode.UNAVAILABLE, 503),
    "exhausted_429": failing(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    "malformed_endpoint": malformed,
    "exporter_raises": raising,
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_receiver_never_reaches_the_handler(
    monkeypatch: pytest.MonkeyPatch, protocol: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nor its logs: the library's warning per failed export would be a paid log line per
    invocation; the failure is one fault and the `dropped` count instead."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    caplog.set_level(logging.NOTSET)
    FAULTS[fault](protocol, monkeypatch)
    exporter = configured()
    before = faults_seen().get("export", 0)
    timed(resnet(), [{}, "fail", {}])
    sender = exporter._sender
    give_up = time.monotonic() + 15
    while sender.dropped < 1 and time.monotonic() < give_up:
        exporter.flush()
        time.sleep(0.05)
    assert sender.dropped >= 1
    assert faults_seen().get("export", 0) > before
    assert [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")] == []


def test_a_setting_the_library_refuses_leaves_the_other_exporters_working(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")  # grpc has no such thing
    monkeypatch.setenv("INFEROBS_EXPORTERS", "stdout,otlp")
    before = faults_seen().get("exporters", 0)
    timed(resnet(), [{}, "fail", {}])
    assert faults_seen()["exporters"] == before + 1  # said once, not per invocation
    lines = [line for line in capsys.readouterr().out.splitlines() if "inferobs.invocation" in line]
    assert len(lines) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_slow_receiver_costs_one_deadline_and_still_gets_everything(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
    receiver = start(protocol, monkeypatch)
    receiver.delay_s = 0.3
    exporter = configured()
    timed(resnet(), [{}, {}, {}])
    assert len(receiver.spans(15)) == 15
    receiver.wait(lambda: sum(p.count for p in receiver.points("faas.invoke_duration")[-1:]) == 3)
    assert exporter._sender.dropped == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_what_was_dropped_is_sent_as_the_dropped_metric(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    receiver = start(protocol, monkeypatch)
    receiver.fail = grpc.StatusCode.UNAVAILABLE if protocol == "grpc" else 503
    receiver.failures = 1  # the first request (the first batch's spans) is refused
    exporter = configured()
    handler = resnet()
    handler({}, None)
    exporter.flush()
    assert exporter._sender.dropped == 1
    handler({}, None)
    exporter.flush()
    (dropped,) = receiver.points("inferobs.dropped")
    assert (dropped.as_double or dropped.as_int) == 1
    # the refused batch's metrics went, and cumulative totals count both invocations
    assert [p.as_double for p in receiver.points("faas.invocations", 2)] == [1, 2]


@pytest.mark.timeout(60)
def test_under_the_lambda_runtime_each_invocation_is_sent_before_the_freeze(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real runtime interface client, over gRPC: spans join the trace Lambda opened."""
    receiver = start("grpc", monkeypatch)
    with function("ok", env={"INFEROBS_EXPORTERS": "stdout,otlp"}) as fn:
        ids = [fn.invoke({"values": [i]}).request_id for i in range(3)]
        # sent after each answer, before the invocation's work was done (and a freeze)
        assert fn.api.settled(ids[-1], 30) is not None
        records = fn.wait_for_records(3)
        spans = receiver.spans(9)  # each: the invocation, preprocess, inference
    tops = [span for _, span in spans if span.name == "m"]
    assert [attributes(s.attributes)["faas.invocation_id"] for s in tops] == ids
    assert [attributes(s.attributes)["faas.coldstart"] for s in tops] == [True, False, False]
    for top, record in zip(tops, records, strict=True):
        assert "1-" + top.trace_id.hex()[:8] + "-" + top.trace_id.hex()[8:] == record["trace_id"]
        assert top.parent_span_id  # the runtime's segment, from the trace header
    receiver.wait(lambda: receiver.points("faas.invocations")[-1].as_double == 3)
    resource = spans[0][0]
    assert resource["faas.name"] == "test-fn" and resource["faas.max_memory"] == 1024 << 20
