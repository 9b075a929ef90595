"""Stage timing: ``with stage("inference"):`` or ``@stage("inference")``.

Durations accumulate into the current invocation (a stage entered twice adds
up); a stage entered inside another is recorded as ``outer/inner``. Open stages
form a stack per thread or task (a ContextVar), so asyncio tasks that one
handler fans out keep their own nesting while adding to the same invocation.
"""

from __future__ import annotations

import functools

from .callables import kind_of
from .context import _late, _lone_call, _scope, _text, fault

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from types import TracebackType
    from typing import Any, TypeVar

    from .context import Frame

    F = TypeVar("F", bound=Callable[..., Any])
    # what a generator stage's step hands to its end: the scope token and the start
    Step = tuple[Token[Frame | None], int]

__all__ = ["stage"]

MAX_STAGE_NAME = 64
_KNOWN_LIMIT = 1024


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
        if parent is not None and not parent[1].closed:  # the usual case, inline: it is hot
            call = parent[1]
            path = self.name if parent[0] is None else f"{parent[2]}/{self.name}"
            now = call.monotonic()
            if path not in call.stages:
                call.stages[path] = 0
                call.stage_starts[path] = now - call.start_mono
            frame: Frame = (self, call, path, now, parent)
        else:
            adopted = self._attach()
            if adopted is None:
                return self
            frame, call = adopted, adopted[1]
        call.open_stages.append(frame)
        _scope.set(frame)
        return self

    def _attach(self) -> Frame | None:
        """A frame for one entry of this stage, starting now; None outside any invocation.

        Inside an invocation's scope the stage nests under what is open there.
        Without any scope (a thread the handler started) it belongs to the
        invocation in flight, if that is known, as a top-level stage: the frame
        then has no parent. In the scope of an invocation already recorded (a
        task or thread that outlived its handler) it is late, and not recorded.
        """
        parent = _scope.get()
        if parent is None:
            lone = _lone_call()
            if lone is None:
                return None
            call, path = lone, self.name
        elif parent[1].closed:  # a task or thread that outlived its invocation
            _late()
            return None
        else:
            call = parent[1]
            path = self.name if parent[0] is None else f"{parent[2]}/{self.name}"
        now = call.monotonic()
        if path not in call.stages:
            call.stages[path] = 0
            call.stage_starts[path] = now - call.start_mono
        return (self, call, path, now, parent)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = _scope.get()
        if frame is None or frame[0] is not self:
            if frame is not None and not frame[1].closed:  # entered outside, or elsewhere
                fault("stage_context", "a stage was exited where it was not entered")
            return
        _scope.set(frame[4])
        _close(frame, frame[1].monotonic() - frame[3], exc)

    def __call__(self, func: F) -> F:
        if isinstance(func, (staticmethod, classmethod)):  # decorated above @stage
            return type(func)(self(func.__func__))
        kind = kind_of(func)
        if kind == "coroutine":
            return self._time_coroutine(func)  # type: ignore[return-value]
        if kind in ("generator", "async_generator"):
            from .streams import stepped, stepped_async  # only streams pay for it

            wrap = stepped if kind == "generator" else stepped_async
            return wrap(func, lambda args, kwargs: _StageSteps(self))  # type: ignore[no-any-return]

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return timed  # type: ignore[return-value]

    def _time_coroutine(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            with self:
                return await func(*args, **kwargs)

        return timed_async


def _close(frame: Frame, elapsed: int, exc: BaseException | None) -> None:
    """Credit ``elapsed`` ns of one entry to its stage, and an error to the innermost stage."""
    _, call, path, _, parent = frame
    running = call.open_stages
    try:
        if running[-1] is frame:
            running.pop()
        else:  # threads and tasks of one invocation closing out of order
            running.remove(frame)
    except (IndexError, ValueError):  # not listed: a generator between its steps
        pass
    if call.closed:
        _late()
        return
    call.stages[path] += elapsed
    if parent is None or parent[0] is None:
        call.top_level_ns += elapsed
    if exc is not None and exc is not call.error_exc:
        call.error_exc, call.error_stage = exc, path


class _StageSteps:
    """Times a generator stage step by step: the generator's own work, not its consumer's.

    The stage is attached at the first step, under whatever is open then, and
    each step adds its time; stages the generator opens itself stay open
    across its yields, as they would in straight-line code.
    """

    __slots__ = ("frame", "inside", "stage", "started")

    def __init__(self, stage: stage) -> None:
        self.stage = stage
        self.frame: Frame | None = None
        self.inside: Frame | None = None  # the generator's own scope between steps
        self.started = False

    def begin(self) -> Step | None:
        if self.frame is None:
            if self.started:  # not in an invocation at its first step: never timed
                return None
            self.started = True
            self.frame = self.inside = self.stage._attach()
            if self.frame is None:
                return None
        frame = self.frame
        call = frame[1]
        call.open_stages.append(frame)
        return _scope.set(self.inside), call.monotonic()

    def end(self, began: Step | None, exc: BaseException | None, last: bool) -> None:
        if began is None or self.frame is None:
            return
        token, start = began
        frame = self.frame
        elapsed = frame[1].monotonic() - start
        self.inside = _scope.get()
        _scope.reset(token)
        _close(frame, elapsed, exc)


_known: dict[str, stage] = {}  # valid names seen so far -> their shared object
