"""AWS X-Ray: stage subsegments reach a daemon listening on loopback, in the SDK's shapes."""

from __future__ import annotations

import _socket
import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import inferobs as obs
from inferobs.context import faults_seen
from inferobs.record import Invocation
from inferobs_aws.xray import MAX_DATAGRAM, XRayExporter

from .helpers import Collect, ManualClock
from .test_lambda_lifecycle import function

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
OTHER_ROOT = "1-5759e988-000000000000000000000001"
SAMPLED = f"Root={ROOT};Parent={PARENT};Sampled=1;Lineage=a87bd80c:1|68fd508a:5"
HEADER = b'{"format":"json","version":1}'
HEX16 = re.compile(r"[0-9a-f]{16}")
START_S = ManualClock().wall / 1e9


def at(ms: float) -> Any:
    """An epoch time ``ms`` after the test clock's start, as exactly as a float of seconds holds."""
    return pytest.approx(START_S + ms / 1000, abs=1e-6)


class Daemon:
    """A UDP socket on loopback standing where the X-Ray daemon listens."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(5)
        self.port: int = self.socket.getsockname()[1]

    def documents(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` documents, each checked to come under the daemon's header."""
        out = []
        for _ in range(count):
            datagram = self.socket.recv(65536)
            assert len(datagram) <= MAX_DATAGRAM
            header, newline, body = datagram.partition(b"\n")
            assert (header, newline) == (HEADER, b"\n")
            out.append(json.loads(body))
        return out

    def document(self) -> dict[str, Any]:
        (document,) = self.documents(1)
        return document


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    listener = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{listener.port}")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", SAMPLED)
    yield listener
    listener.socket.close()


def staged(
    clock: ManualClock, model: str | None = None, model_version: str | None = None
) -> Callable[[Any, Any], str]:
    """A handler with three stages, one nested, each a known number of ms long; ``"fail"``
    makes the nested one raise."""

    @obs.stage("forward")
    def forward(fail: bool) -> None:
        clock.advance(4)
        if fail:
            raise ValueError("secret input 42")

    @obs.instrument(
        model=model, model_version=model_version, runtime=obs.Runtime(environ={}, clock=clock)
    )
    def handler(event: Any, context: Any) -> str:
        with obs.stage("preprocess"):
            clock.advance(2)
        with obs.stage("inference"):
            clock.advance(3)
            forward(event == "fail")
        with obs.stage("postprocess"):
            clock.advance(0.5)
        clock.advance(5)
        return "done"

    return handler


def test_an_invocation_sends_its_subsegment_with_one_per_stage(daemon: Daemon) -> None:
    obs.configure(exporters=["aws.xray"])
    handler = staged(ManualClock(), model="resnet", model_version="v2")
    assert handler({}, None) == "done"
    top = daemon.document()
    assert top["name"] == "resnet"
    assert (top["trace_id"], top["parent_id"], top["type"]) == (ROOT, PARENT, "subsegment")
    assert top["annotations"] == {"cold_start": True, "model": "resnet", "model_version": "v2"}
    assert "fault" not in top
    assert (top["start_time"], top["end_time"]) == (at(0), at(14.5))
    spans = {
        child["name"]: (child["start_time"], child["end_time"]) for child in top["subsegments"]
    }
    assert list(spans) == ["preprocess", "inference", "postprocess"]  # in order of entry
    assert spans == {
        "preprocess": (at(0), at(2)),
        "inference": (at(2), at(9)),
        "postprocess": (at(9), at(9.5)),
    }
    (inference,) = [c for c in top["subsegments"] if c["name"] == "inference"]
    (forward,) = inference["subsegments"]
    assert forward["name"] == "forward"
    assert top["start_time"] <= inference["start_time"] <= forward["start_time"]
    assert forward["end_time"] <= inference["end_time"] <= top["end_time"]
    assert (forward["start_time"], forward["end_time"]) == (at(5), at(9))
    ids = [top["id"]] + [c["id"] for c in top["subsegments"]] + [forward["id"]]
    assert all(HEX16.fullmatch(i) for i in ids) and len(set(ids)) == 5
    # embedded subsegments take the trace and parent from where they sit
    for child in [*top["subsegments"], forward]:
        assert not {"trace_id", "parent_id", "type"} & set(child)


