"""Lambda's REPORT lines, in the text and in the JSON log format, as report rows.

Lambda writes one report per invocation to the function's log stream, after
the handler returned, crashed, ran out of memory or timed out: so it exists
even where our own record never got written. Two forms reach an export:

- text: ``REPORT RequestId: <id>\\tDuration: 12.34 ms\\tBilled Duration: 13 ms
  \\tMemory Size: 1024 MB\\tMax Memory Used: 88 MB``, then on a cold start
  ``Init Duration: … ms``, for SnapStart ``Restore Duration: … ms`` and
  ``Billed Restore Duration: … ms``, on newer runtimes ``Status: timeout`` or
  ``Status: error`` with ``Error Type: Runtime.OutOfMemory``, and X-Ray's ids;
- JSON (the function's log format set to JSON): ``{"time": …, "type":
  "platform.report", "record": {"requestId": …, "metrics": {"durationMs", …},
  "status": …, "errorType": …}}``.

A CloudWatch export puts the event's ISO-8601 timestamp and a space before each
line; that timestamp (or the JSON form's ``time``) is the report's ``end``.

The lines reader hands over only lines holding one of `REPORT_MARKERS`, so the
rest of a log never reaches Python. A candidate that is cut (the last line of
an export, a line split in two) or otherwise malformed is a `Problem` with its
file and line, never an exception; other platform events in the JSON form
(``platform.runtimeDone``, ``platform.start``, …) are not reports and are
skipped without a word.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone

from ...read import Problem

__all__ = ["REPORT_MARKERS", "STATUSES", "parse"]

REPORT_MARKERS: tuple[str, ...] = ("REPORT RequestId:", '"platform.report"')

# what the platform says of an invocation, in both forms (the text form's
# `Status:` field and the JSON form's `status`)
STATUSES = ("success", "failure", "error", "timeout")

_TEXT = "REPORT RequestId:"
# Every field name of a text REPORT. Scanning left to right, the longest name
# that starts at a place wins, so "Billed Restore Duration" is never read as
# "Duration".
_FIELD = re.compile(
    r"(?:^|(?<=\s))(RequestId|Billed Restore Duration|Restore Duration|Billed Duration|"
    r"Init Duration|Duration|Memory Size|Max Memory Used|Status|Error Type|"
    r"XRAY TraceId|SegmentId|Sampled): "
)
_NAMES = frozenset(
    ("RequestId", "Status", "Error Type", "XRAY TraceId", "SegmentId", "Sampled")
).union(
    (
        "Duration",
        "Billed Duration",
        "Memory Size",
        "Max Memory Used",
        "Init Duration",
        "Restore Duration",
        "Billed Restore Duration",
    )
)
# text field -> (column, unit the value must end with); the unit is how a
# value cut in the middle ("Init Duration: 23") is told from a whole one
_NUMBERS = {
    "Duration": ("duration_ms", " ms"),
    "Billed Duration": ("billed_ms", " ms"),
    "Memory Size": ("memory_mb", " MB"),
    "Max Memory Used": ("max_memory_mb", " MB"),
    "Init Duration": ("init_ms", " ms"),
    "Restore Duration": ("restore_ms", " ms"),
    "Billed Restore Duration": ("billed_restore_ms", " ms"),
}
# JSON metrics field -> column
_METRICS = {
    "durationMs": "duration_ms",
    "billedDurationMs": "billed_ms",
    "memorySizeMB": "memory_mb",
    "maxMemoryUsedMB": "max_memory_mb",
    "initDurationMs": "init_ms",
    "restoreDurationMs": "restore_ms",
    "billedRestoreDurationMs": "billed_restore_ms",
}
# columns every report has, in both forms
_REQUIRED = ("duration_ms", "billed_ms", "memory_mb", "max_memory_mb")
_INTEGERS = frozenset({"memory_mb", "max_memory_mb"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class _Malformed(ValueError):
    """A candidate that is not a whole report; the message says what is wrong."""


def parse(
    candidates: list[tuple[int, str]],
    source: str,
    problems: list[Problem],
    function: str | None = None,
) -> list[dict[str, object]]:
    """One row per report among ``candidates`` (line number, text), in the report columns.

    ``source`` names the file in rows and problems; ``function``, when the
    caller knows it (a log group's name), fills the ``function`` column.
    Besides the `inferobs.analyze.columns.REPORTS` columns a row carries
    ``error_type`` (the platform's ``Error Type``, e.g. ``Runtime.OutOfMemory``),
    NULL where the report does not say.
    """
    rows: list[dict[str, object]] = []
    for line, raw in candidates:
        text = raw.rstrip("\r\n")
        try:
            row = _json(text) if _TEXT not in text else _text(text)
        except _Malformed as error:
            problems.append(Problem(f"{source}:{line}", str(error)))
            continue
        if row is None:
            continue
        row["source"] = source
        row["line"] = line
        row["function"] = function
        rows.append(row)
    return rows


def _text(text: str) -> dict[str, object]:
    """The row of a text REPORT line (after any prefix, which may be its timestamp)."""
    at = text.index(_TEXT)
    row: dict[str, object] = {"end": _timestamp(text[:at].strip())}
    body = text[at + len("REPORT ") :]
    fields = _fields(body)
    request = fields.get("RequestId", "")
    if not request or any(c.isspace() for c in request):
        raise _Malformed("REPORT line with a malformed RequestId")
    row["id"] = request
    for name, (column, unit) in _NUMBERS.items():
        value = fields.get(name)
        if value is None:
            row[column] = None
            continue
        if not value.endswith(unit):
            raise _Malformed(f"REPORT line cut or malformed at {name!r}: {value!r}")
        row[column] = _number(value[: -len(unit)], name, column in _INTEGERS)
    for column in _REQUIRED:
        if row[column] is None:
            raise _Malformed(f"REPORT line cut or malformed: no {_label(column)!r}")
    row["status"] = _status(fields.get("Status"))
    error_type = fields.get("Error Type")
    row["error_type"] = error_type or None
    return row


def _fields(body: str) -> dict[str, str]:
    """Field name -> value text of a REPORT body (from ``RequestId:`` on)."""
    fields: dict[str, str] = {}
    # the usual case, tab-separated as Lambda writes it: no regex needed
    for part in body.rstrip("\t").split("\t"):
        name, colon, value = part.partition(": ")
        if not colon or name not in _NAMES or ": " in value:
            break
        fields[name] = value.strip()
    else:
        return fields
    # spaces for tabs (a console copy), or a cut or odd line: find the names
    found = list(_FIELD.finditer(body))
    if not found or found[0].start() != 0:
        raise _Malformed("REPORT line without its RequestId")
    fields = {}
    for n, match in enumerate(found):
        stop = found[n + 1].start() if n + 1 < len(found) else len(body)
        fields[match.group(1)] = body[match.end() : stop].strip()
    return fields


def _json(text: str) -> dict[str, object] | None:
    """The row of a ``platform.report`` event; None for another event or plain text."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while True:
        if start < 0:
            return None  # another platform event, or JSON that only mentions a report
        try:
            event, stop = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            raise _Malformed("platform.report line cut or malformed (not whole JSON)") from None
        if isinstance(event, dict) and event.get("type") == "platform.report":
            break
        start = text.find("{", stop)
    record = event.get("record")
    if not isinstance(record, dict):
        raise _Malformed("platform.report without its record")
    request = record.get("requestId")
    if not isinstance(request, str) or not request:
        raise _Malformed("platform.report without its requestId")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise _Malformed("platform.report without its metrics")
    time = event.get("time")
    end = _timestamp(time) if isinstance(time, str) else None
    if end is None:
        end = _timestamp(text[:start].strip())
    row: dict[str, object] = {"id": request, "end": end}
    for field, column in _METRICS.items():
        value = metrics.get(field)
        if value is None:
            row[column] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Malformed(f"platform.report with a malformed {field!r}")
        else:
            row[column] = int(value) if column in _INTEGERS else float(value)
    for column in _REQUIRED:
        if row[column] is None:
            field = next(f for f, c in _METRICS.items() if c == column)
            raise _Malformed(f"platform.report without {field!r}")
    status = record.get("status")
    row["status"] = _status(status if isinstance(status, str) else None)
    error_type = record.get("errorType")
    row["error_type"] = error_type if isinstance(error_type, str) and error_type else None
    return row


def _number(value: str, name: str, integer: bool) -> float | int:
    try:
        number = float(value)
    except ValueError:
        raise _Malformed(f"REPORT line with a malformed {name!r}: {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise _Malformed(f"REPORT line with a malformed {name!r}: {value!r}")
    if integer:
        if not number.is_integer():
            raise _Malformed(f"REPORT line with a malformed {name!r}: {value!r}")
        return int(number)
    return number


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise _Malformed(f"report with an unknown status {value[:40]!r}")
    return value


def _label(column: str) -> str:
    return next(name for name, (c, _) in _NUMBERS.items() if c == column)


def _timestamp(text: str) -> int | None:
    """Unix epoch ns of an ISO-8601 timestamp (a CloudWatch export's prefix), else None."""
    if not text or not text[0].isdigit():
        return None
    token = text.split(None, 1)[0]
    if token.endswith(("Z", "z")):
        token = token[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(token)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # exports write UTC
    return (moment - _EPOCH) // _MICROSECOND * 1000
