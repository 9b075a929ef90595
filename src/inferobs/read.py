"""One reader for every place records are kept: the embedded store and JSON-line files.

`obs report`, the analyzer and the notebooks all read through here, so a line
pulled back from a cloud log service is read by the same code as one from the
local store. Reading never stops at the first bad line: what can be read is
returned, and each problem is reported with the file (or store) and line (or
row) it came from.
"""

from __future__ import annotations

import os
import sqlite3

from .export.store import DATABASE
from .record import EVENT, Invocation, RecordError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Problem", "ReadError", "Reading", "follow_store", "read"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MARKER = EVENT.encode()


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
    """What was read: the records, oldest first, and the problems met on the way."""

    __slots__ = ("problems", "records")

    def __init__(self) -> None:
        self.records: list[Invocation] = []
        self.problems: list[Problem] = []


def read(
    sources: Iterable[str],
    *,
    since_ns: int | None = None,
    function: str | None = None,
) -> Reading:
    """Read records from store folders, store databases and JSON-line files.

    A line counts as a record when it holds an ``inferobs.invocation`` JSON
    object, possibly after a prefix (log exports put timestamps first); other
    lines (the function's own logs, the platform's) are skipped. Raises
    `ReadError` for a source that does not exist or holds no records at all.
    """
    reading = Reading()
    for source in sources:
        path = _database(source)
        if not os.path.exists(path):
            raise ReadError(f"{source}: no such file or store")
        with open(path, "rb") as handle:
            is_database = handle.read(16) == _SQLITE_MAGIC
        if is_database:  # a store is ours even while empty
            _read_store(path, reading, since_ns, function)
        elif not _read_lines(path, reading, since_ns, function):
            raise ReadError(f"{source}: holds no inferobs records")
    reading.records.sort(key=_start)
    return reading


def _start(record: Invocation) -> int:
    return record.start


def _keep(record: Invocation, since_ns: int | None, function: str | None) -> bool:
    if since_ns is not None and record.start < since_ns:
        return False
    return function is None or record.function == function


def _read_lines(path: str, reading: Reading, since_ns: int | None, function: str | None) -> int:
    """Read one JSON-lines file; the number of lines that claimed to be records."""
    claimed = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if _MARKER not in raw:
                continue  # not ours: the function's own logs, the platform's lines
            claimed += 1
            start = raw.find(b"{")
            try:
                if start < 0:
                    raise RecordError("no JSON object on the line")
                record = Invocation.from_json(raw[start:])
            except RecordError as exc:
                reading.problems.append(Problem(f"{path}:{number}", str(exc)))
                continue
            if _keep(record, since_ns, function):
                reading.records.append(record)
    return claimed


def _read_store(path: str, reading: Reading, since_ns: int | None, function: str | None) -> None:
    query = "SELECT rowid, record FROM invocations WHERE start >= ?"
    parameters: list[object] = [since_ns or 0]
    if function is not None:
        query += " AND function = ?"
        parameters.append(function)
    for rowid, line in _query(path, query, parameters):
        try:
            reading.records.append(Invocation.from_json(line))
        except RecordError as exc:
            reading.problems.append(Problem(f"{path}#row{rowid}", str(exc)))


def follow_store(source: str, after: int) -> tuple[list[Invocation], int]:
    """Records written to the store after row ``after``, and the last row read.

    For `obs tail`: call again with the returned row to get only what is new.
    Rows that cannot be read are skipped (a report reads them with `read`).
    """
    path = _database(source)
    if not os.path.exists(path):
        raise ReadError(f"{source}: no such store")
    query = "SELECT rowid, record FROM invocations WHERE rowid > ? ORDER BY rowid"
    records = []
    for rowid, line in _query(path, query, [after]):
        after = rowid
        try:
            records.append(Invocation.from_json(line))
        except RecordError:
            continue
    return records, after


def _database(source: str) -> str:
    """A store folder's database file; any other path as it is."""
    return os.path.join(source, DATABASE) if os.path.isdir(source) else source


def _query(path: str, query: str, parameters: list[object]) -> list[tuple[int, str]]:
    """Rows from a store opened read-only, so readers never block or alter writers."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            return connection.execute(query, parameters).fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ReadError(f"{path}: not a readable inferobs store ({exc})") from None
