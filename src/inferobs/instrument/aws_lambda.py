"""``@instrument`` for Lambda-style ``handler(event, context)`` functions.

The wrapper reads the request id from the context and the trace id from
``_X_AMZN_TRACE_ID``, arms the deadline watchdog from
``context.get_remaining_time_in_millis()``, and leaves everything else to the
`Recorder`. The handler's own result and exceptions pass through untouched:
the same object is returned or re-raised, traceback included.
"""

from __future__ import annotations

import functools
import os
from types import CoroutineType  # loaded already: functools imports types

from ..callables import kind_of, takes_self
from ..context import _in_flight, _scope, fault
from ..lifecycle import Recorder, leave
from ..runtime import Runtime, default_runtime
from .labels import check_labels

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from contextvars import Token
    from typing import Any, TypeVar, overload

    from ..context import Call, Frame

    F = TypeVar("F", bound=Callable[..., Any])
else:

    def overload(func):  # typing.overload's whole runtime job, without importing typing
        return func


__all__ = ["instrument"]


@overload
def instrument(
    handler: F,
    *,
    model: str | None = None,
    model_version: str | None = None,
    variant: str | None = None,
    runtime: Runtime | None = None,
    skip_warmups: bool = False,
) -> F: ...


@overload
def instrument(  # noqa: F811  (ruff does not see through the overload shim)
    handler: None = None,
    *,
    model: str | None = None,
    model_version: str | None = None,
    variant: str | None = None,
    runtime: Runtime | None = None,
    skip_warmups: bool = False,
) -> Callable[[F], F]: ...


def instrument(  # noqa: F811
    handler: F | None = None,
    *,
    model: str | None = None,
    model_version: str | None = None,
    variant: str | None = None,
    runtime: Runtime | None = None,
    skip_warmups: bool = False,
) -> F | Callable[[F], F]:
    """Record every invocation of a Lambda-style handler.

    Use it bare (``@instrument``), with options (``@instrument(model="m")``) or
    as a call (``instrument(handler)``). The wrapper keeps the handler's name,
    docstring and signature. ``runtime`` gives a handler its own execution
    environment (tests, the demo); by default the process's own is used.

    Keep-warm pings (``{"source": "serverless-plugin-warmup"}`` or
    ``{"inferobs": "warmup"}``) are recorded as ``kind: warmup``; with
    ``skip_warmups=True`` they are answered with ``{"warmup": true}`` without
    running the handler.

    An ``async def`` handler stays awaitable, except under the Lambda runtime,
    which calls handlers synchronously: there the wrapper runs the coroutine to
    completion on one event loop kept for the process's life, so clients bound
    to that loop survive between invocations.
    """

    check_labels("instrument", model, model_version, variant)

    def decorate(func: F) -> F:
        if isinstance(func, (staticmethod, classmethod)):  # decorated above @instrument
            return type(func)(decorate(func.__func__))  # type: ignore[arg-type]
        if not callable(func):
            raise TypeError(f"instrument() takes a handler function, not {type(func).__name__}")
        if isinstance(func, type):  # a model server's handler class (Hugging Face, cog)
            from .model_servers import instrument_class

            chosen = runtime or default_runtime()
            options = {"model": model, "model_version": model_version, "variant": variant}
            method = functools.partial(instrument, runtime=chosen, **options)
            return instrument_class(func, method, chosen)
        recorder = Recorder(
            runtime or default_runtime(), model=model, model_version=model_version, variant=variant
        )
        first = 1 if takes_self(func) else 0  # a method: the event comes after self
        kind = kind_of(func)
        if kind == "coroutine":
            wrapped = _async_wrapper(func, recorder, skip_warmups, first)
            if recorder.runtime.platform == "aws_lambda":
                return _run_on_loop(wrapped, recorder.runtime)  # type: ignore[return-value]
            return wrapped  # type: ignore[return-value]
        if kind != "sync":  # a stream: recorded from its first step until it ends
            steps = functools.partial(_stream_steps, recorder, skip_warmups, first)
            from ..streams import stepped, stepped_async  # only streams pay for it

            wrap = stepped if kind == "generator" else stepped_async
            return wrap(func, steps)  # type: ignore[no-any-return]
        return _sync_wrapper(func, recorder, skip_warmups, first)  # type: ignore[return-value]

    if handler is None:
        return decorate
    return decorate(handler)


def _begin(
    recorder: Recorder,
    skip_warmups: bool,
    first: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Call | None, bool]:
    """Read the Lambda request from the call's arguments and open its record.

    ``first`` is where the handler's own arguments start (1 after a method's
    ``self``). Returns (the open invocation, or None when not recording;
    whether the call is a warm-up ping to answer without running the handler).
    """
    request_id = trace_id = left = event = context = None
    warmup = False
    try:
        event = args[first] if len(args) > first else kwargs.get("event")
        warmup = _is_warmup(event)
        context = args[first + 1] if len(args) > first + 1 else kwargs.get("context")
        trace_id = _trace_id(os.environ.get("_X_AMZN_TRACE_ID"))
        if context is not None:
            remaining = getattr(context, "get_remaining_time_in_millis", None)
            if remaining is not None:
                try:
                    left = int(remaining())
                except Exception:  # a test double without a real deadline
                    left = None
            given = getattr(context, "aws_request_id", None)
            if given is None:  # Azure Functions' context
                given = getattr(context, "invocation_id", None)
            request_id = given if isinstance(given, str) else None
    except Exception as exc:  # a context whose attributes raise: record without it
        fault("context", "the handler's context could not be read", exc)
    http = None
    if event is not None and event.__class__ is not dict:
        # functions-framework's flask.Request or CloudEvent, Azure's HttpRequest
        from .function_requests import request_of  # only off Lambda's usual path

        found_id, found_trace, http = request_of(event)
        request_id = request_id or found_id
        trace_id = trace_id or found_trace
    call = recorder.open(request_id, trace_id, left, warmup)
    if call is not None:
        if http is None:
            call.adoptable = True  # a Lambda event: may serve one HTTP request in-process
        else:
            call.http = http
    if warmup and skip_warmups:
        if call is not None:
            recorder.close(call, None)
        return None, True
    return call, False


