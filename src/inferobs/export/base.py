"""The `Exporter` and `Rider` protocols, kept apart because defining a Protocol imports
typing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..record import Invocation

__all__ = ["Exporter", "Rider"]


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
    one without it is never given any. A network exporter queues in ``export``
    and defines ``flush_by(deadline)``, called at the end of every invocation
    with an absolute ``time.monotonic()`` deadline it must not wait past
    (`inferobs.export.sending.BatchSender` does both halves).
    """

    def export(self, record: Invocation) -> None: ...


class Rider(Protocol):
    """An exporter whose backend reads the JSON line itself (CloudWatch EMF), riding on it.

    The line exporter adds what these return to each line, so a record stays
    one line: the JSON members to add, already encoded and without braces
    (``"a":1,"b":2``), or ``""`` for nothing. The line is written whatever
    they raise.
    """

    def line_members(self, record: Mapping[str, Any]) -> str: ...

    def window_members(self, window: Mapping[str, Any]) -> str: ...
