"""A Lambda Runtime API endpoint on loopback, for running handlers as Lambda does.

It speaks the runtime side of the protocol that the real runtime interface
client (``awslambdaric``) talks to on Lambda: long-polled
``GET /2018-06-01/runtime/invocation/next``, the ``response`` and ``error``
posts, the init error post, and SnapStart's ``restore/next``. Tests and the
local demo use it to put an instrumented handler through the real lifecycle
without an AWS account; it only ever listens on 127.0.0.1.

As on Lambda, an invocation's clock starts when the runtime receives it: the
``Lambda-Runtime-Deadline-Ms`` it is handed is the function timeout from that
moment (or from an earlier one set with `start_clock`, for an init re-run
inside the invocation), and `received` tells the platform's side when it was.

It also speaks the Extensions API as far as internal extensions use it
(``POST /2020-01-01/extension/register`` during init, long-polled ``GET
/2020-01-01/extension/event/next``): each invocation handed out sends every
registered extension an INVOKE event, and, as on Lambda, the next invocation
is handed out only once the runtime and every extension have asked for their
next event. The response is available to `outcome` as soon as the runtime
posts it; `settled` tells when the invocation's work, extensions' included,
was done.

A runtime whose init fails posts the error to ``/runtime/init/error`` and
exits. Lambda then answers the invocation that was waiting with that error
(its ``errorType``, such as ``Runtime.ImportModuleError``, and message), so
here `received` stops waiting and `outcome` answers with it at once.
"""

from __future__ import annotations

import json
import queue
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Outcome", "RuntimeAPI"]

_PREFIX = "/2018-06-01/runtime"
_EXTENSIONS = "/2020-01-01/extension"
# Lambda times out an extension that never asks for its next event; here the
# next invocation goes out after this long regardless, so a test fails, not hangs
_EXTENSIONS_WAIT_S = 30.0


class Outcome:
    """What the runtime reported for one invocation."""

    __slots__ = ("at", "body", "error_type", "request_id", "status")

    def __init__(self, request_id: str, status: str, body: bytes, error_type: str | None) -> None:
        self.request_id = request_id
        self.status = status  # "response" or "error"
        self.body = body
        self.error_type = error_type
        self.at = time.monotonic()  # when it came back

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Outcome({self.request_id!r}, {self.status!r}, {self.body[:80]!r})"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime process killed mid-request (a timeout) is normal here, not news."""


