"""Azure Monitor: what the real SDK exporters post to an ingestion endpoint on loopback, and a
handler's answer and time untouched whatever that endpoint does."""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import inferobs as obs
from inferobs.config import ConfigError
from inferobs.context import faults_seen
from inferobs.export.metrics import STAGE_PREFIX, invocation_points
from inferobs.local.lambda_process import LocalLambda
from inferobs.record import Invocation
from inferobs_azure import AzureMonitorExporter
from inferobs_azure.settings import SDK_OFF, STATSBEAT

from .helpers import Context, ManualClock
from .test_aws_xray import staged

KEY = "00000000-0000-0000-0000-000000000000"
TRACK_PATHS = ("/v2.1/track", "/v2/track")  # where the SDK posts its envelopes
DEADLINE_MS = 50
SLACK_S = 0.5  # machines are noisy: added latency is held to the deadline plus this
ROOT = "1-5759e988-bd862e3fe1be46a994272793"
HOST = ("FUNCTIONS_WORKER_RUNTIME", "WEBSITE_SITE_NAME")
# a record with every field the exporter reads
FULL_RECORD: dict[str, Any] = {
    "kind": "timeout",
    "id": "req-9",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "start": 1_800_000_000_000_000_000,
    "duration_ms": 900.0,
    "status": "error",
    "error_type": "Timeout",
    "error_stage": "inference",
    "cold_start": True,
    "init_ms": 812.5,
    "model": "resnet",
    "model_version": "v2",
    "variant": "B",
    "stages": {"inference": 880.0},
    "platform": "aws_lambda",
    "service": "ranker",
    "function": "classify",
    "version": "7",
    "memory_mb": 1024,
    "instance_id": "2027/01/15/[7]abc:42",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Receiver:
    """Stands where Application Insights ingests: takes the SDK's track requests on loopback,
    answering with ``status`` after ``delay_s``; any other request is kept as unexpected."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.unexpected: list[str] = []
        self.status = 200
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path not in TRACK_PATHS:
                    receiver.unexpected.append(f"POST {self.path}")
                    self._answer(404, {})
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                items = json.loads(body)
                time.sleep(receiver.delay_s)
                status = receiver.status
                if status == 200:
                    receiver.envelopes.extend(items)
                self._answer(
                    status,
                    {
                        "itemsReceived": len(items),
                        "itemsAccepted": len(items) if status == 200 else 0,
                        "errors": [],
                    },
                )

            def do_GET(self) -> None:
                receiver.unexpected.append(f"GET {self.path}")
                self._answer(404, {})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                out = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def of(self, base_type: str) -> list[dict[str, Any]]:
        """The envelopes' ``baseData`` of one type, with the envelope's tags as ``tags``."""
        return [
            {**e["data"]["baseData"], "tags": e["tags"]}
            for e in self.envelopes
            if e["data"]["baseType"] == base_type
        ]

    def metrics(self) -> list[tuple[str, float, dict[str, str]]]:
        """(name, value, customDimensions) of every metric item received."""
        return [
            (point["name"], point["value"], data.get("properties", {}))
            for data in self.of("MetricData")
            for point in data["metrics"]
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def connection_string(port: int) -> str:
    return f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:{port}/"


# every socket connection and name lookup this module's tests make, as (event, host)
_SEEN: list[tuple[str, Any]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _SEEN
    if seen is None:
        return
    if event == "socket.getaddrinfo":
        seen.append((event, args[0]))
    elif event == "socket.connect" and isinstance(args[1], tuple):  # not a Unix socket
        seen.append((event, args[1][0]))


@pytest.fixture(scope="module", autouse=True)
def loopback_only() -> Iterator[list[tuple[str, Any]]]:
    """Whatever these tests make the SDK do, it reaches for no host but loopback."""
    global _SEEN
    # an audit hook stays for the process's life; it records only while _SEEN is set
    sys.addaudithook(_audit)
    seen: list[tuple[str, Any]] = []
    _SEEN = seen
    yield seen
    _SEEN = None
    hosts = {host.decode() if isinstance(host, bytes) else host for _, host in seen}
    assert hosts <= LOOPBACK, f"connections beyond loopback: {hosts - LOOPBACK}"


@pytest.fixture(autouse=True)
def sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Azure variables from outside; the ones the exporter sets go again after each test."""
    for name in (
        STATSBEAT,
        *SDK_OFF,
        *HOST,
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPINSIGHTS_INSTRUMENTATIONKEY",
        "REGION_NAME",
        "AWS_REGION",
        "GOOGLE_CLOUD_REGION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    listener = Receiver()
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(listener.port))
    yield listener
    listener.close()
    assert listener.unexpected == []  # nothing but track requests reached it


def drained(exporter: AzureMonitorExporter) -> None:
    """Flush until everything queued has been sent or dropped (the first batch waits for the
    SDK's import; a flush does not wait on a batch that outran an earlier deadline)."""
    end = time.monotonic() + 30
    while not exporter.flush_by(time.monotonic() + 0.5):
        assert time.monotonic() < end, "the exporter never caught up"
        time.sleep(0.01)


def configured(**options: Any) -> AzureMonitorExporter:
    exporter = AzureMonitorExporter(**options)
    obs.configure(exporters=[exporter], flush_deadline_ms=DEADLINE_MS)
    return exporter


def test_an_invocation_is_a_request_with_a_dependency_per_stage(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    exporter = configured()
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    assert handler({}, Context("req-1")) == "done"
    drained(exporter)

    (request,) = receiver.of("RequestData")
    assert request["name"] == "resnet"
    assert request["success"] is True
    assert request["duration"] == "0.00:00:00.015"  # 14.5 ms, rounded
    properties = request["properties"]
    assert properties["faas.coldstart"] == "True"
    assert properties["faas.invocation_id"] == "req-1"
    assert (properties["inferobs.model"], properties["inferobs.model_version"]) == ("resnet", "v2")
    assert {k: v for k, v in properties.items() if k.startswith("inferobs.stage.")} == {
        "inferobs.stage.preprocess_ms": "2.0",
        "inferobs.stage.inference_ms": "7.0",
        "inferobs.stage.inference/forward_ms": "4.0",
        "inferobs.stage.postprocess_ms": "0.5",
    }
    tags = request["tags"]
    assert tags["ai.operation.id"] == ROOT[2:].replace("-", "")  # the X-Ray trace, joined
    assert "ai.operation.parentId" not in tags

    stages = {d["name"]: d for d in receiver.of("RemoteDependencyData")}
    assert list(stages) == ["preprocess", "inference", "forward", "postprocess"]
    assert all(d["type"] == "InProc" and d["success"] for d in stages.values())
    parents = {name: d["tags"]["ai.operation.parentId"] for name, d in stages.items()}
    assert parents == {
        "preprocess": request["id"],
        "inference": request["id"],
        "forward": stages["inference"]["id"],  # nested as the stages nest
        "postprocess": request["id"],
    }
    assert {d["tags"]["ai.operation.id"] for d in stages.values()} == {tags["ai.operation.id"]}
    assert stages["forward"]["properties"] == {"inferobs.stage": "inference/forward"}
    # each stage where it first started, as long as it ran
    start = {e["data"]["baseData"].get("id"): e["time"] for e in receiver.envelopes}
    assert start[stages["forward"]["id"]] == "2023-11-14T22:13:20.005000Z"
    assert stages["forward"]["duration"] == "0.00:00:00.004"
    assert start[stages["postprocess"]["id"]] == "2023-11-14T22:13:20.009000Z"


def test_the_records_fields_become_the_conventions_dimensions(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    exporter = AzureMonitorExporter()
    exporter.export(Invocation(**FULL_RECORD))
    drained(exporter)

    (request,) = receiver.of("RequestData")
    assert request["success"] is False
    assert request["properties"] == {
        "faas.trigger": "other",
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "faas.coldstart": "True",
        "faas.invocation_id": "req-9",
        "faas.name": "classify",
        "faas.version": "7",
        "faas.instance": "2027/01/15/[7]abc:42",
        "inferobs.model": "resnet",
        "inferobs.model_version": "v2",
        "inferobs.variant": "B",
        "inferobs.init_ms": "812.5",
        "inferobs.error_type": "Timeout",
        "inferobs.error_stage": "inference",
        "faas.max_memory": str(1024 * 1024 * 1024),
        "inferobs.kind": "timeout",
        "inferobs.stage.inference_ms": "880.0",
    }
    tags = request["tags"]
    assert tags["ai.operation.id"] == "0af7651916cd43dd8448eb211c80319c"  # W3C, as it is
    assert (tags["ai.cloud.role"], tags["ai.cloud.roleInstance"]) == (
        "ranker",
        "2027/01/15/[7]abc:42",
    )
    assert tags["ai.application.ver"] == "7"
    metrics = {name: (value, dims) for name, value, dims in receiver.metrics()}
    assert metrics["timeouts"][0] == metrics["errors"][0] == metrics["coldstarts"][0] == 1
    assert metrics["init_ms"][0] == 812.5
    assert metrics["duration_ms"][1] == {
        "function": "classify",
        "model": "resnet",
        "model_version": "v2",
        "variant": "B",
        "cold_start": "True",
    }


LAMBDA_HANDLER = """
import inferobs as obs


@obs.instrument(model="m", model_version="3")
def handler(event, context):
    with obs.stage("inference"), obs.stage("forward"):
        return event
"""


def test_chosen_by_name_under_the_lambda_runtime_the_spans_leave_before_a_freeze(
    receiver: Receiver, tmp_path: Any
) -> None:
    (tmp_path / "azure_handler.py").write_text(LAMBDA_HANDLER)
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string(receiver.port),
        "INFEROBS_EXPORTERS": "stdout,azure",
        # long enough for the SDK's import on the first send: wanted before the freeze here
        "INFEROBS_FLUSH_DEADLINE_MS": "5000",
    }
    with LocalLambda("azure_handler.handler", code_dir=str(tmp_path), env=env, timeout_s=60) as fn:
        answer = fn.invoke({"x": 1})
        assert answer.json() == {"x": 1}
        # sent after the answer, before the invocation's work was done: Lambda freezes
        # the environment only then
        assert fn.api.settled(answer.request_id, 60) is not None
        (request,) = receiver.of("RequestData")
        (record,) = fn.wait_for_records(1)
    properties = request["properties"]
    assert properties["faas.invocation_id"] == record["id"]
    assert properties["cloud.platform"] == "aws_lambda"
    assert properties["cloud.region"] == "us-east-1"  # AWS_REGION, as the runtime sets it
    assert properties["faas.name"] == "local-function"
    assert properties["inferobs.model_version"] == "3"
    stages = {d["name"]: d for d in receiver.of("RemoteDependencyData")}
    assert set(stages) == {"inference", "forward"}
    assert stages["inference"]["tags"]["ai.operation.parentId"] == request["id"]
    assert stages["forward"]["tags"]["ai.operation.parentId"] == stages["inference"]["id"]


def test_the_metrics_are_the_tables_with_a_stage_dimension(receiver: Receiver) -> None:
    exporter = configured()
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    handler({}, Context("req-1"))
    handler({}, Context("req-2"))
    drained(exporter)

    got = receiver.metrics()
    warm = [(name, value, dims) for name, value, dims in got if dims["cold_start"] == "False"]
    # the second invocation's points: the table's names, the stages as one metric
    record = {"duration_ms": 14.5, "cold_start": False, "stages": {"preprocess": 2.0}}
    expected = {n for n, _, _ in invocation_points(record) if not n.startswith(STAGE_PREFIX)}
    # (peak memory is on a warm line at most once a second)
    assert {name for name, _, _ in warm} - {"max_rss_mb"} == expected | {"stage_ms"}
    values = {(name, dims.get("stage")): value for name, value, dims in warm}
    assert values[("invocations", None)] == 1
    assert values[("duration_ms", None)] == 14.5
    assert values[("coldstarts", None)] == 0
    assert values[("errors", None)] == 0
    assert values[("stage_ms", "inference/forward")] == 4.0
    assert values[("stage_ms", "postprocess")] == 0.5
    dims = {k: v for k, v in warm[0][2].items() if k != "stage"}
    assert dims == {"model": "resnet", "model_version": "v2", "cold_start": "False"}
    cold = {name: value for name, value, dims in got if dims["cold_start"] == "True"}
    assert cold["coldstarts"] == 1
    assert "dropped" not in cold  # nothing was dropped: no such metric


@pytest.mark.parametrize(
    ("host", "choice", "request_kind"),
    [
        ({"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "ml-app"}, None, False),
        ({"WEBSITE_SITE_NAME": "ml-app"}, None, False),
        ({"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "ml-app"}, "true", True),
    ],
    ids=["functions-host", "app-service", "requests-chosen"],
)
def test_where_the_host_records_requests_the_invocation_is_a_dependency(
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    host: dict[str, str],
    choice: str | None,
    request_kind: bool,
) -> None:
    for name, value in host.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REGION_NAME", "West Europe")
    if choice is not None:
        monkeypatch.setenv("INFEROBS_AZURE_REQUESTS", choice)
    exporter = configured()
    assert staged(ManualClock(), model="resnet", model_version="v2")({}, None) == "done"
    drained(exporter)

    requests = receiver.of("RequestData")
    dependencies = {d["name"]: d for d in receiver.of("RemoteDependencyData")}
    if request_kind:
        (invocation,) = requests
    else:
        assert requests == []  # the host's own request is the only one
        invocation = dependencies.pop("resnet")
        assert invocation["type"] == "InProc"
        assert "ai.operation.parentId" not in invocation["tags"]
    assert set(dependencies) == {"preprocess", "inference", "forward", "postprocess"}
    properties = invocation["properties"]
    assert properties["cloud.region"] == "West Europe"
    if "FUNCTIONS_WORKER_RUNTIME" in host:
        assert (properties["cloud.provider"], properties["cloud.platform"]) == (
            "azure",
            "azure_functions",
        )
    # the app's name, as the host's own telemetry names the cloud role
    assert invocation["tags"]["ai.cloud.role"] == "ml-app"
    assert {m[2].get("stage") for m in receiver.metrics() if m[0] == "stage_ms"} == {
        "preprocess",
        "inference",
        "inference/forward",
        "postprocess",
    }


def test_a_failed_invocation_is_marked_with_its_stage_and_the_exception_type_only(
    receiver: Receiver,
) -> None:
    exporter = configured()
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    with pytest.raises(ValueError, match="secret input 42"):
        handler("fail", Context("req-1"))
    drained(exporter)

    assert not any("secret" in json.dumps(e) for e in receiver.envelopes)
    (request,) = receiver.of("RequestData")
    assert request["success"] is False
    assert request["properties"]["inferobs.error_type"] == "ValueError"
    assert request["properties"]["inferobs.error_stage"] == "inference/forward"
    outcome = {d["name"]: d["success"] for d in receiver.of("RemoteDependencyData")}
    # the stage it was raised in and the one around it; the one after never ran
    assert outcome == {"preprocess": True, "inference": False, "forward": False}
    errors = [value for name, value, _ in receiver.metrics() if name == "errors"]
    assert errors == [1]


def test_drift_windows_go_as_psi_gauges_and_keep_warm_pings_as_nothing(
    receiver: Receiver,
) -> None:
    exporter = AzureMonitorExporter()
    exporter.export_window(
        {
            "event": "inferobs.drift_window",
            "function": "classify",
            "model": "resnet",
            "instance_id": "i-1",
            "window_start": 1_800_000_000_000_000_000,
            "window_end": 1_800_000_060_000_000_000,
            "instance_psi": {"prediction": 0.31, "age": 0.02},
        }
    )
    exporter.export_window({"event": "inferobs.drift_window", "instance_psi": {}})
    exporter.export(Invocation(kind="warmup", start=1, duration_ms=0.1, function="classify"))
    drained(exporter)

    assert receiver.of("RequestData") == []
    got = receiver.metrics()
    assert {(name, dims.pop("column"), value) for name, value, dims in got} == {
        ("drift.psi", "prediction", 0.31),
        ("drift.psi", "age", 0.02),
    }
    assert got[0][2] == {"function": "classify", "model": "resnet"}
    assert receiver.envelopes[0]["time"] == "2027-01-15T08:00:00Z"  # the window's start
    assert receiver.envelopes[0]["tags"]["ai.cloud.roleInstance"] == "i-1"


def test_the_sdks_own_telemetry_stays_off_and_nothing_else_is_contacted(
    receiver: Receiver, loopback_only: list[tuple[str, Any]]
) -> None:
    before = {t.ident for t in threading.enumerate()}
    exporter = configured()
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    for n in range(3):
        handler({}, Context(f"req-{n}"))
    drained(exporter)

    assert os.environ[STATSBEAT] == "true"  # the SDK's own switch, set before its exporters
    assert all(os.environ[name] == value for name, value in SDK_OFF.items())
    # no statsbeat, settings poller or SDK-stats reader threads: only the sender's (and the
    # receiver's, one per connection)
    started = {t.name for t in threading.enumerate() if t.ident not in before}
    assert {n for n in started if not n.endswith("(process_request_thread)")} <= {"inferobs-azure"}
    assert len(receiver.of("RequestData")) == 3
    assert {host for _, host in loopback_only} <= LOOPBACK
    from azure.monitor.opentelemetry.exporter.statsbeat._state import is_statsbeat_enabled

    assert not is_statsbeat_enabled()  # type: ignore[no-untyped-call]  # as the SDK decides


def test_statsbeat_is_the_users_to_turn_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(9))
    AzureMonitorExporter(statsbeat=True)
    assert STATSBEAT not in os.environ
    monkeypatch.setenv("INFEROBS_AZURE_STATSBEAT", "true")
    AzureMonitorExporter()
    assert STATSBEAT not in os.environ
    monkeypatch.setenv(STATSBEAT, "false")  # the SDK's own variable, set by the user, stands
    monkeypatch.delenv("INFEROBS_AZURE_STATSBEAT")
    AzureMonitorExporter()
    assert os.environ[STATSBEAT] == "false"


def test_bad_settings_are_refused_at_configure_time_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="APPLICATIONINSIGHTS_CONNECTION_STRING is not set"):
        obs.configure(exporters=["azure"])
    secret = "InstrumentationKey=not-a-uuid-secret;IngestionEndpoint=http://127.0.0.1:9/"
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", secret)
    with pytest.raises(ConfigError, match="must be a UUID") as caught:
        obs.configure(exporters=["azure"])
    assert "secret" not in str(caught.value)
    for bad in (
        f"InstrumentationKey={KEY};",
        f"InstrumentationKey={KEY};IngestionEndpoint=ftp://x",
    ):
        with pytest.raises(ConfigError):
            AzureMonitorExporter(bad)
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(9))
    monkeypatch.setenv("INFEROBS_AZURE_REQUESTS", "sometimes")
    with pytest.raises(ConfigError, match="INFEROBS_AZURE_REQUESTS"):
        obs.configure(exporters=["azure"])
    with pytest.raises(ConfigError, match="timeout_s"):
        AzureMonitorExporter(timeout_s=0)


# The fault matrix: each with the real SDK, a short deadline and a short request timeout.


def invoke_timed(count: int) -> None:
    """Call a staged handler ``count`` times: its answer unchanged, each call within the
    deadline (plus slack: the handler itself takes no time)."""
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    for n in range(count):
        start = time.monotonic()
        assert handler({}, Context(f"req-{n}")) == "done"
        assert time.monotonic() - start < DEADLINE_MS / 1000 + SLACK_S


def failing(exporter: AzureMonitorExporter, count: int) -> None:
    """``count`` invocations while sending fails: answered as ever, within the deadline, and
    every record dropped, counted, and reported as a fault."""
    faults = faults_seen().get("export", 0)
    invoke_timed(count)
    drained(exporter)
    assert exporter.sender.dropped == count
    assert faults_seen()["export"] > faults


def refused_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


def test_a_refused_connection_costs_the_handler_nothing_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(refused_port()))
    failing(configured(timeout_s=0.3), 3)


def test_a_black_hole_costs_one_deadline_and_its_batches_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # accepts connections (the kernel does), never reads or answers
    try:
        port = hole.getsockname()[1]
        monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(port))
        failing(configured(timeout_s=0.3), 4)  # each POST gave up after its timeout_s
    finally:
        hole.close()


def test_a_slow_backend_gets_everything_after_the_handler_has_answered(
    receiver: Receiver,
) -> None:
    receiver.delay_s = 0.3  # six deadlines
    exporter = configured(timeout_s=5)
    invoke_timed(3)
    drained(exporter)
    assert exporter.sender.dropped == 0
    assert len(receiver.of("RequestData")) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_refused_batches_are_dropped_counted_and_reported_as_dropped(
    receiver: Receiver, status: int
) -> None:
    receiver.status = status
    exporter = configured(timeout_s=2)
    failing(exporter, 2)  # refused, not retried: newer data goes next
    assert receiver.envelopes == []
    receiver.status = 200  # it takes data again: the count goes with the next batch
    invoke_timed(1)
    drained(exporter)
    assert [value for name, value, _ in receiver.metrics() if name == "dropped"] == [2]
    assert len(receiver.of("RequestData")) == 1


def test_an_exporter_that_raises_costs_the_handler_nothing_and_is_counted(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

    def broken(self: Any, spans: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the SDK")

    monkeypatch.setattr(AzureMonitorTraceExporter, "export", broken)
    failing(configured(), 2)


def test_a_connection_string_spoilt_at_run_time_costs_the_handler_nothing(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = configured(connection_string=connection_string(receiver.port))
    # the SDK reads the variable as well as the string it is given, when its exporters are
    # made: on the first send, after the exporter was checked and made
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "this is not a connection string")
    failing(exporter, 2)
    assert receiver.envelopes == []
    # mended, the next invocation goes (the SDK's exporters are made again) with the count
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string(receiver.port))
    invoke_timed(1)
    drained(exporter)
    assert len(receiver.of("RequestData")) == 1
    assert [value for name, value, _ in receiver.metrics() if name == "dropped"] == [2]
