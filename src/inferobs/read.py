"""One reader for every place records are kept: the embedded store and JSON-line files.

`obs report`, the analyzer and the notebooks all read through here, so a line
pulled back from a cloud log service is read by the same code as one from the
local store. Reading never stops at the first bad line: what can be read is
returned, and each problem is reported with the file (or store) and line (or
row) it came from. Drift window records are read beside the invocations, by
the same rules (docs/store.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager

from .drift.counting import DRIFT_EVENT, DRIFT_SCHEMA
from .export.store import DATABASE, layout_1_windows, table_columns, unpack
from .record import EVENT, Invocation, RecordError, check_schema, decode_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    WindowKey = tuple[object, ...]

__all__ = [
    "SAME_NS",
    "Problem",
    "ReadError",
    "Reading",
    "check_layout",
    "follow_store",
    "function_of",
    "once",
    "read",
    "records_in",
    "store_notes",
    "stored_windows",
    "window_key",
]

_SQLITE_MAGIC = b"SQLite format 3\x00"
# Two records of one request id and kind are one when their starts are this close: a
# start that came back through a JSON double (Cloud Logging keeps numbers as doubles,
# exact to 256 ns this far from 1970) is right only to the microsecond.
SAME_NS = 1000
_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")  # names only a database has
_HEAD = 4096  # bytes looked at to tell a database, text and other binary apart


class ReadError(Exception):
    """A source could not be read at all; the message names it and says why."""


class Problem:
    """One thing that could not be read, and where it is."""

    __slots__ = ("location", "message")

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.message = message

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class Reading:
    """What was read: the records, oldest first, and the problems met on the way.

    ``windows`` are the drift window records (`inferobs.drift.counting`), by
    window start, each a dict as it was written: its counts nested by column.
    ``losses`` are records that never reached a store, one entry per store
    whose writers had to drop some (it could not be written for a while):
    nothing in the source to read, but a gap a report should mention.
    """

    __slots__ = ("losses", "problems", "records", "windows")

    def __init__(self) -> None:
        self.records: list[Invocation] = []
        self.windows: list[dict[str, Any]] = []
        self.problems: list[Problem] = []
        self.losses: list[Problem] = []


def read(
    sources: Iterable[str],
    *,
    since_ns: int | None = None,
    function: str | None = None,
) -> Reading:
    """Read records from store folders, store databases and JSON-line files.

    A line may hold records anywhere in it, after a prefix (log exports put a
    timestamp first) or beside other JSON; lines without any (the function's
    own logs, the platform's) are skipped. A record seen twice (the same id
    and kind, starts under a microsecond apart: say in the store and in a saved
    log, or pulled through Cloud Logging's doubles) counts once, and so
    does a drift window found again in a later source (`window_key`; within
    one source windows alike are parts of one window, emitted at each
    invocation with ``drift_every_invocation``, and all count). ``since_ns`` keeps invocations that
    start at it or later and windows that end after it; ``function`` keeps
    both of that function. A source that is missing, unreadable or holds no
    records is a problem, and reading goes on with the others; `ReadError` is
    raised only when nothing at all could be read.
    """
    reading = Reading()
    every: list[Invocation] = []  # the records of every source, in the order read
    seen_windows: set[WindowKey] = set()  # those of the sources read so far
    for source in sources:
        path = _database(source)
        try:
            if not os.path.exists(path):
                raise ReadError(f"{source}: no such file or store")
            with open(path, "rb") as handle:
                head = handle.read(_HEAD)
            is_database = head.startswith(_SQLITE_MAGIC)
            named_a_database = path != source or path.endswith(_DATABASE_SUFFIXES)
            if head and not is_database and named_a_database:
                raise ReadError(f"{source}: not a valid store database (not a SQLite file)")
            found, windows = (_read_store if is_database else _read_lines)(path, reading)
            if (
                not is_database
                and not found
                and not windows
                and not any(p.location.startswith(f"{path}:") for p in reading.problems)
            ):
                if _binary(head):
                    raise ReadError(f"{source}: neither a store database nor a file of JSON lines")
                raise ReadError(f"{source}: holds no inferobs records")
        except (ReadError, OSError) as exc:
            reading.problems.append(Problem(source, str(exc).removeprefix(f"{source}: ")))
            continue
        every.extend(found)
        here: set[WindowKey] = set()
        for window in windows:
            identity = window_key(window)
            if identity is not None:
                if identity in seen_windows:
                    continue
                # one emission is one window wherever it is found; a key without an
                # id may be parts of one window within a source: only later sources'
                # copies are dropped
                (seen_windows if identity[0] == WINDOW_ID else here).add(identity)
            if _keep_window(window, since_ns, function):
                reading.windows.append(window)
        seen_windows |= here
    reading.records = [r for r in once(every) if _keep(r, since_ns, function)]
    if not reading.records and not reading.windows and reading.problems:
        raise ReadError("; ".join(str(p) for p in (reading.problems + reading.losses)[:5]))
    reading.records.sort(key=_start)
    reading.windows.sort(key=_window_start)
    return reading


def once(records: list[Invocation]) -> list[Invocation]:
    """``records`` (in the order read) with each record seen twice kept once.

    Two records are one when they have the same request id and kind and their
    starts are under `SAME_NS` apart; in start order, a record that close to
    the one before it is a copy (so is a run of them). Of exact copies the
    first read is kept. The columnar reader keeps the same ones
    (`inferobs.analyze.frames`). Records without an id are all kept.
    """
    from itertools import pairwise

    order = sorted(
        (i for i, r in enumerate(records) if r.id is not None),
        key=lambda i: (records[i].id, records[i].kind, records[i].start, i),
    )
    copies = set()
    for before, at in pairwise(order):
        a, b = records[before], records[at]
        if a.id == b.id and a.kind == b.kind and b.start - a.start < SAME_NS:
            copies.add(at)
    return [r for i, r in enumerate(records) if i not in copies]


def window_key(window: dict[str, Any]) -> WindowKey | None:
    """What makes a drift window the same one in two sources: its ``window_id``, one per
    emission; for windows written without one, its instance, start, baseline and group
    (function, model, model version, variant). None without either: windows of unnamed
    instances are never taken for one another."""
    identity = window.get("window_id")
    if isinstance(identity, str):
        return (WINDOW_ID, identity)
    instance = window.get("instance_id")
    if instance is None:
        return None
    return (
        instance,
        window.get("window_start"),
        window.get("baseline_hash"),
        window.get("function"),
        window.get("model"),
        window.get("model_version"),
        window.get("variant"),
    )


def function_of(record: Invocation) -> str | None:
    """The name a record is reported and filtered under: its function, else its service."""
    return record.function or record.service


def _start(record: Invocation) -> int:
    return record.start


def _keep(record: Invocation, since_ns: int | None, function: str | None) -> bool:
    if since_ns is not None and record.start < since_ns:
        return False
    return function is None or function_of(record) == function


def _window_start(window: dict[str, Any]) -> int:
    start: int = window["window_start"]
    return start


def _keep_window(window: dict[str, Any], since_ns: int | None, function: str | None) -> bool:
    if since_ns is not None and window["window_end"] <= since_ns:
        return False
    return function is None or window.get("function") == function


def _read_lines(path: str, reading: Reading) -> tuple[list[Invocation], list[dict[str, Any]]]:
    """The records and windows in one file of lines; what cannot be read becomes a problem."""
    found: list[Invocation] = []
    windows: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        head = handle.read(4)
    encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    with open(path, encoding=encoding, errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if EVENT not in line and DRIFT_EVENT not in line:
                continue  # not ours: the function's own logs, the platform's lines
            records, found_windows, error = records_in(line)
            found.extend(records)
            windows.extend(found_windows)
            if not records and not found_windows:
                reading.problems.append(Problem(f"{path}:{number}", error))
    return found, windows


def records_in(line: str) -> tuple[list[Invocation], list[dict[str, Any]], str]:
    """Every record and drift window object on a line, wherever it starts; else why there
    was none."""
    records: list[Invocation] = []
    windows: list[dict[str, Any]] = []
    error = "no inferobs record on a line that mentions one"
    at = line.find("{")
    while at >= 0:
        try:
            data, end, non_finite = decode_json(line, at)
        except ValueError as exc:
            error = f"not a JSON line ({exc})"
            at = line.find("{", at + 1)
            continue
        event = data.get("event") if isinstance(data, dict) else None
        if event == EVENT:
            try:
                if non_finite is not None:
                    raise RecordError(non_finite)
                records.append(Invocation.from_dict(data))
            except RecordError as exc:
                error = str(exc)
            at = line.find("{", end)
        elif event == DRIFT_EVENT:
            try:
                windows.append(checked_window(data))
            except ValueError as exc:
                error = str(exc)
            at = line.find("{", end)
        else:
            at = line.find("{", at + 1)  # an object of someone else's: look inside it too
    return records, windows, error


def checked_window(data: dict[str, Any], *, whole: bool = False) -> dict[str, Any]:
    """``data`` when it is a drift window record this inferobs reads; else ValueError
    naming the field.

    Its counts must be whole numbers (``whole``: known to be, as the store's
    arrays are), nested by column as `DriftWindows` writes them; whether they
    fit a baseline is the analyzer's to judge. Other fields (``instance_psi``,
    what an exporter added) are kept as they are.
    """
    check_schema(data.get("schema"), DRIFT_SCHEMA, ValueError)
    for name in ("window_start", "window_end", "observations"):
        value = data.get(name, 0 if name == "observations" else None)
        if not _whole(value):
            raise ValueError(f"{name}={value!r}: expected an integer")
    for name in ("baseline_hash", "function", "model", "model_version", "variant", "instance_id"):
        value = data.get(name)
        if not isinstance(value, str) and (value is not None or name == "baseline_hash"):
            raise ValueError(f"{name}={value!r}: expected text")
    for part in ("prediction", "features"):
        columns = data.get(part)
        if not isinstance(columns, dict):
            raise ValueError(f"{part}: expected counts by column")
        for column, counts in columns.items():
            if not (whole or _counts(counts)):
                raise ValueError(f"{part}.{column}: expected counts (whole numbers)")
    return data


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(value: object) -> bool:
    """Whole numbers, in lists and dicts as a column's counts are nested."""
    if isinstance(value, list):
        if set(map(type, value)) <= _INT:  # a list of counts, checked in C (bool is no int)
            return True
        return all(_counts(v) for v in value)
    if isinstance(value, dict):
        return all(_counts(v) for v in value.values())
    return _whole(value)


