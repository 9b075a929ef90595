"""ASGI middleware: one record per HTTP request of any ASGI app (FastAPI, Starlette, ...).

For Cloud Run, SageMaker's bring-your-own-container, Lambda Web Adapter and
plain containers, where one process serves many requests at once. Each request
is recorded in its own scope: the server runs every request in a task of its
own, so the context variable that holds the scope keeps each request's
stages, tags and input apart, and work handed to threads (Starlette runs plain
``def`` endpoints in a thread pool, with the request's context copied) lands
in its own record too.

The record is closed when the last byte of the response is handed to the
server (a streamed body is timed to its end, not to the app's return), or
when the app raises. It carries the ``http`` field: method, the route's
template (``scope["route"].path``, as Starlette and FastAPI set it; never the
raw path, which holds user data and has no bound), status code, request and
response body sizes, and ``disconnected`` when the client left first.
Lifespan and websocket traffic pass through unrecorded.
"""

from __future__ import annotations

from ..context import _scope
from ..lifecycle import leave
from .http import ID_HEADERS, close_request, open_request, recorder_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from typing import Any

    from ..context import Call
    from ..lifecycle import Recorder
    from ..runtime import Runtime

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["InferobsMiddleware", "instrument_asgi"]


class InferobsMiddleware:
    """Records every HTTP request the wrapped ASGI app serves.

    ``app.add_middleware(InferobsMiddleware, model="ranker")`` on Starlette or
    FastAPI, or ``InferobsMiddleware(app)`` around any ASGI app. A request's
    deadline, where the platform gives the app none, is ``request_timeout_s``
    (``INFEROBS_REQUEST_TIMEOUT_S``): past it, the request's ``timeout`` line is
    written as on Lambda.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        model: str | None = None,
        model_version: str | None = None,
        variant: str | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.app = app
        self.recorder = recorder_for("InferobsMiddleware", model, model_version, variant, runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        call, recorder = _open(self.recorder, scope)
        if call is None:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(recorder, call, scope, receive, send)
        # inside an invocation recorded around it (Mangum), the app runs in its scope
        token = _scope.set(call.root()) if recorder is not None else None
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            exchange.finish(exc)
            raise
        finally:
            if token is not None:
                leave(token)
        exchange.finish(None)


def instrument_asgi(app: ASGIApp, **options: Any) -> InferobsMiddleware:
    """``app`` wrapped in `InferobsMiddleware` (``options`` are its keywords)."""
    return InferobsMiddleware(app, **options)


def _open(recorder: Recorder, scope: Scope) -> tuple[Call | None, Recorder | None]:
    """The request's record, with its ids from the headers (only those ever read)."""
    headers: dict[str, str] = {}
    try:
        for name, value in scope.get("headers") or ():
            key = name.decode("latin-1").lower()
            if key in ID_HEADERS:
                headers[key] = value.decode("latin-1")
    except Exception:  # a server's malformed headers: record without ids
        headers = {}
    # Azure Functions' AsgiFunctionApp puts the invocation's id in the scope
    invocation = scope.get("azure_functions.invocation_id")
    if isinstance(invocation, str) and invocation and "function-execution-id" not in headers:
        headers["function-execution-id"] = invocation
    return open_request(recorder, scope.get("method"), headers.get)


class _Exchange:
    """One request's messages as they pass: sizes, status, the last byte, a disconnect."""

    __slots__ = (
        "_receive",
        "_send",
        "call",
        "closed",
        "http",
        "recorder",
        "request_bytes",
        "response_bytes",
        "scope",
    )

    def __init__(
        self, recorder: Recorder | None, call: Call, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.recorder = recorder
        self.call = call
        self.scope = scope
        self.http: dict[str, Any] = call.http if call.http is not None else {}
        self.request_bytes = 0
        self.response_bytes = 0
        self.closed = False
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message.get("type")
        if kind == "http.request":
            self.request_bytes += len(message.get("body") or b"")
        elif kind == "http.disconnect" and not self.closed:
            self.http["disconnected"] = True
        return message

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            status = message.get("status")
            if isinstance(status, int):
                self.http["status_code"] = status
        try:
            await self._send(message)
        except OSError:  # the client went away mid-response
            self.http["disconnected"] = True
            raise
        if kind == "http.response.body":
            self.response_bytes += len(message.get("body") or b"")
            if not message.get("more_body", False):  # the last byte is out: it ends here
                self.finish(None)

    def finish(self, error: BaseException | None) -> None:
        """Close the record once: at the last byte, or when the app raises or returns."""
        if self.closed:
            return
        self.closed = True
        if error is None and "status_code" not in self.http and not self.http.get("disconnected"):
            self.http["status_code"] = 500  # returned without answering: the server sends 500
        template = getattr(self.scope.get("route"), "path", None)
        route = template if isinstance(template, str) else None
        sizes = (self.request_bytes, self.response_bytes)
        close_request(self.recorder, self.call, route, sizes, error)
