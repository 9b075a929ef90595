"""The per-invocation JSON line: one line per record, the record's fields at top level.

On Lambda this line on stdout is what CloudWatch Logs ingests and what the
analyzer reads back. It is built with the standard library's C JSON encoder on
the handler's thread, written in one call and flushed before the handler returns.

Exporters whose backend reads the log line itself (CloudWatch's Embedded
Metric Format) ride on it instead of writing lines of their own: a *rider*
(`inferobs.export.base.Rider`) gives members to add to the line (``line_members(record)``, and
``window_members(window)`` for drift window lines), so a record is still one
line. A record is encoded once however many exporters want its JSON
(`encoded`).
"""

from __future__ import annotations

import json
import json.encoder
import sys
from _thread import allocate_lock

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TextIO

    from ..record import Invocation
    from .base import Rider

__all__ = ["LineExporter", "encode", "encoded", "primed"]


def _make_encoder() -> Callable[[Mapping[str, Any]], str]:
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

    def encode(data: Mapping[str, Any]) -> str:
        return "".join(c_encode(data, 0))

    return encode


_encode = _make_encoder()


def encode(record: Mapping[str, Any]) -> str:
    """A record (an invocation, a drift window) as one compact JSON line, without the newline."""
    return _encode(record)


_last: tuple[object, str] = (None, "")  # the record encoded last, and its JSON


def encoded(record: Mapping[str, Any]) -> str:
    """`encode`, shared: the line and the store both want each record's JSON, and the
    second asks for the record the first has just encoded. Records are not changed
    once exported, so the object's identity is the key."""
    global _last
    last = _last
    if last[0] is record:
        return last[1]
    text = _encode(record)
    _last = (record, text)
    return text


def primed(record: Mapping[str, Any], text: str) -> None:
    """Say what `encoded` will give for ``record``: the record builder encodes its
    per-call fields and appends the environment's, encoded once per environment."""
    global _last
    _last = (record, text)


class LineExporter:
    """Writes each record as a JSON line to a text stream and flushes it.

    Without a stream it writes to whatever ``sys.stdout`` is at write time,
    because runtimes and test harnesses replace it after import (the Lambda
    runtime wraps it unbuffered). Lines from concurrent invocations never
    interleave: each is written under a lock in a single call. ``riders``
    add their members to every line (`inferobs.export.base.Rider`).
    """

    __slots__ = ("_lock", "_stream", "riders")

    writes_json = True  # the record builder primes `encoded` for it

    def __init__(self, stream: TextIO | None = None, riders: tuple[Rider, ...] = ()) -> None:
        self._stream = stream
        self._lock = allocate_lock()
        self.riders = riders

    def export(self, record: Invocation | dict[str, Any]) -> None:
        line = encoded(record)
        if self.riders:
            line = _with_riders(line, self.riders, "line_members", record)
        self._write(line)

    def export_window(self, window: dict[str, Any]) -> None:
        """A drift window record: a line of its own, written like an invocation's."""
        line = _encode(window)
        if self.riders:
            line = _with_riders(line, self.riders, "window_members", window)
        self._write(line)

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stdout
        line += "\n"
        with self._lock:
            stream.write(line)
            if stream.__class__ not in _FLUSHES_ITSELF:
                stream.flush()


def _with_riders(line: str, riders: tuple[Rider, ...], method: str, data: Mapping[str, Any]) -> str:
    """The line with the riders' members added before its closing brace; a rider that
    fails adds nothing (counted as a fault: the record itself is never lost)."""
    for rider in riders:
        try:
            extra = getattr(rider, method)(data)
        except Exception as exc:
            from ..context import fault

            fault("export", f"exporter {type(rider).__name__} failed", exc)
            continue
        if extra:
            line = f"{line[:-1]},{extra}}}"
    return line


def _flushes_itself() -> frozenset[type]:
    """Stream classes whose ``write`` already flushes: a second flush costs ~1 µs.

    The Lambda runtime wraps stdout in one (awslambdaric's ``Unbuffered``); it
    is only looked up if the runtime client is already imported.
    """
    bootstrap = sys.modules.get("awslambdaric.bootstrap")
    wrapper = getattr(bootstrap, "Unbuffered", None)
    return frozenset({wrapper}) if isinstance(wrapper, type) else frozenset()


_FLUSHES_ITSELF = _flushes_itself()
