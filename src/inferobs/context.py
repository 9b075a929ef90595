"""The invocation in flight, kept per thread and per asyncio task.

A ContextVar holds the current `Call`, so concurrent invocations on threads or
asyncio tasks never see each other's stages, tags or input. The functions here
are the ones a handler calls while it runs; outside an instrumented handler
they do nothing, so shared code can call them unconditionally.

Problems inferobs meets while recording (`fault`) are counted against the call
in flight, too: they never raise, each kind is described once per process on
stderr as a JSON line (``event: inferobs.fault``), and the record of the
invocation it happened in counts them (``sdk_faults``), so they surface as a
metric instead of hiding a broken setup.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from math import isfinite

from .shape import summarize

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .config import Settings
    from .drift.monitor import Monitor
    from .runtime import Runtime
    from .stages import stage

    # The innermost open scope of a thread or task: (stage, call, path, start ns,
    # enclosing frame); the invocation itself is the root, with no stage. A tuple,
    # because one is made per stage entry on the per-invocation path.
    Frame = tuple[stage | None, "Call", str, int, "Frame | None"]

__all__ = [
    "MAX_TAGS",
    "Call",
    "fault",
    "faults_seen",
    "observe_features",
    "observe_input",
    "observe_prediction",
    "set_model",
    "tag",
]

MAX_TAGS = 16
MAX_TAG_KEY = 64
MAX_TAG_TEXT = 256


class Call:
    """What is known about one invocation while it runs.

    Stage durations are in nanoseconds on the runtime clock. ``open_stages``
    holds the frames of the stage entries still open, most recent last, so the
    timeout watchdog, on another thread, can tell which stages were running
    when the deadline came.
    """

    __slots__ = (
        "adoptable",
        "armed",
        "closed",
        "cold_start",
        "deadline",
        "detailed",
        "drift_observations",
        "drift_windows",
        "error_exc",
        "error_stage",
        "faults",
        "http",
        "init_ms",
        "input",
        "kind",
        "model",
        "model_version",
        "monotonic",
        "open_stages",
        "request_id",
        "runtime",
        "sample_rate",
        "settings",
        "stage_starts",
        "stages",
        "start_mono",
        "start_wall",
        "tags",
        "top_level_ns",
        "trace_id",
        "variant",
    )

    def __init__(
        self,
        runtime: Runtime,
        settings: Settings,
        *,
        request_id: str | None,
        trace_id: str | None,
        model: str | None,
        model_version: str | None,
        variant: str | None,
        warmup: bool = False,
    ) -> None:
        clock = runtime.clock
        self.runtime = runtime
        self.settings = settings
        self.monotonic: Callable[[], int] = clock.monotonic_ns
        self.start_wall = clock.wall_ns()
        self.start_mono = self.monotonic()
        self.request_id = request_id
        self.trace_id = trace_id
        self.model = model
        self.model_version = model_version
        self.variant = variant
        self.cold_start, self.init_ms = runtime.claim(self.start_mono, settings.proactive_init_s)
        self.kind = "invocation"
        if warmup:  # a keep-warm ping is nobody's request: it never waits as a user
            self.kind, self.cold_start = "warmup", False
        rate = settings.sample_rate
        # cold starts are rare and the most asked-about: always keep their detail
        if rate >= 1.0 or self.cold_start:
            self.sample_rate, self.detailed = 1.0, True
        else:
            self.sample_rate, self.detailed = rate, _random() < rate
        self.stages: dict[str, int] = {}
        self.stage_starts: dict[str, int] = {}  # first entry, ns after the start: for traces
        self.top_level_ns = 0  # time in top-level stages, for unstaged_ms
        self.open_stages: list[Frame] = []
        self.tags: dict[str, Any] = {}
        self.input: dict[str, Any] | None = None
        self.http: dict[str, Any] | None = None  # an HTTP surface's request and response
        # a Lambda invocation whose handler may serve one HTTP request in-process (Mangum,
        # serverless-wsgi): that request fills this record rather than writing its own
        self.adoptable = False
        self.error_exc: BaseException | None = None
        self.error_stage: str | None = None
        self.faults = 0
        self.drift_observations = 0  # predictions and feature rows counted for drift
        self.drift_windows: Any = None  # its model arm's drift windows, once it has counted
        self.deadline: float | None = None  # the platform's, time.monotonic() seconds
        self.armed = False  # a timeout watchdog holds it
        self.closed = False  # its record is written: later stage time is nobody's

    def root(self) -> Frame:
        """The scope the handler's own code runs in, where no stage is open.

        Made on demand, not kept: a call holding a frame that holds the call
        would be a reference cycle, left for the garbage collector every time.
        """
        return (None, self, "", self.start_mono, None)


# One variable for "what is running here": the invocation's root frame or the
# innermost stage inside it. Asyncio tasks copy it, threads start without it, so
# each gets its own nesting while sharing the invocation.
_scope: ContextVar[Frame | None] = ContextVar("inferobs_scope", default=None)

# Every invocation at work, process-wide, and the invocation it runs inside
# (None for most). A thread the handler starts begins with an empty context;
# while exactly one invocation is in flight (Lambda's default) the stages it
# enters can only belong to that one. A stream parked between items is not at
# work, and is not listed until it is asked for the next.
_in_flight: dict[Call, Call | None] = {}


_reported: dict[str, int] = {}


def fault(kind: str, message: str, exc: BaseException | None = None) -> None:
    """Count a problem of ``kind``; describe it on stderr the first time only.

    Only the exception's type is written, never its message, which may hold
    values from the user's data.
    """
    frame = _scope.get()
    if frame is not None:
        frame[1].faults += 1
    seen = _reported.get(kind, 0)
    _reported[kind] = seen + 1
    if seen:
        return
    detail = {"event": "inferobs.fault", "kind": kind, "message": message}
    if exc is not None:
        detail["exception"] = type(exc).__name__
    try:
        import json  # fails during interpreter shutdown, when a generator's finaliser may run

        sys.stderr.write(json.dumps(detail) + "\n")
    except Exception:  # stderr closed or broken, or no imports left: nothing more we can say
        pass


def _current() -> Call | None:
    """The invocation that code running here works for, or None outside any.

    Its own scope says so. Code with no scope at all (a thread the handler
    started) works for the invocation in flight, where that is known; code whose
    scope is an invocation already recorded (a task or thread that outlived
    its handler) works for nobody, and is counted as late.
    """
    frame = _scope.get()
    if frame is None:
        return _lone_call()
    if frame[1].closed:
        _late()
        return None
    return frame[1]


def _late() -> None:
    fault("late", "work that outlived its invocation (a stage, a tag) was not recorded")


def _lone_call() -> Call | None:
    """The invocation in flight; None when there is none, or several (a fault).

    Several calls are one where they nest (an instrumented router calling an
    instrumented handler): the innermost is the one at work.
    """
    count = len(_in_flight)
    if count == 1:
        try:
            return next(iter(_in_flight))
        except (StopIteration, RuntimeError):  # it closed meanwhile
            return None
    if not count:
        return None
    calls = list(_in_flight.items())
    outers = {outer for _, outer in calls}
    innermost = [call for call, _ in calls if call not in outers]
    if len(innermost) == 1:
        return innermost[0]
    fault(
        "thread_context",
        f"code with no invocation context ran while {len(innermost)} invocations were in "
        "flight, so it was not recorded; run it with contextvars.copy_context().run "
        "(asyncio.to_thread does) to carry the invocation into the thread",
    )
    return None


def faults_seen() -> dict[str, int]:
    """How many times each kind of problem happened in this process."""
    return dict(_reported)


def _random() -> float:
    # random costs an import (hashlib and friends); only sampled setups pay for it
    import random

    return random.random()


def tag(**tags: object) -> None:
    """Attach key/values to the current invocation's record.

    At most 16 tags per invocation, keys up to 64 characters. Booleans and
    numbers are kept (but NaN, infinity and integers beyond 64 bits become
    text), strings are cut to 256 characters, anything else becomes its text.
    Tags are yours to choose: unlike inputs, they are written as given.
    """
    call = _current()
    if call is None:
        return
    held = call.tags
    for given, value in tags.items():
        key = given[:MAX_TAG_KEY]
        if key not in held and len(held) >= MAX_TAGS:
            fault("tag_limit", f"a tag was dropped: at most {MAX_TAGS} per invocation")
            continue
        if len(given) > MAX_TAG_KEY:
            fault("tag_key", f"tag key longer than {MAX_TAG_KEY} characters was cut")
        if value is None or value is True or value is False or _plain_number(value):
            held[key] = value
        else:  # text, and what JSON numbers cannot carry well (NaN, 10**400)
            held[key] = (value if isinstance(value, str) else _text(value))[:MAX_TAG_TEXT]


def _plain_number(value: object) -> bool:
    if value.__class__ is int:
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and isfinite(value)


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception as exc:
        fault("tag_value", "a tag value could not be turned into text", exc)
        return f"<{type(value).__name__}>"


def set_model(
    *, name: str | None = None, version: str | None = None, variant: str | None = None
) -> None:
    """Name the model, its version or the deployment variant for this invocation.

    Overrides what `instrument` was given, for handlers that route between
    versions or run a shadow model.
    """
    call = _current()
    if call is None:
        return
    for field, given in (("model", name), ("model_version", version), ("variant", variant)):
        if given is None:
            continue
        text = given
        if not isinstance(given, str):
            fault("set_model", f"set_model {field} must be a string; got {type(given).__name__}")
            text = _text(given)
        setattr(call, field, text[:MAX_TAG_TEXT])
        call.drift_windows = None  # another arm: what comes next counts into its windows


def observe_input(value: object) -> None:
    """Summarise the model's input for this invocation: shape, dtype, sizes, never values.

    Call it once with what the model receives; a later call replaces the
    summary. Skipped on invocations whose detail is sampled out.
    """
    call = _current()
    if call is None or not call.detailed:
        return
    try:
        settings = call.settings
        call.input = summarize(
            value, settings.input_max_depth, settings.input_max_items, settings.input_keys
        )
    except Exception as exc:  # a hostile object: record that we could not look
        fault("observe_input", "the input could not be summarised", exc)
        call.input = {"kind": type(value).__name__, "unreadable": True}


class _Drift:
    """The process's drift monitor for the settings in force, made on first need.

    Its module (and the baseline file) load only when a baseline is
    configured; a baseline that cannot be loaded is a fault once per settings,
    not one per call.
    """

    __slots__ = ("monitor", "settings")

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.monitor: Monitor | None = None

    def get(self, settings: Settings) -> Monitor | None:
        if settings is self.settings:
            return self.monitor
        old, self.monitor, self.settings = self.monitor, None, settings
        if old is not None:
            old.flush()  # the windows counted under the settings replaced
        if settings.baseline is None:
            return None
        try:
            from .drift.monitor import Monitor
            from .lifecycle import _export_windows

            self.monitor = Monitor(settings, _export_windows)
        except Exception as exc:
            reason = str(exc) if type(exc).__name__ == "BaselineError" else type(exc).__name__
            fault("drift_baseline", f"drift counting is off: {reason}")
        return self.monitor


drift = _Drift()


def observe_prediction(prediction: object) -> None:
    """Count the model's prediction (or a batch of them) into the drift baseline's bins.

    The baseline says what one prediction is: a number, a label or a
    probability vector, so a 1-D array against a numeric baseline is a batch
    of numbers and a 2-D array against a class-probability baseline is a batch
    of vectors. Does nothing outside an instrumented handler or without a
    baseline (``configure(baseline=...)``); never raises.
    """
    call = _current()
    if call is None:
        return
    try:
        monitor = drift.get(call.settings)
        if monitor is not None:
            monitor.observe_prediction(call, prediction)
    except Exception as exc:
        fault("observe_prediction", "a prediction could not be counted for drift", exc)


def observe_features(features: object) -> None:
    """Count the model's input features into the drift baseline's bins.

    A dict, a pandas row or a 1-D array in the baseline's feature order is one
    row; a DataFrame, a 2-D array or a list of rows is a batch, and every row
    counts. Missing, non-finite, unreadable and unseen values are counted in
    buckets of their own. Does nothing outside an instrumented handler or
    without a baseline; never raises.
    """
    call = _current()
    if call is None:
        return
    try:
        monitor = drift.get(call.settings)
        if monitor is not None:
            monitor.observe_features(call, features)
    except Exception as exc:
        fault("observe_features", "features could not be counted for drift", exc)
