"""Network exporters flushed after the response is sent, before Lambda freezes the process.

Lambda returns a function's response to its caller as soon as the runtime
posts it, but freezes the execution environment only once the runtime and
every registered extension have asked for their next event (the Extensions
API, "Invoke phase"). An internal extension, a thread in this process, can
therefore send what the network exporters batched *after* the caller has its
answer and *before* the freeze: the caller waits for none of it, and nothing
batched is left in a frozen process. The time is still billed, as an
in-handler flush would be.

The thread registers during init (Lambda accepts no registration after the
runtime's first request for work), then for each INVOKE event waits until the
instrumented handler has closed that request's record, flushes within the
flush deadline, and asks for the next event, which tells Lambda it is done.
Where the Extensions API is not there (a local emulator, a container) or
refuses us, or the thread ever fails, `inferobs.lifecycle` flushes at the
end of the handler instead, as before.

The Runtime API speaks plain HTTP on a local socket; a few lines of socket
code keep ``http.client`` (and the ``email`` and ``ssl`` modules it imports)
off the cold start.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["PostInvoke"]

NAME = "inferobs"  # how the extension is named to Lambda
_API = "/2020-01-01/extension"
# An INVOKE whose request no instrumented handler has opened this long after it
# arrived is not waited for (the handler is not decorated, or recording is off);
# a call that opens later is flushed by its handler, as without the extension.
GRACE_S = 0.02
# The wait for the handler ends this long before the invocation's deadline: the
# watchdog's timeout record is flushed by the handler's side, and Lambda must
# hear from the extension before the deadline.
END_MARGIN_S = 0.1
# How often the waiting extension looks for an event a closed call did not announce,
# and how long at most it leaves one that has arrived unread while a call is open
POLL_S = 0.05
MAX_DEFER_S = 1.0
_RETRY_S = (0.01, 1.0)  # first and longest pause between failed requests for events
_RELEASED_KEPT = 64  # requests remembered as no longer waited for


class PostInvoke:
    """The internal extension: `opened` and `closed` are told of each instrumented call."""

    def __init__(self, address: str, identifier: str, flush: Callable[[float | None], None]):
        self.address = address
        self.identifier = identifier
        self._flush = flush  # flush(deadline as time.monotonic(), or None)
        # False when the handlers must flush themselves: the events could not be read
        # (the loop goes on asking for them, so that Lambda is never held), or in a
        # forked child, which has the object but not the thread
        self.active = True
        self._changed = threading.Condition()
        # Keyed by request id, never cleared wholesale: the next invocation's handler may
        # open and close before this thread has even read that invocation's INVOKE.
        self._open: dict[str | None, int] = {}  # request id -> its calls open now
        self._seen: set[str | None] = set()  # request ids opened and not yet waited for
        # the latest requests no longer waited for: a call of theirs that closes now is
        # flushed by its handler (a dict, for its order)
        self._released: dict[str | None, None] = {}
        self._due = False  # a call has closed since the extension asked for its next event
        self._thread = threading.Thread(target=self._run, name="inferobs-post-invoke", daemon=True)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._in_child)

    def _in_child(self) -> None:
        self.active = False
        self._changed = threading.Condition()  # the parent's may have been held at the fork

    @classmethod
    def register(cls, address: str, flush: Callable[[float | None], None]) -> PostInvoke | None:
        """Register with the Extensions API at ``address`` and start; None where it refuses."""
        try:
            with _send(
                address,
                "POST",
                f"{_API}/register",
                {"Lambda-Extension-Name": NAME, "Content-Type": "application/json"},
                b'{"events": ["INVOKE"]}',
                timeout=1.0,
            ) as connection:
                status, headers, _ = _answer(connection)
            identifier = headers.get("lambda-extension-identifier")
            if status != 200 or not identifier:
                return None
            extension = cls(address, identifier, flush)
            extension._thread.start()
        except Exception:  # no extension: the handlers flush themselves
            return None
        return extension

    def opened(self, request_id: str | None) -> None:
        with self._changed:
            self._open[request_id] = self._open.get(request_id, 0) + 1
            self._seen.add(request_id)

    def closed(self, request_id: str | None) -> bool:
        """Whether the extension flushes for this call; if not, the handler must."""
        with self._changed:
            left = self._open.get(request_id, 0) - 1
            if left > 0:
                self._open[request_id] = left
            else:
                self._open.pop(request_id, None)
            self._due = True
            self._changed.notify_all()
            if request_id in self._released:  # opened late: nothing will wait for it
                self._seen.discard(request_id)
            # the extension has this request's INVOKE coming, or is waiting on it; a call
            # without a request id is none of Lambda's invocations: its handler flushes
            return self.active and request_id is not None and request_id not in self._released

    def _run(self) -> None:
        pause = _RETRY_S[0]
        while True:  # never leaves: Lambda freezes only once this thread has asked again
            try:
                event = self._next()
                pause = _RETRY_S[0]
            except Exception:
                self.active = False  # the handlers flush from now on; this one may have
                try:  # closed a call for this thread to flush: it is flushed here
                    self._flush(None)
                except Exception:
                    pass
                time.sleep(pause)
                pause = min(pause * 2, _RETRY_S[1])
                continue
            if not self.active or event.get("eventType") != "INVOKE":
                continue
            try:
                deadline = _monotonic(event.get("deadlineMs"))
                request_id = event.get("requestId")
                if self._wait(request_id if isinstance(request_id, str) else None, deadline):
                    self._flush(deadline)
            except Exception:  # a flush never stops the loop that lets Lambda freeze
                pass

    def _next(self) -> dict[str, Any]:
        """The next event; asking for it tells Lambda this invocation's work is done.

        The event is read only when it is due: once a call has closed, or once it has
        arrived and no instrumented call is open (an undecorated handler), which the
        thread looks at every `POLL_S`. Read on arrival, it would wake this thread
        (its Python work, not a poll) while the handler runs, and the two would take
        turns at the interpreter while the caller waits.
        """
        with self._changed:  # a call that closes from here on makes the event due
            self._due = False
        connection = _send(
            self.address,
            "GET",
            f"{_API}/event/next",
            {"Lambda-Extension-Identifier": self.identifier},
        )
        try:
            self._until_due(connection)
            status, _, body = _answer(connection)
        finally:
            connection.close()
        if status != 200:
            raise OSError(f"the Extensions API answered {status}")
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("an event that is not an object")
        return event

    def _until_due(self, connection: socket.socket) -> None:
        readable = select.poll()
        readable.register(connection, select.POLLIN)
        with self._changed:
            arrived: float | None = None
            while not self._due:
                if readable.poll(0):
                    now = time.monotonic()
                    arrived = now if arrived is None else arrived
                    if not self._handler_open() or now - arrived >= MAX_DEFER_S:
                        return
                self._changed.wait(POLL_S)

    def _handler_open(self) -> bool:
        """Whether a call of a request this extension is still to wait for is open (calls
        without a request id, and late calls of released requests, are not its own)."""
        return any(
            count
            for request_id, count in self._open.items()
            if request_id is not None and request_id not in self._released
        )

    def _wait(self, request_id: str | None, deadline: float | None) -> bool:
        """Until every call of ``request_id`` has closed; whether one was opened. Not past
        `GRACE_S` if none opens, nor past `END_MARGIN_S` before the deadline."""
        grace = time.monotonic() + GRACE_S
        end = grace + 900.0 if deadline is None else deadline - END_MARGIN_S
        with self._changed:
            try:
                while True:
                    now = time.monotonic()
                    seen = request_id in self._seen
                    if seen and not self._open.get(request_id):
                        return True
                    if now >= end or (not seen and now >= grace):
                        return seen
                    self._changed.wait(max((end if seen else min(grace, end)) - now, 0.001))
            finally:  # a call of it that closes from now on is flushed by its handler
                self._seen.discard(request_id)
                self._released[request_id] = None
                if len(self._released) > _RELEASED_KEPT:
                    del self._released[next(iter(self._released))]


def _monotonic(deadline_ms: object) -> float | None:
    """An epoch deadline in milliseconds as a `time.monotonic` value."""
    if not isinstance(deadline_ms, (int, float)) or isinstance(deadline_ms, bool):
        return None
    return time.monotonic() + (deadline_ms / 1000 - time.time())


def _send(
    address: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    timeout: float | None = None,
) -> socket.socket:
    """A connection with the request sent; the server closes it after its answer."""
    host, _, port = address.rpartition(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address}", "Connection: close"]
    lines += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    try:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    except BaseException:
        connection.close()
        raise
    return connection


def _answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The answer, read to the close: the body by its Content-Length, or decoded from
    chunks; one cut short is an error."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    head, separator, rest = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if not separator or len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"not an HTTP answer: {status_line[:80]!r}")
    found = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        found[key.strip().lower()] = value.strip()
    if "chunked" in found.get("transfer-encoding", "").lower():
        return int(parts[1]), found, _unchunked(rest)
    length = found.get("content-length")
    if length is None:
        return int(parts[1]), found, rest
    if not length.isdigit() or len(rest) < int(length):
        raise OSError("an answer cut short")
    return int(parts[1]), found, rest[: int(length)]


def _unchunked(data: bytes) -> bytes:
    """A chunked body's bytes (RFC 9112, 7.1); an error where it is cut short."""
    out: list[bytes] = []
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"x", 16) if separator else -1
        if size < 0 or len(data) < size + 2:
            raise OSError("a chunked answer cut short")
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2 :]
