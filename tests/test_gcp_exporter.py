"""Google Cloud Monitoring: the official client writes per-instance series to a MetricService
on loopback, never more often than a series' sampling period, and no fault reaches the handler."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.api import metric_pb2  # type: ignore[import-untyped]
from google.auth.credentials import AnonymousCredentials
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import (
    MetricServiceGrpcTransport,
)
from google.protobuf import empty_pb2  # type: ignore[import-untyped]

import inferobs as obs
from inferobs import context
from inferobs.config import ConfigError
from inferobs.context import faults_seen
from inferobs.local.lambda_process import LocalLambda
from inferobs.record import Invocation
from inferobs_gcp import CloudMonitoringExporter
from inferobs_gcp.series import LATENCY_BOUNDS

from .helpers import Collect, Context
from .test_sending import drained

PROJECT = "test-project"
PERIOD_S = 10.0
PERIOD_NS = int(PERIOD_S * 1e9)
DEADLINE_S = 0.05  # how long a flush may wait in the fault tests
SLACK_S = 0.5  # what a noisy machine may add to a handler's time in them
PREFIX = "custom.googleapis.com/inferobs/"
SERVICE = "google.monitoring.v3.MetricService"

Series = tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


class Monitoring:
    """Cloud Monitoring's MetricService on loopback, decoding with the library's own messages.

    Keeps every CreateTimeSeries request (as protobuf) and every descriptor
    created; ``failure`` makes CreateTimeSeries answer with that status code,
    ``delay`` makes it answer late.
    """

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.descriptors: list[Any] = []  # every one created
        self.project_descriptors: dict[str, Any] = {}  # what the project has, by type
        self.lists = 0
        self.failure: grpc.StatusCode | None = None
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        "CreateTimeSeries": grpc.unary_unary_rpc_method_handler(
                            self.create_time_series,
                            request_deserializer=monitoring_v3.CreateTimeSeriesRequest.deserialize,
                            response_serializer=empty_pb2.Empty.SerializeToString,
                        ),
                        "ListMetricDescriptors": grpc.unary_unary_rpc_method_handler(
                            self.list_metric_descriptors,
                            request_deserializer=monitoring_v3.ListMetricDescriptorsRequest.deserialize,
                            response_serializer=monitoring_v3.ListMetricDescriptorsResponse.serialize,
                        ),
                        "CreateMetricDescriptor": grpc.unary_unary_rpc_method_handler(
                            self.create_metric_descriptor,
                            request_deserializer=monitoring_v3.CreateMetricDescriptorRequest.deserialize,
                            response_serializer=metric_pb2.MetricDescriptor.SerializeToString,
                        ),
                    },
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def create_time_series(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.delay:
            time.sleep(self.delay)
        if self.failure is not None:
            context.abort(self.failure, "refused by the test")
        assert request.name == f"projects/{PROJECT}"
        with self.lock:
            self.requests.append(monitoring_v3.CreateTimeSeriesRequest.pb(request))
        return empty_pb2.Empty()

    def create_metric_descriptor(self, request: Any, context: grpc.ServicerContext) -> Any:
        assert request.name == f"projects/{PROJECT}"
        with self.lock:
            self.descriptors.append(request.metric_descriptor)
            self.project_descriptors[request.metric_descriptor.type] = request.metric_descriptor
        return request.metric_descriptor

    def list_metric_descriptors(self, request: Any, context: grpc.ServicerContext) -> Any:
        assert request.filter == f'metric.type = starts_with("{PREFIX}")'
        with self.lock:
            self.lists += 1
            found = [d for t, d in self.project_descriptors.items() if t.startswith(PREFIX)]
        return monitoring_v3.ListMetricDescriptorsResponse(metric_descriptors=found)

    def series(self) -> dict[Series, list[Any]]:
        """Every series written, with its points in the order they came."""
        out: dict[Series, list[Any]] = defaultdict(list)
        for request in self.requests:
            for ts in request.time_series:
                out[identity(ts)].append(ts)
        return out

    def latest(self, metric: str, **labels: str) -> Any:
        """The last point written of the one series of ``metric`` with these labels."""
        found = [
            points[-1]
            for (kind, metric_labels, _), points in self.series().items()
            if kind == PREFIX + metric and labels.items() <= dict(metric_labels).items()
        ]
        assert len(found) == 1, found
        return found[0].points[0]


def identity(ts: Any) -> Series:
    return (
        ts.metric.type,
        tuple(sorted(ts.metric.labels.items())),
        tuple(sorted(ts.resource.labels.items())),
    )


def client(port: int) -> monitoring_v3.MetricServiceClient:
    """The official client, on an insecure channel to ``port`` on loopback."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    transport = MetricServiceGrpcTransport(channel=channel, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return monitoring_v3.MetricServiceClient(transport=transport)


