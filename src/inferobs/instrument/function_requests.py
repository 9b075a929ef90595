"""What ``@instrument`` reads of the request objects serverless function runtimes pass.

Google's functions-framework passes an HTTP function a ``flask.Request`` and a
CloudEvent function a ``cloudevents`` ``CloudEvent``; Azure Functions passes an
``azure.functions.HttpRequest`` (and a ``Context`` whose ``invocation_id`` names
the invocation). Each is told by its class's module, never imported.

On Google, the invocation id is the ``Function-Execution-Id`` header where the
platform sends it (Cloud Run functions, Cloud Functions); plain Cloud Run
services do not, so it falls back to the trace id, then to a generated id, and
the record's ``http.id_source`` says which (``execution``, ``trace``,
``generated``). A CloudEvent's own ``id`` names it.
"""

from __future__ import annotations

import os

from .http import trace_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["note_status", "request_of"]


def request_of(event: Any) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(request id, trace id, the start of the ``http`` field) for a functions-framework
    argument; (None, None, None) for anything else."""
    module = type(event).__module__.partition(".")[0]
    if module in ("flask", "werkzeug"):
        headers = getattr(event, "headers", None)
        if headers is None:
            return None, None, None

        def header(name: str) -> str | None:
            value = headers.get(name)
            return value if isinstance(value, str) else None

        trace = trace_id(header)
        execution = header("function-execution-id")
        method = getattr(event, "method", None)
        http: dict[str, Any] = {"method": method} if isinstance(method, str) else {}
        if execution and len(execution) <= 128 and execution.isprintable():
            http["id_source"] = "execution"
            return execution, trace, http
        http["id_source"] = "trace" if trace else "generated"
        return trace or os.urandom(12).hex(), trace, http
    if module == "azure":  # azure.functions.HttpRequest: the context names the invocation
        given = getattr(event, "headers", None)
        if given is None:
            return None, None, None
        method = getattr(event, "method", None)
        http_fields: dict[str, Any] = {"method": method} if isinstance(method, str) else {}
        found = trace_id(given.get)
        return None, found, http_fields
    if module == "cloudevents":
        get = getattr(event, "get", None)
        identity = get("id") if get is not None else None
        parent = get("traceparent") if get is not None else None
        trace = trace_id(lambda name: parent if name == "traceparent" else None)
        return (identity if isinstance(identity, str) else None), trace, None
    return None, None, None


def note_status(result: Any, http: dict[str, Any]) -> None:
    """The status an HTTP function's return value answers with, as Flask reads it: a
    response's ``status_code``, a ``(body, status[, headers])`` tuple's, else 200; unless
    an app served inside the invocation (Mangum) has said it already."""
    if "status_code" in http:
        return
    status = getattr(result, "status_code", None)
    if isinstance(result, tuple) and len(result) >= 2 and isinstance(result[1], int):
        status = result[1]
    http["status_code"] = status if isinstance(status, int) else 200
