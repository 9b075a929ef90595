"""The per-invocation JSON line: one line per record, the record's fields at top level.

On Lambda this line on stdout is what CloudWatch Logs ingests and what the
analyzer reads back. It is built with the standard library's C JSON encoder on
the handler's thread, written in one call and flushed before the handler returns.
"""

from __future__ import annotations

import json
import sys
from _thread import allocate_lock

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from typing import TextIO

    from ..record import Invocation

__all__ = ["LineExporter", "StdoutExporter", "encode"]

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=str).encode


def encode(record: Invocation) -> str:
    """The record as one compact JSON line, without the newline."""
    return _encode(record.to_dict())


class LineExporter:
    """Writes each record as a JSON line to a text stream and flushes it.

    Writes from concurrent invocations never interleave: each line is written
    under a lock in a single call.
    """

    __slots__ = ("_lock", "_stream")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = allocate_lock()

    def stream(self) -> TextIO:
        return self._stream

    def export(self, record: Invocation) -> None:
        line = _encode(record.to_dict()) + "\n"
        stream = self.stream()
        with self._lock:
            stream.write(line)
            stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream().flush()


class StdoutExporter(LineExporter):
    """`LineExporter` on whatever ``sys.stdout`` is at write time.

    Looked up per write because runtimes and test harnesses replace
    ``sys.stdout`` after import (the Lambda runtime wraps it unbuffered).
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def stream(self) -> TextIO:
        return sys.stdout