class Wall:
    """The exporter's epoch clock, moved by hand (nanoseconds)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


@pytest.fixture(autouse=True)
def faults_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The faults these tests cause are kept apart: a fault is described on stderr only
    the first time its kind happens in a process, and other tests read that first time."""
    monkeypatch.setattr(context, "_reported", {})


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    service = Monitoring()
    yield service
    service.server.stop(None)


def exporter_for(port: int, wall: Wall, **options: Any) -> CloudMonitoringExporter:
    options.setdefault("timeout_s", 2.0)
    return CloudMonitoringExporter(
        PROJECT, period_s=PERIOD_S, location="europe-west1", client=client(port), clock=wall,
        **options,
    )  # fmt: skip


def staged_handler(model: str | None = "resnet") -> Any:
    # an environment of its own: its first call is a cold start whatever ran before
    @obs.instrument(model=model, model_version="v2", runtime=obs.Runtime())
    def handler(event: Any, context: Any) -> dict[str, Any]:
        with obs.stage("preprocess"):
            pass
        with obs.stage("inference"):
            if event.get("fail"):
                raise ValueError("secret input 42")
        return {"answer": 42}

    return handler


def call(handler: Any, n: int = 0, **event: Any) -> Any:
    return handler(event, Context(f"r{n}", remaining_ms=600_000))


