"""Generators driven one step at a time, with inferobs's bookkeeping around each step.

A generator's body runs only while its consumer asks for the next item, on
the consumer's thread and in the consumer's context, and may stop forever
between two items. So what inferobs wraps around a generator (a stage's
timing, a streaming handler's record and scope) has to happen around each
step, and finish when the stream does: exhausted, closed by its consumer, or
broken by an exception. The wrappers here delegate everything a consumer can
do (``send``, ``throw``, ``close`` and their async twins) and call two hooks:
``begin()`` before each step and ``end(began, exc, last)`` after it.
"""

from __future__ import annotations

import functools

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator
    from typing import Any, Protocol

    class Steps(Protocol):
        """What is done around each step of one stream."""

        def begin(self) -> Any:
            """Before a step; what it returns is handed to `end`."""

        def end(self, began: Any, exc: BaseException | None, last: bool) -> None:
            """After a step: ``exc`` is what it raised, ``last`` whether the stream ended."""

    # makes the hooks of one call, from that call's arguments
    StepsFactory = Callable[[tuple[Any, ...], dict[str, Any]], Steps | None]

__all__ = ["stepped", "stepped_async"]


def stepped(func: Callable[..., Generator[Any, Any, Any]], hooks: StepsFactory) -> Any:
    """A generator function like ``func`` whose every step runs between the hooks.

    The hooks are made at the first step (when ``func``'s own body would start);
    a factory that returns None ends the stream without running ``func``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        steps = hooks(args, kwargs)
        if steps is None:
            return None
        inner = func(*args, **kwargs)
        resume: Callable[[Any], Any] = inner.send
        value: Any = None
        while True:
            began = steps.begin()
            try:
                item = resume(value)
            except StopIteration as stop:
                steps.end(began, None, True)
                return stop.value
            except BaseException as exc:
                steps.end(began, exc, True)
                raise
            steps.end(began, None, False)
            try:
                value = yield item
            except GeneratorExit:  # the consumer closed the stream early
                began = steps.begin()
                try:
                    inner.close()
                except BaseException as exc:
                    steps.end(began, exc, True)
                    raise
                steps.end(began, None, True)
                raise
            except BaseException as exc:  # thrown in by the consumer: the generator decides
                resume, value = inner.throw, exc
            else:
                resume = inner.send

    return wrapper


def stepped_async(func: Callable[..., AsyncGenerator[Any, Any]], hooks: StepsFactory) -> Any:
    """`stepped` for async generator functions."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        steps = hooks(args, kwargs)
        if steps is None:
            return
        inner = func(*args, **kwargs)
        resume: Callable[[Any], Any] = inner.asend
        value: Any = None
        while True:
            began = steps.begin()
            try:
                item = await resume(value)
            except StopAsyncIteration:
                steps.end(began, None, True)
                return
            except BaseException as exc:
                steps.end(began, exc, True)
                raise
            steps.end(began, None, False)
            try:
                value = yield item
            except GeneratorExit:
                began = steps.begin()
                try:
                    await inner.aclose()
                except BaseException as exc:
                    steps.end(began, exc, True)
                    raise
                steps.end(began, None, True)
                raise
            except BaseException as exc:
                resume, value = inner.athrow, exc
            else:
                resume = inner.asend

    return wrapper
