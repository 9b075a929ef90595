"""The embedded store: records in a SQLite database under ``store_path``.

Off-cloud there is no log service to pull records back from, so they go to a
local database that `obs report` and the analyzer read. SQLite in WAL mode,
from the standard library: several processes can write at once (each write is
a short transaction; WAL lets readers run beside a writer), a crash loses at
most the batch still in memory, and there is nothing to install or run.
docs/architecture.md says why this engine.

Records are written in batches, one transaction each: per-record transactions
would cost a disk sync every invocation. A batch is written when it is full,
by a background thread once it is ``flush_interval_s`` old, and when the
process exits normally.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time

from .lines import encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..record import Invocation

__all__ = ["DATABASE", "SCHEMA", "StoreExporter", "connect"]

DATABASE = "records.db"
STORE_SCHEMA_VERSION = 1

# Columns the analyzer filters and groups by are columns; the whole record is
# kept as its JSON line, so no field is ever lost to the table's shape.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    start         INTEGER NOT NULL,  -- Unix epoch ns, as in the record
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    function      TEXT,
    version       TEXT,
    model         TEXT,
    model_version TEXT,
    variant       TEXT,
    instance_id   TEXT,
    cold_start    INTEGER NOT NULL,
    duration_ms   REAL    NOT NULL,
    record        TEXT    NOT NULL   -- the record's JSON line
);
CREATE INDEX IF NOT EXISTS invocations_by_start ON invocations (start);
-- Drift windows: one row per window, instance and feature; the window's bin
-- counts are one array (little-endian int64, `counts`), never one row per bin,
-- so a month of windows is a few hundred thousand small rows.
CREATE TABLE IF NOT EXISTS drift_windows (
    window_start  INTEGER NOT NULL,  -- Unix epoch ns, clock-aligned
    window_end    INTEGER NOT NULL,
    instance_id   TEXT    NOT NULL,
    baseline_hash TEXT    NOT NULL,
    feature       TEXT    NOT NULL,  -- a feature name, or "prediction"
    counts        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_windows_by_start ON drift_windows (window_start, feature);
"""

_INSERT = (
    "INSERT INTO invocations (start, kind, status, function, version, model, model_version,"
    " variant, instance_id, cold_start, duration_ms, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: str, *, timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open (creating if needed) the store's database in folder ``path``."""
    os.makedirs(path, exist_ok=True)
    connection = sqlite3.connect(
        os.path.join(path, DATABASE), timeout=timeout_s, isolation_level=None
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
    connection.executescript(SCHEMA)
    connection.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
        (str(STORE_SCHEMA_VERSION),),
    )
    return connection


def _row(record: Invocation) -> tuple[object, ...]:
    return (
        record.start,
        record.kind,
        record.status,
        record.function,
        record.version,
        record.model,
        record.model_version,
        record.variant,
        record.instance_id,
        1 if record.cold_start else 0,
        record.duration_ms,
        encode(record),
    )


class StoreExporter:
    """Appends records to the embedded store, in batches.

    Safe to share between threads and across ``fork`` (a child starts with an
    empty batch, its own lock and its own connection). A full batch is written
    by the call that filled it; a background thread writes what has waited
    longer than ``flush_interval_s``, so a quiet process's last records show up
    within that time; a normal exit writes the rest. Pending rows are never
    held under a lock during I/O, and after a failed write the store backs off
    for a few seconds instead of retrying on every call.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 1.0,
        busy_timeout_s: float = 5.0,
    ) -> None:
        if path is None:
            from ..config import current

            path = current().store_path
        self.path = path
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.busy_timeout_s = busy_timeout_s
        self._reset()
        atexit.register(self.flush)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A fresh start: at creation, and in a forked child (the parent keeps its rows)."""
        self._pending: list[tuple[object, ...]] = []
        self._oldest = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()  # guards _pending only, never held during I/O
        self._writing = threading.Lock()  # one write at a time per process
        self._connection: sqlite3.Connection | None = None
        self._timer: threading.Thread | None = None

    def export(self, record: Invocation) -> None:
        row = _row(record)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(row)
            full = len(self._pending) >= self.batch_size
            if self._timer is None:
                self._timer = threading.Thread(
                    target=self._flush_periodically, name="inferobs-store", daemon=True
                )
                self._timer.start()
        if full and time.monotonic() >= self._retry_at:
            self.flush()

    def flush(self) -> None:
        """Write everything pending, one transaction per call."""
        with self._writing:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                connection = self._connect()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.executemany(_INSERT, rows)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except BaseException:
                with self._lock:  # keep them for the next try, never more than a few batches
                    self._pending = (rows + self._pending)[-4 * self.batch_size :]
                    self._oldest = time.monotonic()
                self._retry_at = time.monotonic() + 5.0
                raise
            self._retry_at = 0.0

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self.flush_interval_s)
            with self._lock:
                waiting = bool(self._pending) and (
                    time.monotonic() - self._oldest >= self.flush_interval_s
                )
            if waiting and time.monotonic() >= self._retry_at:
                try:
                    self.flush()
                except Exception as exc:  # counted and kept; the next tick tries again
                    from ..context import fault

                    fault("store", f"the store at {self.path} could not be written", exc)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self.path, timeout_s=self.busy_timeout_s)
        return self._connection