class RuntimeAPI:
    """The endpoint. Queue events with `submit`; collect what came back with `outcome`."""

    def __init__(self, function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"):
        self.function_arn = function_arn
        # request id, body, timeout, trace id: the deadline is set when it is handed out
        self._events: queue.Queue[tuple[str, bytes, float, str]] = queue.Queue()
        self._outcomes: dict[str, Outcome] = {}
        self._received: dict[str, float] = {}  # request id -> time.monotonic() at hand-out
        self._clock_from: dict[str, float] = {}  # request id -> epoch s its clock started
        self._polled = False  # the environment has asked for work: its init is over
        self._asks = 0  # how often runtimes have asked for work, in all
        # the current environment's init error, as posted: body and error type
        self._init_failure: tuple[bytes, str | None] | None = None
        self._withdrawn: set[str] = set()  # queued requests no runtime may receive now
        # registered extensions: id -> their queue of events (None: the environment is gone)
        self._extensions: dict[str, queue.Queue[dict[str, Any] | None]] = {}
        self._busy: set[str] = set()  # extensions still working on the current invocation
        self._current: str | None = None  # the request in its Invoke phase
        self._settled: dict[str, float] = {}  # request id -> time.monotonic() its work ended
        self._done = threading.Condition()  # guards the twelve above
        self._restore = threading.Event()
        self.init_errors: list[dict[str, Any]] = []
        self.restore_requested = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        return f"127.0.0.1:{self._server.server_port}"

    def start(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RuntimeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(
        self,
        event: Any,
        *,
        request_id: str | None = None,
        timeout_s: float = 3.0,
        trace_id: str | None = None,
    ) -> str:
        """Queue one invocation; returns its request id.

        Its ``timeout_s`` counts from when the runtime receives it, not from now.
        """
        request_id = request_id or str(uuid.uuid4())
        trace_id = trace_id or (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=1"
        )
        self._events.put((request_id, json.dumps(event).encode(), timeout_s, trace_id))
        return request_id

    def start_clock(self, request_id: str) -> None:
        """Start a queued request's clock now, before the runtime receives it.

        For an init re-run inside the invocation: its time counts against the timeout.
        """
        with self._done:
            self._clock_from[request_id] = time.time()

    def new_environment(self) -> None:
        """A new runtime process starts: its init lasts until it first asks for work."""
        with self._done:
            self._polled = False
            self._init_failure = None
            for events in self._extensions.values():  # the old process's extensions are gone
                events.put(None)
            self._extensions.clear()
            self._busy.clear()
            self._settle()
            self._done.notify_all()

    def init_failed(self) -> bool:
        """Whether the current environment's runtime has posted an init error."""
        with self._done:
            return self._init_failure is not None

    def was_received(self, request_id: str) -> bool:
        """Whether a runtime has received the request."""
        with self._done:
            return request_id in self._received

    def withdraw(self, request_id: str) -> None:
        """Take back a queued request the platform gave up on, so no runtime receives it later."""
        with self._done:
            if request_id not in self._received:
                self._withdrawn.add(request_id)

    def _failed_init(self, request_id: str) -> Outcome | None:
        """The init error as ``request_id``'s answer, if it was waiting for a failed init."""
        if self._init_failure is None or request_id in self._received:
            return None
        body, error_type = self._init_failure
        return Outcome(request_id, "error", body, error_type)

    def received(
        self, request_id: str, *, init_until: float, then_s: float
    ) -> tuple[float | None, bool]:
        """When the runtime received a request (`time.monotonic`), and whether its init is over.

        Waits while the environment initialises, until the monotonic time
        ``init_until``; once it has asked for work, ``then_s`` more. The time is
        None when the request was not received by then, or when the init
        failed (then `outcome` holds the error).
        """
        with self._done:
            end: float | None = None
            while request_id not in self._received:
                if self._init_failure is not None:
                    return None, self._polled
                if end is None and self._polled:
                    end = time.monotonic() + then_s
                left = (init_until if end is None else end) - time.monotonic()
                if left <= 0:
                    return None, self._polled
                self._done.wait(left)
            return self._received[request_id], True

    def release_restore(self) -> None:
        """Let a SnapStart runtime waiting in ``restore/next`` resume."""
        self._restore.set()

    def outcome(self, request_id: str, timeout_s: float) -> Outcome | None:
        """Wait up to ``timeout_s`` for the runtime's answer to one request.

        A request still waiting when its environment's init fails is answered
        with the init error, as Lambda answers it.
        """
        end = time.monotonic() + timeout_s
        with self._done:
            while request_id not in self._outcomes:
                failed = self._failed_init(request_id)
                if failed is not None:
                    return failed
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._done.wait(left)
            return self._outcomes[request_id]

    def settled(self, request_id: str, timeout_s: float) -> float | None:
        """When (`time.monotonic`) the invocation's work ended: the runtime had answered and
        every extension had asked for its next event; None if not within ``timeout_s``."""
        with self._done:
            self._done.wait_for(lambda: request_id in self._settled, timeout_s)
            return self._settled.get(request_id)

    def extensions(self) -> int:
        """How many extensions the current environment registered."""
        with self._done:
            return len(self._extensions)

    def handed_out(self, request_id: str) -> float | None:
        """When (`time.monotonic`) a runtime received the request, if one has."""
        with self._done:
            return self._received.get(request_id)

    def answered(self, request_id: str) -> float | None:
        """When (`time.monotonic`) the runtime posted its answer to the request, if it has."""
        with self._done:
            outcome = self._outcomes.get(request_id)
            return None if outcome is None else outcome.at

    def _settle(self) -> None:
        """Mark the current invocation's work done if nothing works on it any more."""
        if self._current is not None and not self._busy and self._current in self._outcomes:
            self._settled[self._current] = time.monotonic()
            self._current = None

    def _register(self) -> str | None:
        """A new extension's identifier; None once init is over, as Lambda refuses then."""
        with self._done:
            if self._polled:
                return None
            identifier = str(uuid.uuid4())
            self._extensions[identifier] = queue.Queue()
            self._busy.add(identifier)  # init is over only once it asks for its first event
            return identifier

    def _extension_ready(self, identifier: str) -> queue.Queue[dict[str, Any] | None] | None:
        """An extension asks for its next event: its work on the current one is done."""
        with self._done:
            events = self._extensions.get(identifier)
            self._busy.discard(identifier)
            self._settle()
            self._done.notify_all()
            return events

    def _record(self, outcome: Outcome) -> None:
        with self._done:
            self._outcomes[outcome.request_id] = outcome
            self._settle()
            self._done.notify_all()

    def asked(self, times: int, timeout_s: float) -> bool:
        """Whether runtimes have asked for work ``times`` times in all, waiting up to ``timeout_s``.

        A runtime that asked and got nothing yet is idle, waiting for its next event.
        """
        with self._done:
            return self._done.wait_for(lambda: self._asks >= times, timeout_s)

    def _init_failed(self, body: bytes, error_type: str | None) -> None:
        with self._done:
            self._init_failure = (body, error_type)
            self._done.notify_all()

    def _next_event(self) -> tuple[str, bytes, float, str]:
        """The next queued request no one has withdrawn (waiting for one if need be)."""
        while True:
            event = self._events.get()
            with self._done:
                if event[0] not in self._withdrawn:
                    return event
                self._withdrawn.discard(event[0])

    def _asked_for_work(self) -> None:
        with self._done:
            self._polled = True
            self._asks += 1
            self._done.notify_all()

    def _hand_out(self, request_id: str, timeout_s: float, trace_id: str) -> dict[str, str]:
        """The headers of a request the runtime now receives; its clock starts here, and
        every extension is sent its INVOKE event."""
        with self._done:
            started = self._clock_from.pop(request_id, time.time())
            self._received[request_id] = time.monotonic()
            self._current = request_id
            for identifier, events in self._extensions.items():
                self._busy.add(identifier)
                events.put(
                    {
                        "eventType": "INVOKE",
                        "deadlineMs": int((started + timeout_s) * 1000),
                        "requestId": request_id,
                        "invokedFunctionArn": self.function_arn,
                        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
                    }
                )
            self._done.notify_all()
        return {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((started + timeout_s) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": trace_id,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # each answer leaves in one write, at once: headers and body written apart
            # would wait on the client's delayed acknowledgement (40 ms on Linux)
            wbufsize = 1 << 16

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output to what the function printed

            def _reply(
                self, code: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _gone(self) -> bool:
                """Whether the runtime that asked has died since (killed while it waited)."""
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True

            def do_GET(self) -> None:
                if self.path == f"{_PREFIX}/invocation/next":
                    api._asked_for_work()
                    with api._done:  # the next invocation waits for the extensions' work
                        api._done.wait_for(lambda: not api._busy, _EXTENSIONS_WAIT_S)
                    request_id, body, timeout_s, trace_id = event = api._next_event()
                    if self._gone():  # not received: back in the queue for a live runtime
                        api._events.put(event)
                        self.close_connection = True
                        return
                    self._reply(200, body, api._hand_out(request_id, timeout_s, trace_id))
                elif self.path == f"{_EXTENSIONS}/event/next":
                    identifier = self.headers.get("Lambda-Extension-Identifier", "")
                    events = api._extension_ready(identifier)
                    if events is None:
                        self._reply(403, b'{"errorType":"Extension.UnknownExtensionIdentifier"}')
                        return
                    while True:  # long-polled, until an event or the process is gone
                        try:
                            found = events.get(timeout=0.2)
                        except queue.Empty:
                            if self._gone():
                                return
                            continue
                        if found is None:
                            self.close_connection = True
                            return
                        self._reply(200, json.dumps(found).encode())
                        return
                elif self.path == f"{_PREFIX}/restore/next":
                    api._asked_for_work()
                    api.restore_requested.set()
                    api._restore.wait()
                    self._reply(200)
                else:
                    self._reply(404, b'{"errorType":"NotFound"}')

            def do_POST(self) -> None:
                body = self._body()
                if self.path == f"{_EXTENSIONS}/register":
                    identifier = api._register()
                    if identifier is None:
                        self._reply(403, b'{"errorType":"Extension.InvalidState"}')
                        return
                    answer = {"functionName": "local", "functionVersion": "$LATEST"}
                    headers = {"Lambda-Extension-Identifier": identifier}
                    self._reply(200, json.dumps(answer).encode(), headers)
                    return
                parts = self.path[len(_PREFIX) :].strip("/").split("/")
                if (
                    len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2] in ("response", "error")
                ):
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    api._record(Outcome(parts[1], parts[2], body, error_type))
                    self._reply(202, b'{"status":"OK"}')
                elif parts in (["init", "error"], ["restore", "error"]):
                    api.init_errors.append(json.loads(body or b"{}"))
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    api._init_failed(body, error_type)
                    self._reply(202, b'{"status":"OK"}')
                else:
                    self._reply(404, b'{"errorType":"NotFound"}')

        return Handler
