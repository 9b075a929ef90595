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

Drift windows (`export_window`) travel with the invocation rows: the same
batches and transactions, the same backlog and the same set-aside rules. A
window is one row whose bin counts are one array of 64-bit integers, so the
analyzer reads a month of them as a few large blobs (docs/store.md, "Layout").
A store laid out by an older inferobs is migrated in place, once, by the first
writer that opens it.
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
from ..runtime import ends_without_exit_hooks
from .lines import encode, encoded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    from ..record import Invocation

    Row = tuple[object, ...]
    Pending: TypeAlias = "Row | WindowRow"  # what waits to be written

__all__ = [
    "DATABASE",
    "REPORT_VALUES",
    "SCHEMA",
    "NewerLayoutError",
    "StoreExporter",
    "WindowRow",
    "connect",
    "insert_rows",
    "invocation_row",
    "layout_1_windows",
    "pack",
    "put_aside",
    "table_columns",
    "unpack",
]

DATABASE = "records.db"
# 3: the tables `obs pull` fills beside the records (platform reports, metric series,
# function configurations, how far each cloud source was read); a layout 2 store gains
# them on opening. 2: one drift_windows row per window record (counts as one array with
# its shape); 1 kept one row per window, instance and feature, and is migrated on opening
STORE_SCHEMA_VERSION = 3
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
-- Drift windows: one row per window record (one instance's counts for one
-- clock-aligned window). All its bin counts are one array, never a row per
-- feature or per bin, so a month of windows reads as large blobs in few rows.
CREATE TABLE IF NOT EXISTS drift_windows (
    window_start  INTEGER NOT NULL,  -- Unix epoch ns, clock-aligned
    window_end    INTEGER NOT NULL,
    function      TEXT,
    model         TEXT,
    model_version TEXT,
    variant       TEXT,
    instance_id   TEXT,
    baseline_hash TEXT    NOT NULL,
    observations  INTEGER NOT NULL,
    shape         TEXT    NOT NULL,  -- JSON: drift.layout.shape of {prediction, features}
    counts        BLOB    NOT NULL,  -- drift.layout.flatten of the same, little-endian int64
    record        TEXT    NOT NULL   -- the window's JSON line without its counts
);
CREATE INDEX IF NOT EXISTS drift_windows_by_baseline ON drift_windows (baseline_hash, window_start);
-- What `obs pull` brings back besides our records, each row with the cloud source it
-- came from (`inferobs.pull`: provider, region or project, function, feed) and when.
-- The platform's own report of each invocation (Lambda's REPORT line): it exists even
-- where our record never got written (a crash, a timeout, running out of memory).
CREATE TABLE IF NOT EXISTS platform_reports (
    source            TEXT    NOT NULL,
    pulled_at         INTEGER NOT NULL,  -- Unix epoch ns
    function          TEXT    NOT NULL,
    id                TEXT    NOT NULL,  -- the platform's request id
    end_ns            INTEGER,           -- Unix epoch ns of its end, when the report says
    duration_ms       REAL,
    billed_ms         REAL,
    memory_mb         INTEGER,
    max_memory_mb     INTEGER,
    init_ms           REAL,
    restore_ms        REAL,
    billed_restore_ms REAL,
    status            TEXT,
    error_type        TEXT,
    PRIMARY KEY (function, id)           -- a report pulled twice is kept once
);
-- The platform's metric series, one row per point, and a point pulled again (late data
-- fills a recent period in) replaces the one kept.
CREATE TABLE IF NOT EXISTS metric_points (
    source        TEXT    NOT NULL,
    pulled_at     INTEGER NOT NULL,
    function      TEXT    NOT NULL,
    metric        TEXT    NOT NULL,      -- the platform's name (`Invocations`, ...)
    statistic     TEXT    NOT NULL,      -- Sum, Average, Maximum, ...
    period_s      INTEGER NOT NULL,
    at            INTEGER NOT NULL,      -- Unix epoch ns of the period's start
    value         REAL    NOT NULL,
    PRIMARY KEY (function, metric, statistic, period_s, at)
);
-- A function's configuration as a pull found it (memory, architecture, timeout,
-- provisioned concurrency in force): a cost report prices the setup the user has.
CREATE TABLE IF NOT EXISTS function_configs (
    source        TEXT    NOT NULL,
    pulled_at     INTEGER NOT NULL,
    provider      TEXT    NOT NULL,      -- aws | gcp | azure
    region        TEXT,
    function      TEXT    NOT NULL,
    memory_mb     INTEGER,
    arch          TEXT,
    timeout_s     REAL,
    provisioned   INTEGER,               -- environments kept warm (Lambda: allocated PC)
    config        TEXT    NOT NULL       -- JSON: what the platform said, credentials never
);
-- How far each cloud source has been read: the next pull starts a few minutes before
-- `mark` (log events arrive late), and `resume` holds an unfinished pull's place (JSON).
CREATE TABLE IF NOT EXISTS pulls (
    source        TEXT    PRIMARY KEY,
    first         INTEGER NOT NULL,      -- Unix epoch ns: read from here ...
    mark          INTEGER NOT NULL,      -- ... up to here, all of it
    pulled_at     INTEGER NOT NULL,
    resume        TEXT
);
"""

# platform_reports' columns of what a report says, beside its source, pulled_at,
# function and id: written by `inferobs.pull.landing`, read by the store source
REPORT_VALUES = (
    "end_ns",
    "duration_ms",
    "billed_ms",
    "memory_mb",
    "max_memory_mb",
    "init_ms",
    "restore_ms",
    "billed_restore_ms",
    "status",
    "error_type",
)

_INSERT = (
    "INSERT INTO invocations (start, kind, status, function, version, model, model_version,"
    " variant, instance_id, cold_start, duration_ms, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_WINDOW = (
    "INSERT INTO drift_windows (window_start, window_end, function, model, model_version,"
    " variant, instance_id, baseline_hash, observations, shape, counts, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_ASIDE = "INSERT INTO set_aside (at, reason, record) VALUES (?, ?, ?)"
_SET_LAYOUT = (
    "INSERT INTO meta (key, value) VALUES ('schema', ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
# SCHEMA one statement at a time: executescript would commit the transaction it runs in
_STATEMENTS = [statement for statement in SCHEMA.split(";") if statement.strip()]
_LAYOUT_1 = "drift_windows_layout_1"  # the old table, while it is converted
_COUNTS = ("prediction", "features")  # a window's keys that hold counts
_WINDOW_TEXT_COLUMNS = range(2, 8)  # function .. baseline_hash, in _INSERT_WINDOW's order
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
    """Open (creating, or migrating from an older layout, if needed) the store's database
    in folder ``path``.

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
        except BaseException as exc:
            # several processes creating the store at once: switching a new file to
            # WAL is refused at once (no busy handler runs for it), so wait here
            busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
            if not busy or time.monotonic() + pause > deadline:
                connection.close()
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


