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
process exits normally; whichever thread that is, the one connection is used
under one lock.

One bad record must never hold back the others: a batch SQLite refuses is
written again row by row, a row's text SQLite cannot hold is escaped, and a
row that still cannot be written is set aside in its own table with the
reason. A store that cannot be written at all keeps a bounded backlog, and
counts what it has to drop (docs/store.md says where the counts are seen).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import sys
import threading
import time
from math import isfinite

from ..context import fault
from .lines import encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..record import Invocation

    Row = tuple[object, ...]

__all__ = ["DATABASE", "SCHEMA", "StoreExporter", "connect"]

DATABASE = "records.db"
STORE_SCHEMA_VERSION = 1
# after a failed write the store waits before trying again: briefly at first (another
# writer's lock, a checkpoint), twice as long after each failure in a row, at most this
RETRY_FIRST_S = 0.05
RETRY_AFTER_S = 5.0
# what it keeps meanwhile: four batches, and never fewer than this many records
# (a few MB), so a moment's contention with small batches drops nothing
BACKLOG_FLOOR = 4096

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
-- Records no row of `invocations` can hold (a start beyond 64 bits, a
-- duration that is not a finite number), kept with the reason instead of
-- blocking the records written after them.
CREATE TABLE IF NOT EXISTS set_aside (
    at            INTEGER NOT NULL,  -- when it was set aside, Unix epoch ns
    reason        TEXT    NOT NULL,
    record        TEXT    NOT NULL   -- the record's JSON line
);
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
_SET_ASIDE = "INSERT INTO set_aside (at, reason, record) VALUES (?, ?, ?)"
# `dropped` in meta: records writers had to drop because the store could not
# be written; added to by the first write that succeeds after the drops.
_COUNT_DROPPED = (
    "INSERT INTO meta (key, value) VALUES ('dropped', ?) ON CONFLICT (key)"
    " DO UPDATE SET value = CAST(CAST(value AS INTEGER) + excluded.value AS TEXT)"
)
_TEXT_COLUMNS = range(1, 9)  # kind .. instance_id, in _INSERT's order
# What SQLite (or binding a value for it) raises for one row's values, never
# for the store as a whole: a lone surrogate, an integer beyond 64 bits, a
# NULL in a NOT NULL column, a value of a type it cannot hold.
_ROW_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)
# SQLite's result codes, in words; only a code is ever shown, never an
# exception's message.
_SQLITE_REASONS = {
    "SQLITE_BUSY": "another writer held its lock too long",
    "SQLITE_CANTOPEN": "the database file cannot be opened",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "a disk I/O error",
    "SQLITE_NOTADB": f"{DATABASE} is not a SQLite database",
    "SQLITE_PERM": "permission denied",
    "SQLITE_READONLY": "the database is read-only",
}


