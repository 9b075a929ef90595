"""The per-invocation JSON line: one line per record, the record's fields at top level.

On Lambda this line on stdout is what CloudWatch Logs ingests and what the
analyzer reads back. It is built with the standard library's C JSON encoder on
the handler's thread, written in one call and flushed before the handler returns.
"""

from __future__ import annotations

import json
import json.encoder
import sys
from _thread import allocate_lock

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    from ..record import Invocation

__all__ = ["LineExporter", "StdoutExporter", "encode"]


def _make_encoder() -> Callable[[dict[str, Any]], str]:
    """A compact JSON encoder, with the C encoder built once where there is one.

    ``JSONEncoder.encode`` rebuilds its C encoder on every call, a sizeable share
    of a per-invocation budget counted in microseconds.
    """
    standard = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=str).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator
        return standard
    try:
        c_encode = make(
            None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
        )
    except TypeError:  # its private signature changed: stay correct, if slower
        return standard

    def encode(data: dict[str, Any]) -> str:
        return "".join(c_encode(data, 0))

    return encode


_encode = _make_encoder()


def encode(record: Invocation) -> str:
    """The record as one compact JSON line, without the newline."""
    return _encode(record)


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
        line = _encode(record) + "\n"
        stream = self.stream()
        with self._lock:
            stream.write(line)
            stream.flush()


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