WARMUP_SOURCES = ("serverless-plugin-warmup",)


def _is_warmup(event: object) -> bool:
    """A scheduled keep-warm ping: serverless-plugin-warmup's or inferobs's own shape.

    serverless-plugin-warmup sends ``{"source": "serverless-plugin-warmup"}``;
    any other scheduler can send ``{"inferobs": "warmup"}``.
    """
    return event.__class__ is dict and (
        event.get("inferobs") == "warmup" or event.get("source") in WARMUP_SOURCES
    )


def _trace_id(header: str | None) -> str | None:
    """The ``Root=`` part of an X-Ray trace header, e.g. ``1-5759e988-bd862e3f...``."""
    if not header:
        return None
    start = header.find("Root=")
    if start < 0:
        return None
    end = header.find(";", start)
    return header[start + 5 : end if end >= 0 else None] or None


def _sync_wrapper(
    func: Callable[..., Any], recorder: Recorder, skip_warmups: bool, first: int
) -> Callable[..., Any]:
    @functools.wraps(func)
    def handler(*args: Any, **kwargs: Any) -> Any:
        call, answered = _begin(recorder, skip_warmups, first, args, kwargs)
        if answered:
            return {"warmup": True}
        if call is None:
            return func(*args, **kwargs)
        token = _scope.set(call.root())
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            recorder.close(call, exc, token)
            raise
        if result.__class__ is CoroutineType:  # async code behind a plain wrapper: wait for it
            leave(token)
            return _awaited(result, recorder, call)
        if call.http is not None:  # an HTTP function's answer: its status
            from .function_requests import note_status

            note_status(result, call.http)
        recorder.close(call, None, token)
        return result

    return handler


def _awaited(coroutine: Any, recorder: Recorder, call: Call) -> Any:
    """The coroutine a plain callable returned, recorded when it finishes, not when returned.

    Under the Lambda runtime, which never awaits, it runs to completion on the
    environment's loop, as an ``async def`` handler does.
    """

    async def recorded() -> Any:
        token = _scope.set(call.root())
        try:
            result = await coroutine
        except BaseException as exc:
            recorder.close(call, exc, token)
            raise
        recorder.close(call, None, token)
        return result

    if recorder.runtime.platform == "aws_lambda":
        return _loop(recorder.runtime).run_until_complete(recorded())
    return recorded()


def _async_wrapper(
    func: Callable[..., Any], recorder: Recorder, skip_warmups: bool, first: int
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def handler(*args: Any, **kwargs: Any) -> Any:
        call, answered = _begin(recorder, skip_warmups, first, args, kwargs)
        if answered:
            return {"warmup": True}
        if call is None:
            return await func(*args, **kwargs)
        token = _scope.set(call.root())
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            recorder.close(call, exc, token)
            raise
        recorder.close(call, None, token)
        return result

    return handler


class _StreamSteps:
    """A streaming handler's record: written when the stream ends, however it ends.

    Each step runs in the invocation's scope, picking up where the previous
    one left it, so stages the handler holds open across its yields stay open.
    """

    __slots__ = ("call", "inside", "outer", "recorder")

    def __init__(self, recorder: Recorder, call: Call) -> None:
        self.recorder = recorder
        self.call = call
        self.inside: Frame | None = call.root()
        self.outer = _in_flight.get(call)

    def begin(self) -> Token[Frame | None]:
        _in_flight[self.call] = self.outer  # at work again
        return _scope.set(self.inside)

    def end(self, began: Token[Frame | None], exc: BaseException | None, last: bool) -> None:
        self.inside = leave(began)
        if last:  # a stream closed early by its consumer ended fine
            self.recorder.close(self.call, exc)
        else:  # parked until its consumer asks for more: not what other threads work for
            _in_flight.pop(self.call, None)


class _Unrecorded:
    """The steps of a stream that is not recorded (recording off, or it could not start)."""

    __slots__ = ()

    def begin(self) -> None:
        return None

    def end(self, began: None, exc: BaseException | None, last: bool) -> None:
        pass


_UNRECORDED = _Unrecorded()


def _stream_steps(
    recorder: Recorder,
    skip_warmups: bool,
    first: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> _StreamSteps | _Unrecorded | None:
    """At a stream's first step: its steps, or None for a warm-up answered with nothing."""
    call, answered = _begin(recorder, skip_warmups, first, args, kwargs)
    if answered:
        return None
    return _UNRECORDED if call is None else _StreamSteps(recorder, call)


def _run_on_loop(func: Callable[..., Any], runtime: Runtime) -> Callable[..., Any]:
    @functools.wraps(func)
    def handler(*args: Any, **kwargs: Any) -> Any:
        return _loop(runtime).run_until_complete(func(*args, **kwargs))

    return handler


def _loop(runtime: Runtime) -> asyncio.AbstractEventLoop:
    """The event loop kept for the environment's life, made on first use."""
    import asyncio

    return runtime.event_loop(asyncio.new_event_loop)  # type: ignore[return-value]