def connect(path: str, *, timeout_s: float = 5.0, any_thread: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the store's database in folder ``path``.

    ``any_thread`` lets other threads use the connection; the caller then
    makes sure only one uses it at a time.
    """
    os.makedirs(path, exist_ok=True)
    connection = sqlite3.connect(
        os.path.join(path, DATABASE),
        timeout=timeout_s,
        isolation_level=None,
        check_same_thread=not any_thread,
    )
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            _set_up(connection)
            return connection
        except sqlite3.OperationalError as exc:
            # several processes creating the store at once: switching a new file to
            # WAL is refused at once (no busy handler runs for it), so wait here
            busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
            if not busy or time.monotonic() + pause > deadline:
                connection.close()
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
    connection.executescript(SCHEMA)
    connection.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
        (str(STORE_SCHEMA_VERSION),),
    )


def _row(record: Invocation) -> Row:
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
    (50 ms, doubling to 5 s) instead of retrying on every call. Nothing here raises:
    problems are faults (`inferobs.context.fault`), described once on stderr.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 1.0,
        busy_timeout_s: float = 5.0,
        backlog: int | None = None,
    ) -> None:
        if path is None:
            from ..config import current

            path = current().store_path
        self.path = path
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.busy_timeout_s = busy_timeout_s
        # records kept while the store cannot be written; beyond it the oldest are dropped
        self.backlog = backlog if backlog is not None else max(4 * batch_size, BACKLOG_FLOOR)
        self._reset()
        atexit.register(self._flush_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A fresh start: at creation, and in a forked child (the parent keeps its rows)."""
        self._pending: list[Row] = []
        self._oldest = 0.0
        self._retry_at = 0.0
        self._wait = 0.0  # the current back-off, seconds
        self._lock = threading.Lock()  # guards _pending and the counts, never held during I/O
        self._writing = threading.Lock()  # one write, and one user of the connection, at a time
        self._connection: sqlite3.Connection | None = None
        self._timer: threading.Thread | None = None
        # write each record before the handler returns (found out at the first record:
        # a forked child only learns it is a multiprocessing worker after the fork)
        self._each: bool | None = None
        self._exited = False  # the exit flush has run
        self._uncounted = 0  # dropped, not yet added to the store's count (under _lock)
        self.dropped = 0  # records this process has had to drop (under _lock)

    def export(self, record: Invocation) -> None:
        row = _row(record)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(row)
            full = len(self._pending) >= self.batch_size
            if self._each is None:
                self._each = _ends_without_exit_hooks()
            # after the exit flush (a generator finalised at shutdown records its
            # stream) no thread can start and no later flush comes: write it now
            full = full or self._each or self._exited or sys.is_finalizing()
            if self._timer is None and not full:
                self._timer = threading.Thread(
                    target=self._flush_periodically, name="inferobs-store", daemon=True
                )
                self._timer.start()
        if full:
            if time.monotonic() >= self._retry_at:
                self.flush()
            else:  # backing off: memory stays bounded while the store is out of reach
                self._keep([])

    def flush(self) -> bool:
        """Write everything pending, in one transaction; False if the store could not be written.

        A failure is a fault, not an exception: the rows are kept for the next
        try (at most four batches; older ones are dropped and counted).
        """
        return self._flush(exiting=False)

    def _flush(self, *, exiting: bool) -> bool:
        with self._writing:
            with self._lock:
                rows, self._pending = self._pending, []
                dropped = self._uncounted
            if not rows and not dropped:
                return True
            try:
                set_aside, unstorable = self._write(rows, dropped)
            except BaseException as exc:
                self._wait = min(self._wait * 2, RETRY_AFTER_S) if self._wait else RETRY_FIRST_S
                self._retry_at = time.monotonic() + self._wait
                if not isinstance(exc, Exception):
                    self._keep(rows)
                    raise
                reason = f"the store at {self.path} could not be written: {self._reason(exc)}"
                if exiting:  # nothing is kept past exit: one line says why and how much
                    lost = len(rows) + dropped
                    fault("store_exit", f"{reason}; {lost} records never reached it", exc)
                else:
                    self._keep(rows)
                    fault("store", f"{reason}; its records are kept in memory and retried", exc)
                return False
            self._retry_at = self._wait = 0.0
        with self._lock:
            self._uncounted += unstorable - dropped
            self.dropped += unstorable
        if set_aside:
            fault(
                "store_set_aside",
                f"the store at {self.path} could not hold {set_aside} record(s); they are "
                f"kept in its set_aside table with the reason",
            )
        return True

    def _write(self, rows: list[Row], dropped: int) -> tuple[int, int]:
        """One transaction: the rows, and ``dropped`` added to the store's count.

        Returns how many rows were set aside, and how many could not be stored
        even there (to be counted as dropped).
        """
        connection = self._connect()
        set_aside = unstorable = 0
        connection.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                connection.execute("SAVEPOINT batch")
                try:
                    connection.executemany(_INSERT, rows)
                except _ROW_ERRORS:  # one row SQLite refuses: write the others one by one
                    connection.execute("ROLLBACK TO batch")
                    set_aside, unstorable = _write_each(connection, rows)
                connection.execute("RELEASE batch")
            if dropped:
                connection.execute(_COUNT_DROPPED, (str(dropped),))
            connection.execute("COMMIT")
        except BaseException:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:  # SQLite already rolled it back
                pass
            raise
        return set_aside, unstorable

    def _keep(self, rows: list[Row]) -> None:
        """Put back rows that could not be written, keeping the newest; count what does not fit."""
        limit = self.backlog
        with self._lock:
            kept = rows + self._pending if rows else self._pending
            over = max(len(kept) - limit, 0)
            if rows or over:
                self._pending = kept[over:]
                self._oldest = time.monotonic()
            self._uncounted += over
            self.dropped += over
        if over:
            fault(
                "store_dropped",
                f"the store at {self.path} could not be written for a while: {over} records "
                f"were dropped to keep at most {limit} in memory; the store's meta table "
                f"counts them ('dropped') once it can be written again",
            )

    def _flush_at_exit(self) -> None:
        self._exited = True
        self._flush(exiting=True)
        with self._writing:  # the last connection to close folds the WAL back and removes it
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    connection.close()
                except sqlite3.Error:
                    pass

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self.flush_interval_s)
            with self._lock:
                waiting = bool(self._pending) and (
                    time.monotonic() - self._oldest >= self.flush_interval_s
                )
            if waiting and time.monotonic() >= self._retry_at:
                self.flush()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self.path, timeout_s=self.busy_timeout_s, any_thread=True)
        return self._connection

    def _reason(self, exc: Exception) -> str:
        """Why the store could not be written, in words that carry no record's values."""
        if isinstance(exc, FileExistsError):
            return f"{self.path} is a file, not a folder"
        if isinstance(exc, NotADirectoryError):
            return f"a part of {self.path} is a file, not a folder"
        if isinstance(exc, PermissionError):
            return "permission denied"
        if isinstance(exc, OSError) and exc.errno:
            return os.strerror(exc.errno)
        code = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
        if isinstance(code, str):
            words = _SQLITE_REASONS.get("_".join(code.split("_")[:2]), "SQLite refused")
            if code == "SQLITE_CANTOPEN" and not os.access(self.path, os.W_OK):
                words = f"permission denied: {self.path} is not writable"
            return f"{words} ({code})"
        return type(exc).__name__


