"""Stage timing: ``with stage("inference"):`` or ``@stage("inference")``.

Durations accumulate into the current invocation (a stage entered twice adds
up); a stage entered inside another is recorded as ``outer/inner``. The stage
path lives in a ContextVar, so asyncio tasks that one handler fans out keep
their own nesting while adding to the same invocation.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar

from .context import _current, fault

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from types import TracebackType
    from typing import Any, TypeVar

    from .context import Call

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["stage"]

MAX_STAGE_NAME = 64
_CO_COROUTINE = 0x80

_path: ContextVar[str] = ContextVar("inferobs_stage", default="")


class stage:
    """Time a stage of the current invocation; a no-op outside one.

    One object times one stage at a time: as a decorator it makes a fresh
    timer for every call, so decorated functions are safe on any thread.
    """

    __slots__ = ("_call", "_parent", "_start", "_token", "name", "path")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or "/" in name or len(name) > MAX_STAGE_NAME:
            fault("stage_name", f"stage names are 1-{MAX_STAGE_NAME} characters without '/'")
            name = (str(name) or "unnamed").replace("/", "_")[:MAX_STAGE_NAME]
        self.name = name
        self._call: Call | None = None

    def __enter__(self) -> stage:
        call = _current.get()
        self._call = call
        if call is None:
            return self
        parent = self._parent = _path.get()
        path = self.path = f"{parent}/{self.name}" if parent else self.name
        self._token: Token[str] = _path.set(path)
        if path not in call.stages:
            call.stages[path] = 0
        call.running = path
        self._start = call.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call = self._call
        if call is None:
            return
        self._call = None
        path = self.path
        elapsed = call.monotonic() - self._start
        call.stages[path] += elapsed
        call.running = parent = self._parent
        if not parent:
            call.top_level_ns += elapsed
        try:
            _path.reset(self._token)
        except ValueError:  # exited in another context than entered: keep going
            fault("stage_context", "a stage was exited in a different thread or task")
        if exc is not None and exc is not call.error_exc:
            call.error_exc, call.error_stage = exc, path

    def __call__(self, func: F) -> F:
        name = self.name
        if _is_coroutine_function(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with stage(name):
                    return await func(*args, **kwargs)

            return timed_async  # type: ignore[return-value]

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with stage(name):
                return func(*args, **kwargs)

        return timed  # type: ignore[return-value]


def _is_coroutine_function(func: object) -> bool:
    """``inspect.iscoroutinefunction`` without importing inspect on the cold path."""
    code = getattr(func, "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)
