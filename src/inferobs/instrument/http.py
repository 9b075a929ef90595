"""What the HTTP surfaces (ASGI, WSGI) share: the request's ids from its headers, and the
parts of the ``http`` field that do not depend on the server interface.

Only identifiers are read from headers (a request id, the caller's trace id),
never values: bodies, other headers and query strings stay out of every record.
"""

from __future__ import annotations

import os

from ..config import current
from ..context import _scope
from ..lifecycle import Recorder
from ..runtime import default_runtime
from .labels import check_labels

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..context import Call
    from ..runtime import Runtime

__all__ = [
    "ID_HEADERS",
    "REQUEST_ID_HEADERS",
    "TRACE_HEADERS",
    "close_request",
    "open_request",
    "outer_call",
    "recorder_for",
    "request_id",
    "trace_id",
]

# headers that carry a request id a platform or proxy assigned, most specific first
REQUEST_ID_HEADERS = ("function-execution-id", "x-request-id", "x-amzn-requestid")
TRACE_HEADERS = ("traceparent", "x-cloud-trace-context", "x-amzn-trace-id")
ID_HEADERS = frozenset(REQUEST_ID_HEADERS + TRACE_HEADERS)  # the only headers ever read
_HEX = frozenset("0123456789abcdef")


def request_id(header: Callable[[str], str | None]) -> str:
    """The request id a platform or proxy gave (``header(name)`` reads a lower-cased
    header), else a fresh random one: the reader counts records without an id
    apart only, so every record gets one."""
    for name in REQUEST_ID_HEADERS:
        value = header(name)
        if value and len(value) <= 128 and value.isprintable():
            return value
    return os.urandom(12).hex()


def trace_id(header: Callable[[str], str | None]) -> str | None:
    """The caller's trace id, to join its trace: W3C ``traceparent``, Google's
    ``X-Cloud-Trace-Context``, AWS's ``X-Amzn-Trace-Id`` (``Root=``), in that order;
    None when none is there or well formed."""
    parent = header("traceparent")
    if parent:
        parts = parent.strip().split("-")
        trace = parts[1] if len(parts) >= 4 else ""
        if len(trace) == 32 and set(trace) <= _HEX and trace != "0" * 32:
            return trace
    google = header("x-cloud-trace-context")
    if google:
        trace = google.split("/", 1)[0].strip()
        if len(trace) == 32 and set(trace.lower()) <= _HEX:
            return trace.lower()
    amazon = header("x-amzn-trace-id")
    if amazon:
        start = amazon.find("Root=")
        if start >= 0:
            end = amazon.find(";", start)
            root = amazon[start + 5 : end if end >= 0 else None]
            if root and len(root) <= 64 and root.isprintable():
                return root
    return None


def recorder_for(
    surface: str,
    model: str | None,
    model_version: str | None,
    variant: str | None,
    runtime: Runtime | None,
) -> Recorder:
    """A middleware's recorder, its labels checked (`ConfigError` naming ``surface``)."""
    check_labels(surface, model, model_version, variant)
    return Recorder(
        runtime or default_runtime(), model=model, model_version=model_version, variant=variant
    )


def open_request(
    recorder: Recorder, method: object, header: Callable[[str], str | None]
) -> tuple[Call | None, Recorder | None]:
    """A request's record, opened with its ids from ``header`` and its deadline
    (``request_timeout_s``), and the recorder that closes it; or the invocation it is
    served inside (`outer_call`), with no recorder: that one's own closes it. None when
    not recording."""
    outer = outer_call()
    if outer is not None:
        if isinstance(method, str) and outer.http is not None:
            outer.http.setdefault("method", method)  # in place: the exchange holds this dict
        return outer, None
    timeout_s = current().request_timeout_s
    call = recorder.open(
        request_id(header), trace_id(header), int(timeout_s * 1000) if timeout_s else None
    )
    if call is not None:
        call.http = {"method": method} if isinstance(method, str) else {}
    return call, recorder


def outer_call() -> Call | None:
    """The invocation this request is served inside, if one is being recorded: an ASGI
    app behind Mangum, or a WSGI app behind serverless-wsgi, in an ``@instrument``-ed
    Lambda handler. Its record takes the request's ``http`` field; a second record for
    the same invocation would count it twice."""
    here = _scope.get()
    if here is None or here[1].closed or not here[1].adoptable:
        return None  # any other call in scope (an in-process request, say) is not ours
    call = here[1]
    call.adoptable = False  # one request per invocation: a second one is its own record
    if call.http is None:
        call.http = {}
    return call


def close_request(
    recorder: Recorder | None,
    call: Call,
    route: str | None,
    sizes: tuple[int, int],
    error: BaseException | None,
) -> None:
    """Close a request's record with its route, body sizes (request, response) and, for
    an app that raised before answering, the 500 the server answers for it. With no
    ``recorder`` (an invocation recorded around the request), only the fields are
    set: its own recorder closes it."""
    http: dict[str, Any] = call.http if call.http is not None else {}
    if route is not None:
        http["route"] = route
    if error is not None and "status_code" not in http:
        http["status_code"] = 500
    http["request_bytes"], http["response_bytes"] = sizes
    if recorder is not None:
        # off Lambda nothing freezes between requests: exporters' sender threads send on
        # their own, and a request (on an event loop, most likely) never waits for them
        recorder.close(call, error, flush=recorder.runtime.platform == "aws_lambda")
