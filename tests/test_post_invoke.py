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

# a decorated function that is not the handler: the extension must not wait for it,
# and when it is called late in the invocation, it flushes as the handler would
UNDECORATED = """
import time

import inferobs as obs


@obs.instrument(model="helper")
def helper(event, context):
    return event


def handler(event, context):
    if event.get("late"):
        time.sleep(0.3)
        helper(event, context)
    return {"n": event["n"]}
"""

# a decorated helper called with the handler's own context: two calls of one request
NESTED = """
import inferobs as obs


@obs.instrument(model="inner")
def helper(event, context):
    return event


@obs.instrument(model="outer")
def handler(event, context):
    helper(event, context)
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


def function(
    receiver: Receiver, folder: Any, source: str, env: dict[str, str] | None = None
) -> LocalLambda:
    """A function of ``source`` sending to ``receiver`` over OTLP, under the Runtime API."""
    (folder / "otlp_handler.py").write_text(source)
    env = {
        "INFEROBS_EXPORTERS": "stdout,otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "INFEROBS_FLUSH_DEADLINE_MS": "10000",
        **(env or {}),
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
            settled = fn.api.settled(answer.request_id, 20)
            assert settled is not None and settled - answer.at < 5
        assert spans(receiver) == 0
        # a decorated call that opens after the grace: its own handler flushes it, so its
        # span is sent before the answer
        late = fn.invoke({"n": 9, "late": True})
        assert late.json() == {"n": 9, "late": True} or late.json() == {"n": 9}
        assert spans(receiver) == 1


def test_a_call_nested_in_the_handler_with_its_request_id_does_not_release_it_early(
    receiver: Gated, tmp_path: Any
) -> None:
    with function(receiver, tmp_path, NESTED) as fn:
        for n in range(2):
            answer = fn.invoke({"n": n})
            assert fn.api.settled(answer.request_id, 30) is not None
            assert spans(receiver) == 2 * (n + 1)  # the inner call's and the handler's
        assert fn.api.extensions() == 1


def test_with_recording_off_no_extension_is_registered(receiver: Gated, tmp_path: Any) -> None:
    with function(receiver, tmp_path, HANDLER, {"INFEROBS_ENABLED": "false"}) as fn:
        answer = fn.invoke({"n": 1})
        assert answer.json() == {"n": 1}
        settled = fn.api.settled(answer.request_id, 20)
        assert settled is not None and fn.api.extensions() == 0


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


class _EventsAPI:
    """An Extensions API that fails its first request for an event, then sends one INVOKE
    and holds every later request until the test ends."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.asked = 0
        self.done = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, code: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.answer(200, b"{}", {"Lambda-Extension-Identifier": "x"})

            def do_GET(self) -> None:
                api.asked += 1
                if api.asked == 1:
                    self.answer(500, b"{}", {})
                elif api.asked == 2:
                    self.answer(200, b'{"eventType":"INVOKE","requestId":"r1"}', {})
                else:
                    api.done.wait(30)
                    self.answer(500, b"{}", {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def test_an_extension_that_cannot_read_its_events_lets_the_handlers_flush_and_asks_again() -> None:
    import time

    api = _EventsAPI()
    try:
        extension = PostInvoke.register(api.address, lambda deadline: None)
        assert extension is not None
        end = time.monotonic() + 10
        while api.asked < 3 and time.monotonic() < end:  # it never stops asking
            time.sleep(0.01)
        assert api.asked >= 3 and not extension.active
        extension.opened("r2")
        assert not extension.closed("r2")  # the handler flushes this one itself
    finally:
        api.close()


def test_the_events_are_read_whole_from_chunks_and_an_answer_cut_short_is_an_error() -> None:
    import socket

    from inferobs.post_invoke import _answer, _send

    def _request(address: str, method: str, path: str, headers: dict[str, str]) -> Any:
        with _send(address, method, path, headers, timeout=5) as connection:
            return _answer(connection)

    def serve(answer: bytes) -> str:
        listener = socket.create_server(("127.0.0.1", 0))

        def once() -> None:
            connection, _ = listener.accept()
            with connection, listener:
                connection.recv(65536)
                connection.sendall(answer)

        threading.Thread(target=once, daemon=True).start()
        return f"127.0.0.1:{listener.getsockname()[1]}"

    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"
    )
    assert _request(serve(chunked), "GET", "/", {}) == (
        200,
        {"transfer-encoding": "chunked"},
        b"hello!",
    )
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    with pytest.raises(OSError, match="cut short"):
        _request(serve(short), "GET", "/", {})


def test_a_call_closed_before_the_events_broke_is_flushed_by_the_extension() -> None:
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Lambda-Extension-Identifier", "x")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # held until the call closed, then broken
            answer.wait(30)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    flushed: list[float | None] = []
    try:
        extension = PostInvoke.register(f"127.0.0.1:{server.server_address[1]}", flushed.append)
        assert extension is not None
        extension.opened("r1")
        assert extension.closed("r1")  # the extension, not the handler, is to flush it
        answer.set()
        end = time.monotonic() + 10
        while not flushed and time.monotonic() < end:
            time.sleep(0.01)
        assert flushed and not extension.active
    finally:
        answer.set()
        server.shutdown()
        server.server_close()