def sdk_twin(document: dict[str, Any], parent: Any, segment: Any) -> Any:
    """The same subsegment tree built with aws-xray-sdk's own models, as its recorder would."""
    from aws_xray_sdk.core.models.subsegment import Subsegment

    twin = Subsegment(document["name"], "", segment)  # no namespace: none written
    twin.id = document["id"]
    twin.start_time = document["start_time"]
    parent.add_subsegment(twin)
    for key, value in document.get("annotations", {}).items():
        twin.put_annotation(key, value)
    if document.get("fault"):
        twin.add_fault_flag()
    for child in document.get("subsegments", []):
        sdk_twin(child, twin, segment)
    twin.close(document["end_time"])
    return twin


def sdk_document(twin: Any, embedded: bool = False) -> dict[str, Any]:
    """The SDK's serialized form, less what X-Ray reads the same when absent: ``in_progress``
    (false once ended), and an embedded subsegment's trace, parent and type."""
    out: dict[str, Any] = json.loads(twin.serialize())
    del out["in_progress"]
    if embedded:
        for key in ("trace_id", "parent_id", "type"):
            del out[key]
    if twin.subsegments:
        out["subsegments"] = [sdk_document(child, embedded=True) for child in twin.subsegments]
    return out


def facade() -> Any:
    from aws_xray_sdk.core.models.facade_segment import FacadeSegment

    return FacadeSegment(name="facade", entityid=PARENT, traceid=ROOT, sampled=True)


def test_documents_are_what_the_sdk_models_serialize(daemon: Daemon) -> None:
    obs.configure(exporters=["aws.xray"])
    staged(ManualClock(), model="resnet", model_version="v2")({}, None)
    ours = daemon.document()
    segment = facade()
    assert sdk_document(sdk_twin(ours, segment, segment)) == ours


def test_an_error_sets_fault_and_names_only_the_exception_type(daemon: Daemon) -> None:
    obs.configure(exporters=["aws.xray"])
    with pytest.raises(ValueError, match="secret input 42"):
        staged(ManualClock(), model="resnet")("fail", None)
    datagram = daemon.socket.recv(65536)
    assert b"secret" not in datagram
    top = json.loads(datagram.partition(b"\n")[2])
    assert top["fault"] is True
    (exception,) = top["cause"]["exceptions"]
    assert exception["type"] == "ValueError"
    assert HEX16.fullmatch(exception["id"])
    # the stage it was raised in is marked, and the one around it that it left;
    # the one after it never ran
    marked = {c["name"]: c.get("fault", False) for c in top["subsegments"]}
    assert marked == {"preprocess": False, "inference": True}
    (forward,) = top["subsegments"][1]["subsegments"]
    assert forward["fault"] is True
    # the SDK records an exception with these members and more (message, stack): ours is a subset
    from aws_xray_sdk.core.models.subsegment import Subsegment

    segment = facade()
    recorded = Subsegment("resnet", "", segment)
    recorded.add_exception(ValueError("secret input 42"), [])
    (theirs,) = json.loads(recorded.serialize())["cause"]["exceptions"]
    assert set(exception) < set(theirs) and theirs["type"] == exception["type"]


def test_a_timeout_record_marks_fault_and_runs_open_stages_to_its_end(daemon: Daemon) -> None:
    record = Invocation(
        kind="timeout",
        start=1_700_000_000_000_000_000,
        duration_ms=800.0,
        status="error",
        error_stage="inference/forward",
        model="m",
        stages={"preprocess": 10.0},  # inference and forward never finished
        stage_starts={"preprocess": 1.0, "inference": 11.0, "inference/forward": 12.0},
    )
    XRayExporter().export(record)
    top = daemon.document()
    assert top["fault"] is True and "cause" not in top
    preprocess, inference = top["subsegments"]
    (forward,) = inference["subsegments"]
    assert (preprocess["start_time"], preprocess["end_time"]) == (at(1), at(11))
    assert "fault" not in preprocess
    assert (inference["start_time"], forward["start_time"]) == (at(11), at(12))
    assert inference["end_time"] == forward["end_time"] == top["end_time"]
    assert forward["fault"] is inference["fault"] is True
    segment = facade()
    assert sdk_document(sdk_twin(top, segment, segment)) == top


