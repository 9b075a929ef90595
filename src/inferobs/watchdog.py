"""The deadline watchdog: a record for invocations the platform is about to kill.

When Lambda's deadline passes, the process is stopped mid-handler and the
normal record would never be written. One daemon thread per process wakes a
little before each armed deadline and hands the still-running invocation to a
callback that writes a ``timeout`` record; whoever takes the invocation first
(the handler finishing or the watchdog firing) owns the one line for it, and a
handler that finishes while the watchdog is still writing waits for the line,
so it exists before the handler returns.

Arming costs a dict insert under a lock. The thread is woken (notified) only
when a new deadline is earlier than its next planned wake-up, which it keeps
at most one second away, so steady traffic never pays for a thread switch.
"""

from __future__ import annotations

import os
import threading
import time
from _thread import start_new_thread

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Watchdog"]

_IDLE_WAKE_S = 1.0


class Watchdog:
    """Fires ``on_expire(item)`` for armed items whose deadline passes.

    Deadlines are ``time.monotonic()`` seconds: real time, whatever clock the
    records themselves are timed with.
    """

    def __init__(self, on_expire: Callable[[object], None]) -> None:
        self._on_expire = on_expire
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has the state but not the thread
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()  # taken directly on the hot path: C-level enter/exit
        self._cond = threading.Condition(self._lock)
        self._armed: dict[object, float] = {}
        self._firing: dict[object, threading.Event] = {}
        self._wake_at = 0.0
        self._started = False

    def start(self) -> None:
        """Start the thread, if it is not running yet."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if not self._started:
            # the low-level start: threading.Thread.start waits for the new
            # thread to run, which can cost milliseconds of a cold start
            start_new_thread(self._run, ())
            self._started = True

    def arm(self, item: object, deadline: float) -> None:
        with self._lock:
            self._armed[item] = deadline
            if not self._started:
                self._start()
            elif deadline < self._wake_at:
                self._cond.notify()

    def disarm(self, item: object) -> threading.Event | None:
        """Take ``item`` back: None if it was still armed (the caller owns it now).

        Otherwise the watchdog fired for it, and the returned event is set once
        ``on_expire`` has finished with it.
        """
        with self._lock:
            if self._armed.pop(item, None) is not None:
                return None
            return self._firing.get(item, _DONE)

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                now = time.monotonic()
                due = [item for item, at in self._armed.items() if at <= now]
                for item in due:
                    del self._armed[item]
                    self._firing[item] = threading.Event()
                if not due:
                    nearest = min(self._armed.values(), default=now + _IDLE_WAKE_S)
                    self._wake_at = min(nearest, now + _IDLE_WAKE_S)
                    cond.wait(self._wake_at - now)
                    continue
            for item in due:
                try:
                    self._on_expire(item)
                finally:
                    with self._lock:
                        self._firing.pop(item).set()


_DONE = threading.Event()
_DONE.set()