def test_invocations_become_per_instance_cumulative_series_and_descriptors_once(
    monitoring: Monitoring,
) -> None:
    wall = Wall()
    exporter = exporter_for(monitoring.port, wall)
    sink = Collect()
    obs.configure(exporters=[exporter, sink], flush_deadline_ms=5_000)
    handler = staged_handler()
    for n in range(3):  # one period: the first flush writes, the others find nothing due
        assert call(handler, n) == {"answer": 42}
    assert len(monitoring.requests) == 1
    first = {identity(ts)[0]: ts for ts in monitoring.requests[0].time_series}
    assert set(first) == {
        PREFIX + name
        for name in (
            "invocations", "duration_ms", "init_ms", "coldstarts", "errors", "timeouts",
            "stage_ms", "max_rss_mb", "dropped",
        )
    }  # fmt: skip
    record = sink.records[0]
    duration = first[PREFIX + "duration_ms"]
    assert dict(duration.resource.labels) == {
        "project_id": PROJECT,
        "location": "europe-west1",
        "namespace": record["platform"],
        "job": "unknown",  # off a platform: no function name
        "task_id": record["instance_id"],
    }
    assert duration.resource.type == "generic_task"
    assert dict(duration.metric.labels) == {
        "version": record.get("version", ""),
        "model": "resnet",
        "model_version": "v2",
        "variant": "",
    }
    kinds = {name: (ts.metric_kind, ts.value_type) for name, ts in first.items()}
    cumulative, gauge = metric_pb2.MetricDescriptor.CUMULATIVE, metric_pb2.MetricDescriptor.GAUGE
    value = metric_pb2.MetricDescriptor.ValueType
    assert kinds[PREFIX + "invocations"] == (cumulative, value.INT64)
    assert kinds[PREFIX + "duration_ms"] == (cumulative, value.DISTRIBUTION)
    assert kinds[PREFIX + "stage_ms"] == (cumulative, value.DISTRIBUTION)
    assert kinds[PREFIX + "max_rss_mb"] == (gauge, value.DOUBLE)
    assert kinds[PREFIX + "dropped"] == (cumulative, value.INT64)
    assert all(len(ts.points) == 1 for ts in first.values())

    wall.advance(PERIOD_S)  # a period later the next flush writes the totals so far
    with pytest.raises(ValueError, match="secret input 42"):
        call(handler, 3, fail=True)
    assert len(monitoring.requests) == 2
    assert monitoring.latest("invocations").value.int64_value == 4
    assert monitoring.latest("errors").value.int64_value == 1
    assert monitoring.latest("coldstarts").value.int64_value == 1
    distribution = monitoring.latest("duration_ms").value.distribution_value
    assert distribution.count == 4
    assert list(distribution.bucket_options.explicit_buckets.bounds) == list(LATENCY_BOUNDS)
    assert len(distribution.bucket_counts) == len(LATENCY_BOUNDS) + 1
    assert sum(distribution.bucket_counts) == 4
    durations = [r["duration_ms"] for r in sink.records]
    assert distribution.mean == pytest.approx(sum(durations) / 4)
    stage = monitoring.latest("stage_ms", stage="inference").value.distribution_value
    assert stage.count == 4
    assert_within_the_limits(monitoring)  # each series' end times a period apart or more
    for points in monitoring.series().values():
        starts = {p.points[0].interval.start_time.ToNanoseconds() for p in points}
        assert len(starts) == 1  # a cumulative series keeps its start (a gauge has none: 0)
        (start,) = starts
        assert all(p.points[0].interval.end_time.ToNanoseconds() > start for p in points)
    described = [d.type for d in monitoring.descriptors]
    assert sorted(described) == sorted(first)  # each metric described once, before use
    by_type = {d.type: d for d in monitoring.descriptors}
    assert [label.key for label in by_type[PREFIX + "stage_ms"].labels] == [
        "version", "model", "model_version", "variant", "stage",
    ]  # fmt: skip
    assert by_type[PREFIX + "duration_ms"].unit == "ms"


def test_descriptors_are_created_once_per_project_not_per_instance(
    monitoring: Monitoring,
) -> None:
    old = metric_pb2.MetricDescriptor(
        type=PREFIX + "errors", metric_kind="CUMULATIVE", value_type="INT64"
    )  # there already, but without the labels we write: described again
    monitoring.project_descriptors[old.type] = old
    for instance in ("instance-a", "instance-b"):  # two processes, one after the other
        exporter = exporter_for(monitoring.port, Wall())
        exporter.export(Invocation(start=0, duration_ms=5.0, instance_id=instance))
        assert exporter.flush_by(time.monotonic() + 5)
    assert monitoring.lists == 2  # each process asked once
    created = [d.type for d in monitoring.descriptors]
    assert len(created) == len(set(created))
    assert PREFIX + "errors" in created
    assert {ts.metric.type for ts in monitoring.requests[1].time_series} <= set(created)


def test_a_value_that_is_not_a_number_is_left_out_not_sent(monitoring: Monitoring) -> None:
    exporter = exporter_for(monitoring.port, Wall())
    for duration in (5.0, float("nan"), float("inf")):  # a NaN would spoil the mean for good
        exporter.export(Invocation(start=0, duration_ms=duration, instance_id="i-1"))
    assert exporter.flush_by(time.monotonic() + 5)
    distribution = monitoring.latest("duration_ms").value.distribution_value
    assert (distribution.count, distribution.mean) == (1, 5.0)
    assert monitoring.latest("invocations").value.int64_value == 3


LAMBDA_HANDLER = """
import os

import grpc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import (
    MetricServiceGrpcTransport,
)

import inferobs as obs
from inferobs_gcp import CloudMonitoringExporter

channel = grpc.insecure_channel(os.environ["TEST_MONITORING_ADDRESS"])
client = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
obs.configure(
    exporters=["stdout", CloudMonitoringExporter("test-project", client=client)],
    flush_deadline_ms=5_000,
)


@obs.instrument(model="m")
def handler(event, context):
    with obs.stage("inference"), obs.stage("forward"):
        total = sum(event["values"])
    return {"total": total}
"""