_INT = {int}


def _read_store(path: str, reading: Reading) -> tuple[list[Invocation], list[dict[str, Any]]]:
    """The records and windows in a store; rows that cannot be read, and what never reached
    it, are noted."""
    found = []
    with _opened(path) as connection:
        check_layout(connection, path)
        for rowid, line in connection.execute("SELECT rowid, record FROM invocations"):
            try:
                found.append(Invocation.from_json(line))
            except RecordError as exc:
                reading.problems.append(Problem(f"{path}#row{rowid}", str(exc)))
        windows = []
        shapes: dict[str, Any] = {}  # each distinct shape's JSON, parsed once
        _, rows, _ = stored_windows(connection, path, reading.problems)
        for row in rows:
            try:
                windows.append(_window_of_row(row, shapes))
            except ValueError as exc:
                reading.problems.append(Problem(f"{path}#window{row[0]}", str(exc)))
        store_notes(connection, path, reading.problems, reading.losses)
    return found, windows


# a window row as readers get it: its rowid, then the drift_windows columns in order
_WINDOWS = (
    "SELECT rowid, window_start, window_end, function, model, model_version, variant,"
    " instance_id, baseline_hash, observations, shape, counts, record,"
    " CASE WHEN json_valid(record) THEN json_extract(record, '$.window_id') END"
    " FROM drift_windows"
)
SHAPE, COUNTS, RECORD, ID = 10, 11, 12, 13  # where a window row holds them
WINDOW_ID = "window_id"  # the first part of a key made of a window's id


