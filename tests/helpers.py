"""Shared test helpers: a collecting exporter and a hand-driven clock."""

from __future__ import annotations

from typing import Any

import inferobs as obs
from inferobs.record import Invocation


class Collect:
    """An exporter that keeps what it is given, for assertions."""

    def __init__(self) -> None:
        self.records: list[Invocation] = []

    def export(self, record: Invocation) -> None:
        self.records.append(record)

    def dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]


class ManualClock(obs.Clock):
    """A clock that moves only when told to (nanoseconds)."""

    def __init__(self, wall: int = 1_700_000_000_000_000_000, mono: int = 10**12) -> None:
        self.wall = wall
        self.mono = mono

    def wall_ns(self) -> int:
        return self.wall

    def monotonic_ns(self) -> int:
        return self.mono

    def advance(self, ms: float) -> None:
        step = int(ms * 1_000_000)
        self.wall += step
        self.mono += step


class Context:
    """The parts of a Lambda context inferobs reads."""

    def __init__(self, request_id: str = "req-1", remaining_ms: int | None = None) -> None:
        self.aws_request_id = request_id
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        if self._remaining is None:
            raise AttributeError("no deadline")
        return self._remaining


def collecting(**settings: Any) -> Collect:
    """Configure inferobs to export into a fresh `Collect`, returned."""
    sink = Collect()
    obs.configure(exporters=[sink], **settings)
    return sink


def noop(event: Any, context: Any) -> None:
    """A handler that does nothing, to instrument in tests."""


def echo(event: Any, context: Any) -> Any:
    return event
