"""Sending to a network backend without ever holding the handler past a deadline.

A serverless process may be frozen the moment its handler returns, so what a
network exporter batched must be sent before then; but a backend that is
down, slow or a black hole must not hold the user's response. `BatchSender`
does the sending on a thread of its own: ``add`` only queues (never blocks),
and ``flush_by`` (called at the end of every invocation with an absolute
deadline) wakes the thread and waits for it at most until the deadline.
What is not sent by then stays queued for the next flush, up to a bounded
buffer; past it the oldest items are dropped and counted, and the count is
the exporter's to report (`take_dropped`). A batch the backend refuses
(an error, throttling) is dropped and counted too: retrying it would only
push newer data out.

When the sender is still busy with a batch from an earlier flush that ran out
of time (a black hole), a flush does not wait at all: one slow backend costs
the handler at most one deadline, not one per invocation. The flush at the
process's exit (`ending`) waits anyway: no handler is held by it, and a
backend that was merely slow gets its last batches.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from ..context import fault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["BatchSender", "ending", "quiet"]

_ending: list[bool] = []  # the process is exiting: flushes wait for a stuck batch too


def quiet(*loggers: str) -> None:
    """Silence a backend library's own logging of failed or retried sends, unless the
    function set those loggers' level itself.

    With its backend down a library logs once per invocation, and each line is
    paid for at ingestion; inferobs reports the failure once (a fault) and
    counts what it could not send (the ``dropped`` metric) instead.
    """
    import logging

    for name in loggers:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)


def ending() -> None:
    """Say the process is exiting, before its last flush."""
    _ending.append(True)


class BatchSender:
    """Sends queued items with ``send(batch)`` on a daemon thread, a batch at a time.

    ``send`` gets at most ``max_batch`` items and raises on failure (the batch
    is then dropped and counted). ``name`` names the exporter in faults.
    """

    def __init__(
        self,
        send: Callable[[list[Any]], None],
        *,
        name: str,
        max_buffered: int = 2048,
        max_batch: int = 512,
    ) -> None:
        self._send = send
        self.name = name
        self.max_buffered = max_buffered
        self.max_batch = max_batch
        self.dropped = 0  # every item dropped since the start
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has the queue but not the thread
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._queue: deque[Any] = deque()
        self._sending = 0  # items taken by the thread and not yet sent or dropped
        self._stuck = False  # the last flush ran out of time while the thread was sending
        self._unreported = 0  # dropped since the last take_dropped
        self._thread: threading.Thread | None = None

    def add(self, item: Any) -> None:
        """Queue one item; the oldest is dropped (and counted) past the buffer's bound."""
        with self._lock:
            self._queue.append(item)
            if len(self._queue) > self.max_buffered:
                self._queue.popleft()
                self._count_dropped(1)

    def extend(self, items: Sequence[Any]) -> None:
        for item in items:
            self.add(item)

    def flush_by(self, deadline: float) -> bool:
        """Have everything queued sent, waiting until ``deadline`` (``time.monotonic()``
        seconds) at most; whether the queue was empty and nothing in flight on return."""
        with self._lock:
            if not self._queue and not self._sending:
                self._stuck = False
                return True
            self._start()
            self._wake.notify()
            if self._stuck and self._sending and not _ending:  # a batch outran a deadline
                return False
            while self._queue or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._stuck = bool(self._sending)
                    return False
                self._idle.wait(left)
            self._stuck = False
            return True

    def take_dropped(self) -> int:
        """Items dropped since the last call: what the exporter reports as dropped."""
        with self._lock:
            count, self._unreported = self._unreported, 0
            return count

    def _count_dropped(self, count: int) -> None:
        self.dropped += count
        self._unreported += count

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name=f"inferobs-{self.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._idle.notify_all()
                    self._wake.wait()
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))
                ]
                self._sending = len(batch)
            try:
                self._send(batch)
            except Exception as exc:  # refused, throttled, unreachable: drop, count, go on
                fault("export", f"exporter {self.name} could not send a batch", exc)
                with self._lock:
                    self._count_dropped(len(batch))
            with self._lock:
                self._sending = 0
                self._stuck = False  # whatever hung has answered
                if not self._queue:
                    self._idle.notify_all()
