"""One process's drift counting: the baseline in force, a window set per model arm, and
the closed windows handed to the exporters.

`inferobs.observe_prediction` and `inferobs.observe_features` count into the
`Monitor` of the settings in force; each invocation's close takes the windows
that have closed since (all of them, open ones too, with
``drift_every_invocation``) and gives them to every exporter that has
``export_window``. A model arm (model, model version, variant) counts into a
window set of its own, so A/B arms are compared with the baseline each, never
pooled.

An environment reclaimed while idle takes its open window with it; the
invocation records say how many observations each made
(``drift_observations``), so the analyzer reports what share reached it. A
normal exit and SIGTERM (Lambda sends it before shutdown when an extension is
registered; containers get it before they stop) flush the open windows. A
forked child starts with no windows (the parent's stay the parent's), and a
multiprocessing worker, which may end without exit hooks, sends its counts
after every invocation.

Each window record carries a ``window_id`` unique to that emission, so a
window found in two sources (the store and a saved log) counts once, while
two windows that only look alike (two replicas whose processes share a pid,
parts of one window in rotated log files) both count.
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import threading
from _thread import allocate_lock

from .baseline import Baseline, Categorical, ClassScores, Numeric
from .counting import DriftWindows
from .statistics import EMPTY_BIN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..config import Settings
    from ..context import Call
    from ..runtime import Runtime

__all__ = ["Monitor", "instance_psi"]

# the windows of one environment (its runtime) for one model arm
Arm = tuple["Runtime", str | None, str | None, str | None]


class Monitor:
    """The drift windows of one process, for one baseline and window length."""

    def __init__(
        self, settings: Settings, emit: Callable[[list[dict[str, Any]], Settings], None]
    ) -> None:
        assert settings.baseline is not None
        self.settings = settings
        self.baseline = Baseline.load(settings.baseline)
        self.every = settings.drift_every_invocation
        self._emit = emit
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._in_child)
        _install_hooks()

    def _reset(self) -> None:
        self._arms: dict[Arm, DriftWindows] = {}
        self._lock = allocate_lock()  # a window closes once, whichever thread sees it go
        self._due = 0.0  # no open window ends before this (seconds): until then, nothing to do
        self._token = os.urandom(6).hex()  # this process's windows' ids
        self._sent = 0
        self._forked = False

    def _in_child(self) -> None:
        """A forked child: no windows of its own yet, and perhaps no exit hooks to come
        (known once it runs: multiprocessing says so after the fork)."""
        self._reset()
        self._forked = True

    def _windows(self, call: Call) -> DriftWindows:
        """The call's model arm's windows: looked up once per call, kept on the call.

        Called under the lock. An arm dropped since (idle, or flushed with
        the settings it counted under) is retired, and the call looks again.
        """
        windows: DriftWindows | None = call.drift_windows
        if windows is not None and not windows.retired:
            return windows
        arm = (call.runtime, call.model, call.model_version, call.variant)
        windows = self._arms.get(arm)
        if windows is None:
            wall_ns = call.runtime.clock.wall_ns  # the records' clock: windows match their starts
            windows = DriftWindows(
                self.baseline, self.settings.drift_window, clock=lambda: wall_ns() / 1e9
            )
            self._arms[arm] = windows
        call.drift_windows = windows
        return windows

    def discard(self, runtime: Runtime) -> int:
        """Drop an environment's open windows, as reclaiming an idle one does; how many
        observations went with them (the demo simulates environments this way)."""
        lost = 0
        with self._lock:
            for arm in [arm for arm in self._arms if arm[0] is runtime]:
                windows = self._arms.pop(arm)
                windows.retired = True
                lost += sum(w["observations"] for w in windows.take_closed(flush=True))
        return lost

    # An invocation counts into the window its start falls in, as the analyzer
    # places its record: one clock read per invocation, none per observation.

    def observe_prediction(self, call: Call, prediction: Any) -> None:
        with self._lock:
            counted = self._windows(call).observe_prediction(prediction, call.start_wall / 1e9)
        call.drift_observations += counted

    def observe_features(self, call: Call, features: Any) -> None:
        with self._lock:
            counted = self._windows(call).observe_features(features, call.start_wall / 1e9)
        call.drift_observations += counted

    def closed(
        self, *, flush: bool = False, now_s: float | None = None, wait_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Windows closed since the last call (and the open ones, with ``flush``) as records.

        ``now_s`` is the caller's clock: before the next window boundary after
        the last look no window can have closed, so most invocations return at once.
        With ``wait_s``, nothing is returned rather than waiting longer for
        another thread's counting (the timeout watchdog cannot wait).
        """
        if self._forked:
            from ..runtime import ends_without_exit_hooks

            self._forked = False
            self.every = self.every or ends_without_exit_hooks()
        flush = flush or self.every
        if not flush and now_s is not None and now_s < self._due:
            return []
        out: list[dict[str, Any]] = []
        if wait_s is not None and not self._lock.acquire(timeout=wait_s):
            return out
        if wait_s is None:
            self._lock.acquire()
        try:
            for arm, windows in list(self._arms.items()):
                for window in windows.take_closed(flush=flush):
                    out.append(self._record(arm, window))
                if windows.idle:  # an arm seen once holds nothing: memory stays bounded
                    del self._arms[arm]
                    windows.retired = True
            if now_s is not None:
                step = self.settings.drift_window
                self._due = (now_s // step + 1) * step
        finally:
            self._lock.release()
        return out

    def flush(self) -> None:
        """Hand every window, the open ones too, to the exporters (at exit, on SIGTERM)."""
        windows = self.closed(flush=True)
        if windows:
            self._emit(windows, self.settings)

    def _record(self, arm: Arm, window: dict[str, Any]) -> dict[str, Any]:
        runtime = arm[0]
        fields = {
            "event": window.pop("event"),
            "schema": window.pop("schema"),
            "function": runtime.function or self.settings.service,
            "model": arm[1],
            "model_version": arm[2],
            "variant": arm[3],
            "instance_id": runtime.instance_id,
            "window_id": f"{self._token}-{self._sent}",
        }
        self._sent += 1
        record = {key: value for key, value in fields.items() if value is not None}
        record.update(window)
        record["instance_psi"] = instance_psi(self.baseline, window)
        return record


def instance_psi(baseline: Baseline, window: dict[str, Any]) -> dict[str, float]:
    """PSI of each column in one instance's window: a local signal, for alarms on the metric.

    Only the analyzer, merging every instance's windows, judges drift; this is
    what one instance saw, so few observations make it noisy. Same floor for
    empty bins as `inferobs.drift.statistics.psi`.
    """
    out = {}
    name, spec = baseline.prediction
    columns: list[tuple[str, Any, Any]] = [(name, spec, window["prediction"][name])]
    columns += [(key, baseline.features[key], window["features"][key]) for key in baseline.features]
    for column, column_spec, column_counts in columns:
        if isinstance(column_spec, ClassScores):
            value = _psi(column_spec.label, column_counts["label"])
        else:
            value = _psi(column_spec, column_counts)
        if value is not None:
            out[column] = round(value, 6)
    return out


def _psi(spec: Numeric | Categorical, counts: list[int]) -> float | None:
    binned = counts[:-2] if isinstance(spec, Numeric) else counts[:-1]
    total = sum(binned)
    if not total:
        return None
    p = [max(share, EMPTY_BIN) for share in spec.proportions]
    q = [max(c / total, EMPTY_BIN) for c in binned]
    p_sum, q_sum = sum(p), sum(q)
    return sum(
        (b / q_sum - a / p_sum) * math.log((b / q_sum) / (a / p_sum))
        for a, b in zip(p, q, strict=True)
    )


_hooks: list[bool] = []  # installed once per process
# how long SIGTERM waits for the flush: Lambda gives an extension's process 300 to
# 500 ms after SIGTERM, a container its grace period (often 10 s)
SIGTERM_FLUSH_S = 0.25


def _install_hooks() -> None:
    """Flush the open windows at a normal exit and on SIGTERM, once per process."""
    if _hooks:
        return
    _hooks.append(True)
    atexit.register(_flush_current)
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        # a framework (uvicorn, gunicorn) or the user may handle SIGTERM: theirs
        # stays, and their orderly shutdown reaches the exit flush
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            return
    except (AttributeError, ValueError):  # no SIGTERM here
        return

    def on_sigterm(signum: int, frame: object) -> None:
        """Flush, then end as SIGTERM would have (its default skips atexit).

        The flush runs on a thread of its own, given a moment: the signal may
        have interrupted this thread inside a lock the flush needs (counting,
        writing a line), and a process told to stop must stop, not wait on it.
        """
        try:
            flushing = threading.Thread(target=_flush_all, name="inferobs-sigterm", daemon=True)
            flushing.start()
            flushing.join(SIGTERM_FLUSH_S)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def _flush_all() -> None:
    _flush_current()
    _flush_exporters()
    from ..lifecycle import flush_network_at_exit

    flush_network_at_exit(SIGTERM_FLUSH_S)


def _flush_current() -> None:
    from ..context import drift, fault

    monitor = drift.monitor
    if monitor is not None:
        try:
            monitor.flush()
        except Exception as exc:
            fault("drift_window", "open drift windows could not be flushed", exc)


def _flush_exporters() -> None:
    """Write what exporters hold (the store batches records) before the process ends;
    the network exporters are given what is left of the SIGTERM budget next."""
    from ..config import current
    from ..lifecycle import _exporters

    for exporter in _exporters.get(current()):
        flush = getattr(exporter, "flush", None)
        if callable(flush) and not callable(getattr(exporter, "flush_by", None)):
            flush()