def test_stages_without_start_times_follow_their_previous_sibling(daemon: Daemon) -> None:
    record = Invocation(
        start=1_700_000_000_000_000_000,
        duration_ms=20.0,
        function="fn",
        stages={"load": 2.0, "infer": 5.0, "infer/step": 1.0, "infer/step2": 2.0},
    )
    XRayExporter().export(record)
    top = daemon.document()
    assert top["name"] == "fn" and top["annotations"] == {"cold_start": False}
    load, infer = top["subsegments"]
    assert (load["start_time"], load["end_time"]) == (at(0), at(2))
    assert infer["start_time"] == load["end_time"]
    step, step2 = infer["subsegments"]
    assert step["start_time"] == infer["start_time"] and step2["start_time"] == step["end_time"]


@pytest.mark.parametrize(
    "header",
    [
        f"Root={ROOT};Parent={PARENT};Sampled=0",
        f"Root={ROOT};Parent={PARENT};Sampled=?",
        f"Root={ROOT};Parent={PARENT}",
        f"Root={ROOT};Sampled=1",
        f"Parent={PARENT};Sampled=1",
        None,
    ],
)
def test_a_trace_not_sampled_or_not_there_sends_nothing(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, header: str | None
) -> None:
    sink = Collect()
    obs.configure(exporters=["aws.xray", sink])
    handler = staged(ManualClock(), model="first")
    if header is None:
        monkeypatch.delenv("_X_AMZN_TRACE_ID")
    else:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    handler({}, None)
    handler({"inferobs": "warmup"}, None)  # a keep-warm ping is nobody's trace either
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", SAMPLED.replace(ROOT, "1-5759e988-000000000000000000000001")
    )
    handler({}, None)
    # the first document to arrive is the last invocation's: nothing came before it
    assert daemon.document()["trace_id"] == "1-5759e988-000000000000000000000001"
    assert [r.get("sdk_faults", 0) for r in sink.records] == [0, 0, 0]


@pytest.mark.parametrize(
    "form", ["tcp:127.0.0.1:9 udp:127.0.0.1:{port}", "udp:127.0.0.1:{port} tcp:127.0.0.1:9"]
)
def test_the_daemon_address_with_tcp_and_udp_sends_to_udp(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", form.format(port=daemon.port))
    obs.configure(exporters=["aws.xray"])
    staged(ManualClock())({}, None)
    assert daemon.document()["trace_id"] == ROOT


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.0.0.1:²", "udp:127.0.0.1:2000", "a:1 b:2", ":2000"]
)
def test_a_malformed_daemon_address_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", address)
    with pytest.raises(obs.ConfigError, match="AWS_XRAY_DAEMON_ADDRESS"):
        obs.configure(exporters=["aws.xray"])


def test_a_dead_or_unknown_daemon_never_reaches_the_handler(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{port}")
    obs.configure(exporters=["aws.xray"])
    handler = staged(ManualClock())
    assert [handler({}, None) for _ in range(3)] == ["done"] * 3

    before = faults_seen().get("xray_address", 0)
    resolved: list[str] = []
    real = _socket.getaddrinfo

    def no_such_host(host: bytes, *args: Any, **kwargs: Any) -> Any:
        if host == b"xray-daemon.invalid":  # answered here: no query leaves the machine
            resolved.append(host.decode())
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(_socket, "getaddrinfo", no_such_host)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "xray-daemon.invalid:2000")
    obs.configure(exporters=["aws.xray"])
    handler = staged(ManualClock())
    assert [handler({}, None) for _ in range(3)] == ["done"] * 3
    assert resolved == ["xray-daemon.invalid"]  # asked once, not per invocation
    assert faults_seen()["xray_address"] == before + 1