class NewerLayoutError(Exception):
    """The store was laid out by a newer inferobs: this one must not write into it."""


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
    if _layout(connection) == STORE_SCHEMA_VERSION:
        return
    # One writer lays the store out (or migrates it) while the others wait for
    # its lock, then find the work done when they look again inside their own.
    connection.execute("BEGIN IMMEDIATE")
    try:
        layout = _layout(connection)
        if layout is not None and layout > STORE_SCHEMA_VERSION:
            raise NewerLayoutError(
                f"laid out by a newer inferobs (store layout {layout}; this one writes "
                f"layout {STORE_SCHEMA_VERSION})"
            )
        if layout != STORE_SCHEMA_VERSION:
            old = "feature" in table_columns(connection, "drift_windows")
            if old:
                connection.execute(f"ALTER TABLE drift_windows RENAME TO {_LAYOUT_1}")
            for statement in _STATEMENTS:
                connection.execute(statement)
            if old:
                _migrate_windows(connection)
            connection.execute(_SET_LAYOUT, (str(STORE_SCHEMA_VERSION),))
        connection.execute("COMMIT")
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:  # none was begun, or SQLite already rolled it back
            pass
        raise


def _layout(connection: sqlite3.Connection) -> int | None:
    """The layout the store's meta table names; None for a new (or unmarked) database."""
    if not table_columns(connection, "meta"):
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    value = row[0] if row else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def table_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The names of ``table``'s columns; empty when there is no such table."""
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def _migrate_windows(connection: sqlite3.Connection) -> None:
    """Layout 1's windows (renamed to `_LAYOUT_1`) into layout 2's table, in the caller's
    transaction; rows that cannot be converted are set aside with the reason."""
    rows, bad = layout_1_windows(connection, _LAYOUT_1)
    connection.executemany(_INSERT_WINDOW, [row[1:] for row in rows])
    now = time.time_ns()
    connection.executemany(_SET_ASIDE, [(now, reason, line) for _, reason, line in bad])
    connection.execute(f"DROP TABLE {_LAYOUT_1}")