def test_under_the_lambda_runtime_the_points_leave_before_the_environment_may_freeze(
    monitoring: Monitoring, tmp_path: Any
) -> None:
    (tmp_path / "gcp_handler.py").write_text(LAMBDA_HANDLER)
    env = {"TEST_MONITORING_ADDRESS": f"127.0.0.1:{monitoring.port}"}
    with LocalLambda("gcp_handler.handler", code_dir=str(tmp_path), env=env) as fn:
        answer = fn.invoke({"values": [1, 2]})
        assert answer.json() == {"total": 3}
        # sent once the answer was out, before the invocation's work was done (Lambda
        # freezes the environment only then)
        assert fn.api.settled(answer.request_id, 10) is not None
        assert len(monitoring.requests) == 1
        assert fn.invoke({"values": [3]}).json() == {"total": 3}
        (record, _) = fn.wait_for_records(2)
    assert len(monitoring.requests) == 1  # the second invocation was inside the period
    (invocations,) = [
        ts for ts in monitoring.requests[0].time_series if ts.metric.type == PREFIX + "invocations"
    ]
    assert dict(invocations.resource.labels) == {
        "project_id": PROJECT,
        "location": "us-east-1",  # AWS_REGION, as the runtime sets it
        "namespace": "aws_lambda",
        "job": "local-function",
        "task_id": record["instance_id"],
    }
    assert dict(invocations.metric.labels)["model"] == "m"
    stages = {
        ts.metric.labels["stage"]
        for ts in monitoring.requests[0].time_series
        if ts.metric.type == PREFIX + "stage_ms"
    }
    assert stages == {"inference", "inference/forward"}


def test_instances_never_share_a_series_and_labels_split_only_the_records_series(
    monitoring: Monitoring,
) -> None:
    wall = Wall()
    exporter = exporter_for(monitoring.port, wall)
    for instance, model in (("instance-a", "x"), ("instance-a", "y"), ("instance-b", "x")):
        record = Invocation(
            start=0, duration_ms=5.0, function="fn", instance_id=instance, model=model
        )
        exporter.export(record)
    assert exporter.flush_by(time.monotonic() + 5)
    assert_within_the_limits(monitoring)
    (request,) = monitoring.requests
    invocations = sorted(
        (ts.resource.labels["task_id"], ts.metric.labels["model"], ts.points[0].value.int64_value)
        for ts in request.time_series
        if ts.metric.type == PREFIX + "invocations"
    )
    assert invocations == [("instance-a", "x", 1), ("instance-a", "y", 1), ("instance-b", "x", 1)]
    dropped = [ts for ts in request.time_series if ts.metric.type == PREFIX + "dropped"]
    assert len(dropped) == 1  # the instance's own: the last record's (one a flush)


def test_a_burst_never_breaks_the_sampling_period_or_the_per_call_limits(
    monitoring: Monitoring,
) -> None:
    wall = Wall()
    exporter = exporter_for(monitoring.port, wall)
    obs.configure(exporters=[exporter], flush_deadline_ms=5_000)

    @obs.instrument
    def handler(event: Any, context: Any) -> int:
        # 300 stage series in all, 250 of them in the first invocation: more than a call holds
        for k in range(250) if event["i"] == 0 else [event["i"] % 300]:
            with obs.stage(f"step{k}"):
                pass
        return int(event["i"])

    for n in range(1_000):
        assert call(handler, n, i=n) == n
        wall.advance(0.037)  # 37 s in all: every series comes due a few times
    wall.advance(PERIOD_S)
    exporter.flush()
    assert exporter.sender.dropped == 0
    assert_within_the_limits(monitoring)
    assert max(len(r.time_series) for r in monitoring.requests) == 200  # it did fill a call
    series = monitoring.series()
    assert monitoring.latest("invocations").value.int64_value == 1_000
    stage_counts = [
        points[-1].points[0].value.distribution_value.count
        for (kind, _, _), points in series.items()
        if kind == PREFIX + "stage_ms"
    ]
    assert len(stage_counts) == 300 and sum(stage_counts) == 1_000 + 249
    assert monitoring.latest("dropped").value.int64_value == 0