def test_subsegments_nest_under_the_one_the_recorder_has_open(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handler code that uses aws-xray-sdk in Lambda: our tree joins its subsegment.

    The recorder is given the context it makes for itself in Lambda (where
    ``LAMBDA_TASK_ROOT`` is set when it is imported), and a UDP emitter
    to this daemon: its subsegment arrives too.
    """
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    monkeypatch.setattr(xray_recorder, "context", LambdaContext())
    monkeypatch.setattr(xray_recorder, "emitter", UDPEmitter(f"127.0.0.1:{daemon.port}"))
    monkeypatch.setattr(xray_recorder, "streaming_threshold", 0)  # sent when it ends, as in Lambda
    obs.configure(exporters=["aws.xray"])
    handler = staged(ManualClock(), model="resnet")

    wrapped = xray_recorder.capture("user-work")(handler)  # the user's wrapper, outside ours
    assert wrapped({}, None) == "done"
    ours, theirs = daemon.documents(2)  # ours is sent first: before their subsegment ends
    assert theirs["name"] == "user-work" and theirs["parent_id"] == PARENT
    assert ours["name"] == "resnet" and ours["parent_id"] == theirs["id"]
    assert ours["trace_id"] == theirs["trace_id"] == ROOT

    # with nothing of theirs open, the facade segment is the parent again
    handler({}, None)
    assert daemon.document()["parent_id"] == PARENT


def test_a_tree_larger_than_a_datagram_is_split(daemon: Daemon) -> None:
    names = [f"stage-{i:03d}-" + "x" * 54 for i in range(600)]

    @obs.instrument(model="wide")
    def handler(event: Any, context: Any) -> None:
        with obs.stage("outer"):
            for name in names:
                with obs.stage(name):
                    pass

    obs.configure(exporters=["aws.xray"])
    handler({}, None)
    top, outer = daemon.documents(2)
    assert "subsegments" not in top  # its one stage did not fit with it: sent on its own
    assert (outer["name"], outer["parent_id"], outer["type"]) == ("outer", top["id"], "subsegment")
    rest = daemon.documents(len(names) - len(outer["subsegments"]))
    assert rest  # some did not fit: each came on its own, saying where it sits
    for part in rest:
        assert (part["trace_id"], part["parent_id"], part["type"]) == (
            ROOT,
            outer["id"],
            "subsegment",
        )
    seen = [c["name"] for c in outer["subsegments"]] + [p["name"] for p in rest]
    assert sorted(seen) == names


def test_names_lose_what_x_ray_refuses_as_the_sdk_strips_it(daemon: Daemon) -> None:
    from aws_xray_sdk.core.models.subsegment import Subsegment

    model = "res(net)!" + "n" * 241  # 250 characters, 247 once cleaned

    @obs.instrument(model=model)
    def handler(event: Any, context: Any) -> None:
        with obs.stage("load<weights>?"):
            pass

    obs.configure(exporters=["aws.xray"])
    handler({}, None)
    top = daemon.document()
    segment = facade()
    assert top["name"] == Subsegment(model, "", segment).name[:200]
    assert len(top["name"]) == 200
    assert top["subsegments"][0]["name"] == Subsegment("load<weights>?", "", segment).name


@pytest.mark.timeout(60)
def test_lambda_runtime_errors_and_timeouts_arrive_as_faults(daemon: Daemon) -> None:
    env = {
        "INFEROBS_EXPORTERS": "stdout,aws.xray",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.port}",
        "INFEROBS_TIMEOUT_MARGIN_MS": "200",
    }
    with function("raises", env=env) as fn:
        assert fn.invoke({}).status == "error"
        (record,) = fn.wait_for_records(1)
        top = daemon.document()
    check_lambda_document(top, record)
    assert top["cause"]["exceptions"][0]["type"] == "ModelError"
    assert "weights missing" not in json.dumps(top)
    assert [c["name"] for c in top["subsegments"]] == ["preprocess", "inference"]
    assert top["subsegments"][1]["fault"] is True

    with function("slow", timeout_s=1.0, env=env) as fn:
        assert fn.invoke({"sleep_s": 5}).error_type == "Timeout"
        (record,) = fn.wait_for_records(1)
        top = daemon.document()
    assert record["kind"] == "timeout"
    check_lambda_document(top, record)
    assert "cause" not in top
    preprocess, inference = top["subsegments"]
    assert preprocess["end_time"] <= inference["start_time"]
    assert inference["end_time"] == top["end_time"] and inference["fault"] is True


def check_lambda_document(top: dict[str, Any], record: dict[str, Any]) -> None:
    assert top["trace_id"] == record["trace_id"]  # the header the runtime set for this request
    assert HEX16.fullmatch(top["parent_id"])
    assert top["name"] == "m" and top["annotations"] == {"cold_start": True, "model": "m"}
    assert top["fault"] is True
    assert top["start_time"] == pytest.approx(record["start"] / 1e9)
    duration_s = top["end_time"] - top["start_time"]
    assert duration_s == pytest.approx(record["duration_ms"] / 1000, abs=1e-6)
