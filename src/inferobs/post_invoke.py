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
# An INVOKE whose request no instrumented handler opens within this long is not
# ours to wait for (the handler is not decorated): flush at once, or when the
# calls in flight have closed.
GRACE_S = 0.1


class PostInvoke:
    """The internal extension: `opened` and `closed` are told of each instrumented call."""

    def __init__(self, address: str, identifier: str, flush: Callable[[float | None], None]):
        self.address = address
        self.identifier = identifier
        self._flush = flush  # flush(deadline as time.monotonic(), or None)
        self.active = True  # False once the thread has stopped: flush in the handler then
        self._changed = threading.Condition()
        self._opened: set[str | None] = set()  # request ids opened in this invocation
        self._closed: set[str | None] = set()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="inferobs-post-invoke", daemon=True)
        if hasattr(os, "register_at_fork"):  # a forked child has the object but not the thread:
            os.register_at_fork(after_in_child=self._in_child)  # its handlers flush themselves

    def _in_child(self) -> None:
        self.active = False

    @classmethod
    def register(cls, address: str, flush: Callable[[float | None], None]) -> PostInvoke | None:
        """Register with the Extensions API at ``address`` and start; None where it refuses."""
        try:
            status, headers, _ = _request(
                address,
                "POST",
                f"{_API}/register",
                {"Lambda-Extension-Name": NAME, "Content-Type": "application/json"},
                b'{"events": ["INVOKE"]}',
                timeout=1.0,
            )
        except OSError:
            return None
        identifier = headers.get("lambda-extension-identifier")
        if status != 200 or not identifier:
            return None
        extension = cls(address, identifier, flush)
        extension._thread.start()
        return extension

    def opened(self, request_id: str | None) -> None:
        with self._changed:
            self._opened.add(request_id)
            self._in_flight += 1

    def closed(self, request_id: str | None) -> None:
        with self._changed:
            self._closed.add(request_id)
            self._in_flight = max(self._in_flight - 1, 0)
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            while True:
                event = self._next()
                if event.get("eventType") != "INVOKE":
                    continue
                deadline = _monotonic(event.get("deadlineMs"))
                self._wait(event.get("requestId"), deadline)
                try:
                    self._flush(deadline)
                except Exception:  # a flush never stops the loop that lets Lambda freeze
                    pass
        except Exception:
            pass
        self.active = False

    def _next(self) -> dict[str, Any]:
        """The next event; asking for it tells Lambda this invocation's work is done."""
        with self._changed:  # what the handler did is over: the next invocation starts afresh
            self._opened.clear()
            self._closed.clear()
            self._in_flight = 0
        status, _, body = _request(
            self.address,
            "GET",
            f"{_API}/event/next",
            {"Lambda-Extension-Identifier": self.identifier},
        )
        if status != 200:
            raise OSError(f"the Extensions API answered {status}")
        event: dict[str, Any] = json.loads(body)
        return event

    def _wait(self, request_id: object, deadline: float | None) -> None:
        """Until the handler has closed ``request_id``'s call, or the deadline passes; not
        past `GRACE_S` (and the calls in flight) if no call opened it."""
        grace = time.monotonic() + GRACE_S
        end = deadline if deadline is not None else grace + 900.0
        with self._changed:
            while request_id not in self._closed:
                now = time.monotonic()
                if now >= end:
                    return
                if now >= grace and request_id not in self._opened and not self._in_flight:
                    return
                self._changed.wait(max(min(end, grace if now < grace else end) - now, 0.001))


def _monotonic(deadline_ms: object) -> float | None:
    """An epoch deadline in milliseconds as a `time.monotonic` value."""
    if not isinstance(deadline_ms, (int, float)) or isinstance(deadline_ms, bool):
        return None
    return time.monotonic() + (deadline_ms / 1000 - time.time())


def _request(
    address: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    timeout: float | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on its own connection: status, headers (lower-cased), body."""
    host, _, port = address.rpartition(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address}", "Connection: close"]
    lines += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"not an HTTP answer: {status_line[:80]!r}")
    found = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        found[key.strip().lower()] = value.strip()
    length = found.get("content-length")
    return int(parts[1]), found, rest[: int(length)] if length and length.isdigit() else rest