def assert_within_the_limits(monitoring: Monitoring) -> None:
    """At most 200 series and one point per series per call, and no series written twice
    within a sampling period, its points in order."""
    for request in monitoring.requests:
        assert len(request.time_series) <= 200
        assert all(len(ts.points) == 1 for ts in request.time_series)
        keys = [identity(ts) for ts in request.time_series]
        assert len(keys) == len(set(keys))
    for points in monitoring.series().values():
        ends = [p.points[0].interval.end_time.ToNanoseconds() for p in points]
        assert all(b - a >= PERIOD_NS for a, b in pairwise(ends))


def test_a_drift_windows_psi_is_a_gauge_per_column(monitoring: Monitoring) -> None:
    wall = Wall()
    exporter = exporter_for(monitoring.port, wall)
    exporter.export(Invocation(start=0, duration_ms=1.0, function="fn", instance_id="i-1"))
    exporter.export_window({"instance_id": "i-1", "instance_psi": {"age": 0.25}})
    assert exporter.flush_by(time.monotonic() + 5)
    point = monitoring.latest("drift/psi", column="age")
    assert point.value.double_value == 0.25
    assert not point.interval.HasField("start_time")


class Gate:
    """The official client, held shut: its first call waits until the gate opens."""

    def __init__(self, inner: monitoring_v3.MetricServiceClient) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.open = threading.Event()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            self.open.wait()
            return method(*args, **kwargs)

        return call


def test_points_held_past_a_day_are_counted_not_sent_and_the_totals_carry_on(
    monitoring: Monitoring,
) -> None:
    wall = Wall()
    gate = Gate(client(monitoring.port))
    exporter = CloudMonitoringExporter(PROJECT, period_s=PERIOD_S, client=gate, clock=wall)

    def invocation() -> None:
        exporter.export(Invocation(start=0, duration_ms=5.0, instance_id="i-1"))
        exporter.flush_by(time.monotonic())  # queued, not waited for

    invocation()
    assert gate.entered.wait(5)  # the first write is in flight, held
    wall.advance(PERIOD_S)
    invocation()  # its points wait in the queue...
    wall.advance(25 * 3600)  # ...while the process is frozen for a day
    gate.open.set()
    drained(exporter.sender)
    (written,) = monitoring.requests  # the first write only: the second was too old to send
    held = len(written.time_series) - 1  # its series but `dropped`
    invocation()
    drained(exporter.sender)
    assert monitoring.latest("dropped").value.int64_value == held
    assert monitoring.latest("invocations").value.int64_value == 3