def stored_windows(
    connection: sqlite3.Connection,
    path: str,
    problems: list[Problem],
    baseline_hash: str | None = None,
) -> tuple[int, Iterable[tuple[Any, ...]], int]:
    """A store's window rows (those of one baseline, oldest first, when ``baseline_hash``
    is given): how many, the rows, and how many windows of other baselines were left out.

    The rows are a cursor on the store's own table; a layout 1 store's windows
    are converted in memory, the store unchanged (rows that cannot be are
    problems). Run it in a read transaction when the count must match the rows.
    """
    columns = table_columns(connection, "drift_windows")
    if not columns:
        return 0, [], 0
    if "feature" in columns:
        rows, bad = layout_1_windows(connection)
        problems.extend(Problem(f"{path}#window{rowid}", reason) for rowid, reason, _ in bad)
        rows.sort(key=lambda row: (row[1], row[0]))
        mine = [row for row in rows if baseline_hash in (None, row[8])]
        return len(mine), mine, len(rows) - len(mine)
    if baseline_hash is None:  # every window, as written (a sort would move the blobs)
        ((count,),) = connection.execute("SELECT count(*) FROM drift_windows").fetchall()
        return count, connection.execute(f"{_WINDOWS} ORDER BY rowid"), 0
    # both counts from the index, never the rows' blobs
    ((count,),) = connection.execute(
        "SELECT count(*) FROM drift_windows WHERE baseline_hash = ?", (baseline_hash,)
    ).fetchall()
    ((total,),) = connection.execute("SELECT count(*) FROM drift_windows").fetchall()
    other = total - count
    cursor = connection.execute(
        f"{_WINDOWS} WHERE baseline_hash = ? ORDER BY window_start, rowid", (baseline_hash,)
    )
    return count, cursor, other