def _ends_without_exit_hooks() -> bool:
    """Whether this process is a multiprocessing worker, which may end before atexit runs.

    A worker ends with ``os._exit`` and a pool's workers are terminated by
    signal (``with Pool() as pool`` does so on leaving the block), so neither
    the exit flush nor, often, the background thread's next tick ever comes.
    Such a process writes each record at once: a transaction per record costs
    about 20 µs against 4 µs in a batch, small beside a task sent to a worker.
    """
    process = sys.modules.get("multiprocessing.process")  # never imported for this
    parent = getattr(process, "parent_process", None)
    return parent is not None and parent() is not None


def _write_each(connection: sqlite3.Connection, rows: list[Row]) -> tuple[int, int]:
    """Write rows one at a time, repairing or setting aside the ones SQLite refuses.

    Returns how many were set aside, and how many not even that could hold.
    """
    set_aside = unstorable = 0
    for row in rows:
        try:
            connection.execute(_INSERT, row)
            continue
        except _ROW_ERRORS:
            pass
        repaired, reason = _repaired(row)
        if repaired is not None:
            try:
                connection.execute(_INSERT, repaired)
                continue
            except _ROW_ERRORS as exc:
                reason = f"SQLite refused it ({type(exc).__name__})"
        try:
            connection.execute(_SET_ASIDE, (time.time_ns(), reason, row[-1]))
            set_aside += 1
        except _ROW_ERRORS:  # not even its line: counted as dropped, never retried
            unstorable += 1
    return set_aside, unstorable


def _repaired(row: Row) -> tuple[Row | None, str]:
    """The row with text SQLite refuses escaped, or None and why it cannot be stored.

    Only the columns change; the JSON line is kept as written (it is ASCII, so
    SQLite always holds it), and it is what readers read.
    """
    start, duration = row[0], row[10]
    if not _is_int64(start):
        return None, "start is not a 64-bit integer"
    if not (_is_int64(duration) or (isinstance(duration, float) and isfinite(duration))):
        return None, "duration_ms is not a finite number"
    if row[1] is None or row[2] is None:
        return None, "kind or status is missing"
    columns = list(row)
    for index in _TEXT_COLUMNS:
        if columns[index] is not None:
            columns[index] = _storable_text(columns[index])
    return tuple(columns), ""


def _is_int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _storable_text(value: object) -> str:
    """Text SQLite can hold: lone surrogates (valid in JSON, not in UTF-8) as ``\\udcff``."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