def layout_1_windows(
    connection: sqlite3.Connection, table: str = "drift_windows"
) -> tuple[list[Row], list[tuple[int, str, str]]]:
    """Layout 1's windows as layout 2's rows, each led by the rowid of its first row in
    ``table``; and, for each row that cannot be converted, its rowid, why, and a JSON line
    of what it held.

    Layout 1 kept a row per window, instance and feature; the rows of one window
    (start, end, instance, baseline) become one record: the feature named
    ``prediction`` as the prediction (under that name), the others as features,
    observations the prediction's total (0 without one), no function, model,
    version or variant (layout 1 had none). Writers migrate with it; readers
    read an older store through it, changing nothing.
    """
    from ..drift.counting import DRIFT_EVENT, DRIFT_SCHEMA

    windows: dict[tuple[Any, ...], tuple[int, dict[str, Any], dict[str, Any]]] = {}
    bad = []
    for rowid, start, end, instance, baseline, feature, blob in connection.execute(
        "SELECT rowid, window_start, window_end, instance_id, baseline_hash, feature, counts"
        f" FROM {table} ORDER BY window_start, window_end, instance_id, baseline_hash, rowid"
    ):
        try:
            if not (_is_int64(start) and _is_int64(end)):
                raise ValueError("window_start or window_end is not a 64-bit integer")
            if not isinstance(baseline, str) or not isinstance(feature, str):
                raise ValueError("baseline_hash or feature is not text")
            counts = unpack(blob)
        except (TypeError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "its counts are not an array"
            line = _line(
                {
                    "event": DRIFT_EVENT,
                    "store_layout": 1,
                    "window_start": start,
                    "window_end": end,
                    "instance_id": instance,
                    "baseline_hash": baseline,
                    "feature": feature,
                    "counts_hex": blob.hex() if isinstance(blob, bytes) else None,
                }
            )
            bad.append((rowid, f"{reason} (a layout 1 window row)", line))
            continue
        key = (start, end, instance, baseline)
        if key not in windows:
            windows[key] = (rowid, {}, {})
        _, prediction, features = windows[key]
        if feature == "prediction":
            prediction["prediction"] = counts
        else:
            features[feature] = counts
    rows: list[Row] = []
    for (start, end, instance, baseline), (rowid, prediction, features) in windows.items():
        observations = sum(prediction.get("prediction", ()))
        record = {
            "event": DRIFT_EVENT,
            "schema": DRIFT_SCHEMA,
            "window_start": start,
            "window_end": end,
            "baseline_hash": baseline,
            "instance_id": instance,
            "observations": observations,
        }
        form, flat = _shape_and_counts({"prediction": prediction, "features": features})
        group = (None, None, None, None)  # function, model, model_version, variant
        line = _line(record)
        rows.append((rowid, start, end, *group, instance, baseline, observations, form, flat, line))
    return rows, bad


def _line(data: dict[str, Any]) -> str:
    """Any record dict as its compact JSON line (ASCII: SQLite always holds it)."""
    return encode(data)


def pack(counts: list[int]) -> bytes:
    """Counts as the store keeps them: little-endian int64; OverflowError beyond 64 bits."""
    from array import array  # only once windows come: not on every handler's cold path

    packed = array("q", counts)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack(blob: bytes) -> list[int]:
    """The counts `pack` made; ValueError when ``blob`` is not whole 64-bit integers."""
    from array import array

    counts = array("q")
    try:
        counts.frombytes(blob)
    except ValueError:
        raise ValueError("its counts are not whole 64-bit integers") from None
    if sys.byteorder == "big":
        counts.byteswap()
    return counts.tolist()


def _shape_and_counts(nested: dict[str, Any]) -> tuple[str, bytes]:
    """A window's counts (``{"prediction": ..., "features": ...}``) as the store's
    ``shape`` and ``counts`` columns; ValueError, TypeError or OverflowError when they
    are not 64-bit whole numbers."""
    from ..drift.layout import flatten, shape

    return encode(shape(nested)), pack(flatten(nested))


def invocation_row(record: Invocation) -> Row:
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
        encoded(record),
    )


