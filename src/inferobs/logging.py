"""structlog for the function's own logs, joined to inferobs records by request id.

`add_invocation_context` is a structlog processor: every event logged while an
instrumented invocation runs gets its request id, trace id, cold-start flag,
model, model version, variant and the stage it was logged in, so the user's
log lines and the invocation's record join on ``request_id``. `get_logger`
returns a ready JSON logger using it, without touching structlog's global
configuration.

Needs the ``structlog`` extra; ``import inferobs`` never imports this module.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from .context import _scope

__all__ = ["add_invocation_context", "get_logger"]


def add_invocation_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Bind the current invocation's context into a structlog event.

    Keys already in the event win; outside an invocation the event is unchanged.
    """
    frame = _scope.get()
    if frame is None:
        return event_dict
    call = frame[1]
    context = {
        "request_id": call.request_id,
        "trace_id": call.trace_id,
        "cold_start": call.cold_start,
        "model": call.model,
        "model_version": call.model_version,
        "variant": call.variant,
        "stage": None if frame[0] is None else frame[2],
    }
    for key, value in context.items():
        if value is not None and key not in event_dict:
            event_dict[key] = value
    return event_dict


def get_logger(**initial_values: Any) -> Any:
    """A JSON-lines structlog logger on stdout that carries the invocation's context."""
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stdout),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_invocation_context,
            structlog.processors.JSONRenderer(),
        ],
        **initial_values,
    )
