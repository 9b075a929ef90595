"""Problems inferobs meets while recording: counted, reported once, never raised.

Telemetry must not break the handler, yet a silent failure would hide a broken
setup forever. Each kind of problem is written once per process to stderr as a
JSON line (``event: inferobs.fault``) and counted in the record of the
invocation it happened in (``sdk_faults``), so it shows up as a metric.
"""

from __future__ import annotations

import sys

__all__ = ["fault", "faults_seen"]

_reported: dict[str, int] = {}


def fault(kind: str, message: str, exc: BaseException | None = None) -> None:
    """Count a problem of ``kind``; describe it on stderr the first time only.

    Only the exception's type is written, never its message, which may hold
    values from the user's data.
    """
    from .context import current_call  # the rare path pays for the lookup

    call = current_call()
    if call is not None:
        call.faults += 1
    seen = _reported.get(kind, 0)
    _reported[kind] = seen + 1
    if seen:
        return
    import json

    detail = {"event": "inferobs.fault", "kind": kind, "message": message}
    if exc is not None:
        detail["exception"] = type(exc).__name__
    try:
        sys.stderr.write(json.dumps(detail) + "\n")
    except Exception:  # stderr closed or broken: nothing more we can say
        pass


def faults_seen() -> dict[str, int]:
    """How many times each kind of problem happened in this process."""
    return dict(_reported)