class WindowRow:
    """A drift window waiting beside invocation rows: its row, and its whole JSON line
    for the set_aside table should SQLite refuse the row."""

    __slots__ = ("line", "reason", "row")

    def __init__(self, window: dict[str, Any]) -> None:
        self.line = _line(window)
        self.reason = ""  # why no row can hold it; its row then has no shape
        try:
            form, flat = _shape_and_counts({k: window[k] for k in _COUNTS if k in window})
        except (TypeError, ValueError, OverflowError, RecursionError):
            form, flat = None, None
            self.reason = "its counts are not 64-bit whole numbers"
        for name in ("window_start", "window_end", "observations"):
            if not _is_int64(window.get(name, 0 if name == "observations" else None)):
                form, self.reason = None, f"{name} is not a 64-bit integer"
        if not isinstance(window.get("baseline_hash"), str):
            form, self.reason = None, "baseline_hash is missing or not text"
        self.row: Row = (
            window.get("window_start"),
            window.get("window_end"),
            window.get("function"),
            window.get("model"),
            window.get("model_version"),
            window.get("variant"),
            window.get("instance_id"),
            window.get("baseline_hash"),
            window.get("observations", 0),
            form,  # NULL for a window no row can hold: SQLite refuses it, and it is set aside
            flat,
            _line({k: v for k, v in window.items() if k not in _COUNTS}),
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

    writes_json = True  # the record builder primes `encoded` for it

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
        self._pending: list[Pending] = []  # invocation rows and drift windows, in order
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
        self._queue(invocation_row(record))

    def export_window(self, window: dict[str, Any]) -> None:
        """Queue a drift window record (`inferobs.drift.counting`) with the invocation rows.

        Never raises: a window that cannot even be queued is a fault
        (``store_window``); one SQLite cannot hold is set aside when written.
        """
        try:
            self._queue(WindowRow(window))
        except Exception as exc:
            fault("store_window", f"a drift window could not be queued for {self.path}", exc)

    def _queue(self, row: Pending) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(row)
            full = len(self._pending) >= self.batch_size
            if self._each is None:
                self._each = ends_without_exit_hooks()
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

    def _write(self, rows: list[Pending], dropped: int) -> tuple[int, int]:
        """One transaction: the rows, and ``dropped`` added to the store's count.

        Returns how many rows were set aside, and how many could not be stored
        even there (to be counted as dropped).
        """
        connection = self._connect()
        set_aside = unstorable = 0
        connection.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                set_aside, unstorable = insert_rows(connection, rows)
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

    def _keep(self, rows: list[Pending]) -> None:
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
        if isinstance(exc, NewerLayoutError):
            return str(exc)
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


def insert_rows(connection: sqlite3.Connection, rows: list[Pending]) -> tuple[int, int]:
    """Invocation rows (`invocation_row`) and drift windows (`WindowRow`), in the caller's
    transaction.

    One bad row never holds back the others: when SQLite refuses the batch, the
    rows are written one by one, and those it still refuses are repaired or
    set aside with the reason. Returns how many were set aside, and how many
    not even that could hold.
    """
    set_aside = unstorable = 0
    connection.execute("SAVEPOINT batch")
    try:
        connection.executemany(_INSERT, [r for r in rows if not isinstance(r, WindowRow)])
        windows = [r.row for r in rows if isinstance(r, WindowRow)]
        if windows:
            connection.executemany(_INSERT_WINDOW, windows)
    except _ROW_ERRORS:  # one row SQLite refuses: write the others one by one
        connection.execute("ROLLBACK TO batch")
        set_aside, unstorable = _write_each(connection, rows)
    connection.execute("RELEASE batch")
    return set_aside, unstorable


def put_aside(connection: sqlite3.Connection, reason: str, line: str) -> None:
    """Keep ``line``, which holds no record that can be stored, with the reason."""
    connection.execute(_SET_ASIDE, (time.time_ns(), reason, line))


def _write_each(connection: sqlite3.Connection, rows: list[Pending]) -> tuple[int, int]:
    """Write rows one at a time, repairing or setting aside the ones SQLite refuses.

    Returns how many were set aside, and how many not even that could hold.
    """
    set_aside = unstorable = 0
    for item in rows:
        if isinstance(item, WindowRow):
            insert, row, line = _INSERT_WINDOW, item.row, item.line
        else:
            insert, row, line = _INSERT, item, str(item[-1])
        try:
            connection.execute(insert, row)
            continue
        except _ROW_ERRORS:
            pass
        repaired, reason = _repaired_window(item) if isinstance(item, WindowRow) else _repaired(row)
        if repaired is not None:
            try:
                connection.execute(insert, repaired)
                continue
            except _ROW_ERRORS as exc:
                reason = f"SQLite refused it ({type(exc).__name__})"
        try:
            connection.execute(_SET_ASIDE, (time.time_ns(), reason, line))
            set_aside += 1
        except _ROW_ERRORS:  # not even its line: counted as dropped, never retried
            unstorable += 1
    return set_aside, unstorable


def _repaired_window(window: WindowRow) -> tuple[Row | None, str]:
    """A window's row with text SQLite refuses escaped, or None and why no row can hold it."""
    if window.reason:
        return None, window.reason
    columns = list(window.row)
    for index in _WINDOW_TEXT_COLUMNS:
        if columns[index] is not None:
            columns[index] = _storable_text(columns[index])
    return tuple(columns), ""


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
