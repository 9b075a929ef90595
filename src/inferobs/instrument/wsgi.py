"""WSGI middleware: one record per HTTP request of any WSGI app (Flask, Django, ...).

A threaded server serves each request on a thread of its own, so the context
variable that holds the record's scope keeps requests apart. The record is
closed when the server closes the response's iterable, after its last byte
(a streamed body is timed to its end, not to the app's return), or when the
app raises. A body the server stops reading before its end (the client went
away) is recorded as ``disconnected``. The ``http`` field is the ASGI
middleware's, but for the route: WSGI has no routing of its own, so the
template is what the framework names, where it says (Flask's
``url_rule``, set on the request environ as ``werkzeug.request``).
"""

from __future__ import annotations

from ..context import _scope
from ..lifecycle import leave
from .http import ID_HEADERS, close_request, open_request, recorder_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextvars import Token
    from typing import Any

    from ..context import Call, Frame
    from ..lifecycle import Recorder
    from ..runtime import Runtime

    Environ = dict[str, Any]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

__all__ = ["InferobsWSGIMiddleware", "instrument_wsgi"]

# WSGI names a header HTTP_ + its name upper-cased, dashes as underscores
_ENVIRON_IDS = {"HTTP_" + name.upper().replace("-", "_"): name for name in ID_HEADERS}


class InferobsWSGIMiddleware:
    """Records every HTTP request the wrapped WSGI app serves: ``app.wsgi_app =
    InferobsWSGIMiddleware(app.wsgi_app)`` on Flask, or around any WSGI app."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        model: str | None = None,
        model_version: str | None = None,
        variant: str | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.app = app
        self.recorder = recorder_for(
            "InferobsWSGIMiddleware", model, model_version, variant, runtime
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        call, recorder = _open(self.recorder, environ)
        if call is None:
            return self.app(environ, start_response)
        body = _Body(recorder, call, environ)
        counted = _Input(environ.get("wsgi.input"), body)
        if counted.stream is not None:
            environ["wsgi.input"] = counted
        # inside an invocation recorded around it (serverless-wsgi), the app runs in its scope
        token = _scope.set(call.root()) if recorder is not None else None
        try:
            result = self.app(environ, body.start_response(start_response))
        except BaseException as exc:
            if token is not None:
                leave(token)
            body.finish(exc)
            raise
        if token is not None:
            body.inside = leave(token)
        else:
            body.inside = _scope.get()
        body.result = result
        return body


def instrument_wsgi(app: WSGIApp, **options: Any) -> InferobsWSGIMiddleware:
    """``app`` wrapped in `InferobsWSGIMiddleware` (``options`` are its keywords)."""
    return InferobsWSGIMiddleware(app, **options)


def _open(recorder: Recorder, environ: Environ) -> tuple[Call | None, Recorder | None]:
    """The request's record, with its ids from the headers (only those ever read)."""
    headers = {
        name: value
        for key, name in _ENVIRON_IDS.items()
        if isinstance(value := environ.get(key), str)
    }
    return open_request(recorder, environ.get("REQUEST_METHOD"), headers.get)


class _Body:
    """The response's iterable: each step in the request's scope, bytes counted, and the
    record closed when the server closes it (after the last byte, or early)."""

    def __init__(self, recorder: Recorder | None, call: Call, environ: Environ) -> None:
        self.recorder = recorder
        self.call = call
        self.environ = environ
        self.http: dict[str, Any] = call.http if call.http is not None else {}
        self.request_bytes = 0
        self.response_bytes = 0
        self.result: Iterable[bytes] = ()
        self.inside: Frame | None = None
        self.ended = False  # the iterable ran out
        self.closed = False

    def start_response(self, start_response: StartResponse) -> StartResponse:
        def recorded(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], object]:
            code = status.split(" ", 1)[0] if isinstance(status, str) else ""
            if code.isdigit():
                self.http["status_code"] = int(code)
            route = _route(self.environ)  # now: a framework may forget its request after
            if route is not None:
                self.http["route"] = route
            write = (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

            def counted(data: bytes) -> object:  # the old imperative write(): counted too
                self.response_bytes += len(data)
                return write(data)

            return counted

        return recorded

    def __iter__(self) -> Iterator[bytes]:
        steps = iter(self.result)
        while True:
            token: Token[Frame | None] = _scope.set(self.inside)
            try:
                chunk = next(steps)
            except StopIteration:
                self.inside = leave(token)
                self.ended = True
                # the last byte is out: recorded now, for servers and adapters that never
                # close a body (serverless-wsgi, werkzeug's Response.from_app)
                self.finish(None)
                return
            except BaseException as exc:
                leave(token)
                self.finish(exc)
                raise
            self.inside = leave(token)
            self.response_bytes += len(chunk)
            yield chunk

    def close(self) -> None:
        """What the server calls when the response is done, or abandoned."""
        try:
            closing = getattr(self.result, "close", None)
            if closing is not None:
                closing()
        finally:
            if not self.ended:
                self.http["disconnected"] = True
            self.finish(None)

    def finish(self, error: BaseException | None) -> None:
        """Close the record once: when the server closes the body, or the app raises."""
        if self.closed:
            return
        self.closed = True
        route = _route(self.environ) or self.http.get("route")
        sizes = (self.request_bytes, self.response_bytes)
        close_request(self.recorder, self.call, route, sizes, error)


class _Input:
    """``wsgi.input``, its bytes counted as the app reads them."""

    def __init__(self, stream: Any, body: _Body) -> None:
        self.stream = stream
        self.body = body

    def read(self, *size: int) -> bytes:
        data: bytes = self.stream.read(*size)
        self.body.request_bytes += len(data)
        return data

    def readline(self, *size: int) -> bytes:
        data: bytes = self.stream.readline(*size)
        self.body.request_bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self.stream.readinto(buffer)
        self.body.request_bytes += count or 0
        return count

    def readlines(self, *hint: int) -> list[bytes]:
        lines: list[bytes] = self.stream.readlines(*hint)
        self.body.request_bytes += sum(map(len, lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.body.request_bytes += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        """The server's stream's other methods (``seek``, ``fileno``, ...), as they are."""
        return getattr(self.stream, name)


def _route(environ: Environ) -> str | None:
    """The matched route's template, where the framework left it in the environ."""
    request = environ.get("werkzeug.request")  # Flask's request, once it routed
    rule = getattr(request, "url_rule", None)
    template = getattr(rule, "rule", None)
    return template if isinstance(template, str) else None
