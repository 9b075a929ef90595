"""The `Exporter` protocol, kept apart because defining a Protocol imports typing."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..record import Invocation

__all__ = ["Exporter"]


@runtime_checkable
class Exporter(Protocol):
    """Anything that takes finished records to a backend.

    ``export`` is called on the handler's thread before the handler returns,
    because a serverless process may be frozen right after: when it returns,
    the record must be handed off (written, sent, or durably queued). It must
    not block past the invocation's deadline; inferobs catches and counts
    whatever it raises.

    An exporter that also takes drift windows defines ``export_window(window:
    dict)``, called the same way with each closed window record (docs/drift.md);
    one without it is never given any.
    """

    def export(self, record: Invocation) -> None: ...
