"""Shared test helpers: a collecting exporter and a hand-driven clock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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


NOBODY = 65534  # the conventional unprivileged user and group


def unprivileged() -> dict[str, Any]:
    """``subprocess`` options that run a child without root's power to read and write anything.

    File-permission cases cannot happen to root, and CI may well run as root:
    there the child runs as user nobody, if nobody can run this checkout's
    Python; otherwise the test is skipped, saying why.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import inferobs"],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            capture_output=True,
            check=False,
        )
        runs = probe.returncode == 0
    except OSError:  # the interpreter itself is out of nobody's reach
        runs = False
    if not runs:
        pytest.skip("running as root, and user nobody cannot run this checkout's Python")
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


@contextmanager
def open_folder() -> Iterator[Path]:
    """A fresh folder every user can enter (pytest's own are root's alone), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="inferobs-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for inside in folder.rglob("*"):
            inside.chmod(0o700 if inside.is_dir() else 0o600)
        shutil.rmtree(folder)


def stored(store: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows ``query`` finds in the store at ``store``."""
    import sqlite3

    connection = sqlite3.connect(store / "records.db")
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()