def test_importing_the_package_loads_no_google_library() -> None:
    # what the import adds: a site .pth file may load the bare `google` namespace at start
    # (functions-framework's does), which is no library
    code = (
        "import sys; before = set(sys.modules); import inferobs_gcp; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(('google', 'grpc'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_name_gcp_makes_the_exporter_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("INFEROBS_GCP_PERIOD_S", "30")
    from inferobs.export import resolve

    (exporter,) = resolve(["gcp"])
    assert isinstance(exporter, CloudMonitoringExporter)
    assert (exporter.project, exporter.period_s) == (PROJECT, 30.0)


# --- faults: none reaches the handler, none holds it past the deadline, drops are counted


def timed_calls(handler: Any, wall: Wall, count: int = 3) -> list[float]:
    """Call the handler ``count`` times a period apart (each flush has series due);
    the time each call took, its answer checked."""
    took = []
    for n in range(count):
        start = time.monotonic()
        assert call(handler, n) == {"answer": 42}
        took.append(time.monotonic() - start)
        wall.advance(PERIOD_S)
    return took


def faulty_setup(port: int, wall: Wall, timeout_s: float = 0.5) -> CloudMonitoringExporter:
    exporter = exporter_for(port, wall, timeout_s=timeout_s)
    obs.configure(exporters=[exporter], flush_deadline_ms=DEADLINE_S * 1000)
    exporter.sender.flush_by(time.monotonic())  # nothing queued yet: returns at once
    return exporter


def test_a_backend_that_refuses_connections() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wall = Wall()
    exporter = faulty_setup(port, wall)
    before = faults_seen().get("export", 0)
    took = timed_calls(staged_handler(), wall)
    assert max(took) < DEADLINE_S + SLACK_S
    drained(exporter.sender)
    assert exporter.sender.dropped > 0
    assert faults_seen()["export"] > before


def test_a_black_hole_costs_at_most_a_deadline_and_the_client_timeout_frees_the_sender() -> None:
    with socket.socket() as hole:  # accepts connections, never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        wall = Wall()
        exporter = faulty_setup(hole.getsockname()[1], wall, timeout_s=0.3)
        took = timed_calls(staged_handler(), wall)
        assert max(took) < DEADLINE_S + SLACK_S
        drained(exporter.sender)  # the client's timeout ends each call
    assert exporter.sender.dropped > 0


def test_a_slow_backend_gets_everything_later(monitoring: Monitoring) -> None:
    monitoring.delay = 0.3
    wall = Wall()
    exporter = faulty_setup(monitoring.port, wall, timeout_s=5)
    took = timed_calls(staged_handler(), wall)
    assert max(took) < DEADLINE_S + SLACK_S
    monitoring.delay = 0
    drained(exporter.sender)
    assert exporter.sender.dropped == 0
    # points queued while a call was in flight went as one per series, the newest
    assert_within_the_limits(monitoring)
    assert monitoring.latest("invocations").value.int64_value == 3


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    ],
)
def test_errors_and_throttling_are_counted_and_reported_as_dropped(
    monitoring: Monitoring, code: grpc.StatusCode
) -> None:
    monitoring.failure = code
    wall = Wall()
    exporter = faulty_setup(monitoring.port, wall, timeout_s=5)
    handler = staged_handler()
    took = timed_calls(handler, wall, count=1)
    assert max(took) < DEADLINE_S + SLACK_S
    drained(exporter.sender)
    refused = exporter.sender.dropped
    assert refused > 0 and not monitoring.requests
    monitoring.failure = None
    obs.configure(exporters=[exporter], flush_deadline_ms=5_000)
    assert call(handler, 1) == {"answer": 42}
    assert monitoring.latest("dropped").value.int64_value == refused
    assert monitoring.latest("invocations").value.int64_value == 2  # the totals lost nothing


def test_an_exporter_that_raises_leaves_the_handler_alone(monitoring: Monitoring) -> None:
    def broken() -> int:
        raise RuntimeError("clock broke")

    exporter = CloudMonitoringExporter(PROJECT, client=client(monitoring.port), clock=broken)
    obs.configure(exporters=[exporter], flush_deadline_ms=DEADLINE_S * 1000)
    before = faults_seen().get("export", 0)
    handler = staged_handler()
    assert call(handler) == {"answer": 42}
    with pytest.raises(ValueError, match="secret input 42"):
        call(handler, 1, fail=True)
    assert faults_seen()["export"] > before


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("INFEROBS_GCP_PERIOD_S", "ten", "INFEROBS_GCP_PERIOD_S"),
        ("INFEROBS_GCP_PERIOD_S", "1", "period_s=1: Cloud Monitoring"),  # under its 5 s
        ("INFEROBS_GCP_TIMEOUT_S", "-2", "INFEROBS_GCP_TIMEOUT_S"),
        ("GOOGLE_CLOUD_PROJECT", "not a project!", "project='not a project!'"),
    ],
)
def test_a_malformed_setting_is_a_configuration_error_and_never_the_handlers(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=re.escape(named)):
        obs.configure(exporters=["gcp"])
    monkeypatch.setenv("INFEROBS_EXPORTERS", "gcp")  # malformed at run time: the handler still
    handler = staged_handler()
    assert call(handler) == {"answer": 42}
    with pytest.raises(ValueError, match="secret input 42"):
        call(handler, 1, fail=True)
