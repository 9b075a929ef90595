"""On Lambda the network exporters send after the response, before the environment may freeze.

Each test runs a handler under the real runtime interface client against the
loopback Runtime API, which speaks the Extensions API as Lambda does: the
answer is out as soon as the runtime posts it, and the next invocation is
handed out only once every extension has asked for its next event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda
from inferobs.post_invoke import PostInvoke

from .test_otlp_exporter import Receiver, serve_http

HANDLER = """
import inferobs as obs


@obs.instrument(model="m")
def handler(event, context):
    with obs.stage("inference"):
        return {"n": event["n"]}
"""

# a decorated function that is not the handler: the extension must not wait for it
UNDECORATED = """
import inferobs as obs


@obs.instrument(model="m")
def helper(event, context):
    return event


def handler(event, context):
    return {"n": event["n"]}
"""


class Gated(Receiver):
    """A receiver that holds every request until its gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def take(self, request: Any, headers: dict[str, str]) -> Any:
        assert self.gate.wait(30)
        return super().take(request, headers)


@pytest.fixture
def receiver() -> Iterator[Gated]:
    found = Gated()
    stop = serve_http(found)
    yield found
    found.gate.set()
    stop()


def function(receiver: Receiver, folder: Any, source: str) -> LocalLambda:
    """A function of ``source`` sending to ``receiver`` over OTLP, under the Runtime API."""
    (folder / "otlp_handler.py").write_text(source)
    env = {
        "INFEROBS_EXPORTERS": "stdout,otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "INFEROBS_FLUSH_DEADLINE_MS": "10000",
    }
    return LocalLambda("otlp_handler.handler", code_dir=str(folder), env=env, timeout_s=60)


def spans(receiver: Receiver) -> int:
    with receiver.changed:
        return sum(
            len(ss.spans)
            for r in receiver.traces
            for rs in r.resource_spans
            for ss in rs.scope_spans
        )


def test_the_answer_leaves_first_and_the_spans_before_the_next_invocation(
    receiver: Gated, tmp_path: Any
) -> None:
    with function(receiver, tmp_path, HANDLER) as fn:
        first = fn.invoke({"n": 1})  # the exporter's libraries load on this one
        assert first.json() == {"n": 1}
        assert fn.api.settled(first.request_id, 60) is not None
        sent = spans(receiver)
        assert sent >= 2  # the invocation and its stage, before the work was done
        receiver.gate.clear()  # the collector now holds every request
        second = fn.invoke({"n": 2})
        assert second.json() == {"n": 2}  # answered while the spans could not be sent
        assert spans(receiver) == sent
        assert fn.api.settled(second.request_id, 0.3) is None  # still sending: no freeze yet
        receiver.gate.set()
        settled = fn.api.settled(second.request_id, 60)
        assert settled is not None and fn.api.answered(second.request_id) is not None
        assert fn.api.answered(second.request_id) < settled  # type: ignore[operator]
        assert spans(receiver) == sent + 2  # sent before the work was done
        records = fn.wait_for_records(2)
    assert [r["id"] for r in records] == [first.request_id, second.request_id]


def test_an_invocation_of_a_handler_that_is_not_decorated_is_not_held(
    receiver: Gated, tmp_path: Any
) -> None:
    with function(receiver, tmp_path, UNDECORATED) as fn:
        for n in range(3):
            answer = fn.invoke({"n": n})
            assert answer.json() == {"n": n}
            # released after a short grace, never held to the 60 s deadline
            assert fn.api.settled(answer.request_id, 20) is not None


def test_without_the_extensions_api_there_is_no_extension() -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert PostInvoke.register(f"127.0.0.1:{port}", lambda deadline: None) is None


def test_a_forked_child_flushes_in_its_handler_as_there_is_no_extension_there() -> None:
    import os

    extension = PostInvoke("127.0.0.1:9", "id", lambda deadline: None)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether the extension still counts as there
        os.write(write, b"1" if extension.active else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"0" and extension.active
