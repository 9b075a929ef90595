"""Stage timing: ``with stage("inference"):`` or ``@stage("inference")``.

Durations accumulate into the current invocation (a stage entered twice adds
up); a stage entered inside another is recorded as ``outer/inner``. Open stages
form a stack per thread or task (a ContextVar), so asyncio tasks that one
handler fans out keep their own nesting while adding to the same invocation.
"""

from __future__ import annotations

import functools

from .context import _scope, _text, fault

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["stage"]

MAX_STAGE_NAME = 64
_KNOWN_LIMIT = 1024
_CO_COROUTINE = 0x80


class stage:
    """Time a stage of the current invocation; a no-op outside one.

    A `stage` object can be kept and reused (``INFER = stage("inference")``),
    shared by threads and tasks, and used as a decorator: each entry is timed on
    its own.
    """

    __slots__ = ("name",)

    name: str

    def __new__(cls, name: str) -> stage:
        # Stages hold no per-entry state, so ``stage("inference")`` written inline
        # in a handler can hand back one shared object instead of a new one per call.
        known = _known.get(name) if name.__class__ is str else None
        if known is not None:
            return known
        if not isinstance(name, str) or not name or "/" in name or len(name) > MAX_STAGE_NAME:
            fault("stage_name", f"stage names are 1-{MAX_STAGE_NAME} characters without '/'")
            name = (name if isinstance(name, str) else _text(name)) or "unnamed"
            name = name.replace("/", "_")[:MAX_STAGE_NAME]
        made = super().__new__(cls)
        made.name = name
        if cls is stage and len(_known) < _KNOWN_LIMIT:
            _known[name] = made
        return made

    def __enter__(self) -> stage:
        parent = _scope.get()
        if parent is None:  # outside an invocation
            return self
        call = parent[1]
        path = self.name if parent[0] is None else f"{parent[2]}/{self.name}"
        if path not in call.stages:
            call.stages[path] = 0
        frame = (self, call, path, call.monotonic(), parent)
        call.open_stages.append(frame)
        _scope.set(frame)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = _scope.get()
        if frame is None or frame[0] is not self:
            if frame is not None:  # entered outside the invocation, or in another context
                fault("stage_context", "a stage was exited where it was not entered")
            return
        _, call, path, start, parent = frame
        elapsed = call.monotonic() - start
        call.stages[path] += elapsed
        running = call.open_stages
        if running[-1] is frame:
            running.pop()
        else:  # tasks of one invocation closing out of order
            running.remove(frame)
        if parent is None or parent[0] is None:
            call.top_level_ns += elapsed
        _scope.set(parent)
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


_known: dict[str, stage] = {}  # valid names seen so far -> their shared object


def _is_coroutine_function(func: object) -> bool:
    """``inspect.iscoroutinefunction`` without importing inspect on the cold path."""
    code = getattr(func, "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)