def _window_of_row(row: tuple[Any, ...], shapes: dict[str, Any]) -> dict[str, Any]:
    """A stored window row as the record that was written: its line, its counts put back."""
    import json

    from .drift.layout import unflatten

    window = json.loads(row[RECORD])
    if not isinstance(window, dict):
        raise ValueError("its record is not a JSON object")
    text = row[SHAPE]
    try:
        if text not in shapes:
            shapes[text] = json.loads(text)
        flat = unpack(row[COUNTS])
        nested, end = unflatten(shapes[text], flat)
    except (TypeError, RecursionError):  # a row someone else wrote: not our columns' types
        raise ValueError("its shape or counts are not a window's") from None
    if end != len(flat) or not isinstance(nested, dict):
        raise ValueError("the counts do not fit their shape")
    window.update(nested)
    return checked_window(window, whole=True)


def check_layout(connection: sqlite3.Connection, path: str) -> None:
    """Refuse a store laid out by a newer inferobs: its tables may not mean what we think."""
    from .export.store import STORE_SCHEMA_VERSION

    row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    layout = row[0] if row else None
    if not (isinstance(layout, str) and layout.isdigit()):
        raise ReadError(f"{path}: not an inferobs store (its meta table names no layout)")
    if int(layout) > STORE_SCHEMA_VERSION:
        raise ReadError(
            f"{path}: laid out by a newer inferobs (store layout {layout}; this one reads up "
            f"to {STORE_SCHEMA_VERSION}); upgrade inferobs to read it"
        )


def store_notes(
    connection: sqlite3.Connection, path: str, problems: list[Problem], losses: list[Problem]
) -> None:
    """What a store says of the records it could not hold (set aside) or never got (dropped)."""
    tables = {name for (name,) in connection.execute(_TABLES)}
    if "set_aside" in tables:  # stores written before it existed have none
        for rowid, reason in connection.execute("SELECT rowid, reason FROM set_aside"):
            problems.append(
                Problem(f"{path}#set_aside{rowid}", f"set aside by its writer: {reason}")
            )
    (dropped,) = connection.execute(_DROPPED).fetchone() or ("0",)
    if str(dropped).isdigit() and int(dropped):
        losses.append(
            Problem(
                path,
                f"{int(dropped)} records never reached this store: its writers dropped "
                f"them while it could not be written",
            )
        )


_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
_DROPPED = "SELECT value FROM meta WHERE key = 'dropped'"


def follow_store(
    source: str, after: int, *, last: int | None = None
) -> tuple[list[Invocation], int]:
    """Records written to the store after row ``after``, and the last row read.

    For `obs tail`: call again with the returned row to get only what is new;
    ``last`` limits a call to the newest rows, so starting on a big store is
    quick. Rows that cannot be read are skipped (a report reads them with `read`).
    """
    path = _database(source)
    if not os.path.exists(path):
        raise ReadError(f"{source}: no such store")
    query = "SELECT rowid, record FROM invocations WHERE rowid > ? ORDER BY rowid DESC"
    parameters: list[object] = [after]
    if last is not None:
        query += " LIMIT ?"
        parameters.append(last)
    with _opened(path) as connection:
        rows = connection.execute(query, parameters).fetchall()
    records = []
    for rowid, line in reversed(rows):
        after = rowid
        try:
            records.append(Invocation.from_json(line))
        except RecordError:
            continue
    return records, after


def _database(source: str) -> str:
    """A store folder's database file; any other path as it is."""
    return os.path.join(source, DATABASE) if os.path.isdir(source) else source


@contextmanager
def _opened(path: str) -> Iterator[sqlite3.Connection]:
    """A store opened read-only (a reader never changes the records); errors as `ReadError`."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            yield connection
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ReadError(f"{path}: not a readable inferobs store ({exc})") from None


def _binary(head: bytes) -> bool:
    """Bytes no text file of lines holds (UTF-16 text, with its mark, has NULs of its own)."""
    return b"\x00" in head and head[:2] not in (b"\xff\xfe", b"\xfe\xff")
