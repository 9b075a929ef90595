"""The embedded store: records in a SQLite database under ``store_path``.

Off-cloud there is no log service to pull records back from, so they go to a
local database that `obs report` and the analyzer read. SQLite in WAL mode,
from the standard library: several processes can write at once (each write is
a short transaction; WAL lets readers run beside a writer), a crash loses at
most the batch still in memory, and there is nothing to install or run.
docs/architecture.md says why this engine.

Records are written in batches, one transaction each: per-record transactions
would cost a disk sync every invocation. A batch is written when it is full,
when it is older than ``flush_interval_s`` at the next record, and when the
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


def connect(path: str, *, create: bool = True) -> sqlite3.Connection:
    """Open the store's database in folder ``path`` (made if missing, when ``create``)."""
    if create:
        os.makedirs(path, exist_ok=True)
    database = os.path.join(path, DATABASE)
    if not create and not os.path.exists(database):
        raise FileNotFoundError(f"{database}: no inferobs store here")
    connection = sqlite3.connect(database, timeout=30.0, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
    if create:
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

    Safe to share between threads; each process opens its own connection, and
    SQLite's locking (with a generous busy timeout) serialises their batches.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 1.0,
    ) -> None:
        if path is None:
            from ..config import current

            path = current().store_path
        self.path = path
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._pending: list[tuple[object, ...]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = os.getpid()
        atexit.register(self.flush)

    def export(self, record: Invocation) -> None:
        row = _row(record)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(row)
            due = (
                len(self._pending) >= self.batch_size
                or time.monotonic() - self._oldest >= self.flush_interval_s
            )
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the pending batch in one transaction."""
        with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(_INSERT, rows)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                # keep them for the next try, but never more than a few batches
                self._pending = (rows + self._pending)[-4 * self.batch_size :]
                raise

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # a fork needs its own
            self._connection = connect(self.path)
            self._pid = os.getpid()
        return self._connection
