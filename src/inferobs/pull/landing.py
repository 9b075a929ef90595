"""Where a pull lands: the embedded store, one transaction per page fetched.

A page's records, the platform reports on it and the pull's place (the page
token to ask for next) are committed together, so a pull stopped at any point
(throttled past its retries, credentials expired, Ctrl-C) keeps every page it
fetched, and the next one resumes after the last page kept. Records already in
the store are not stored again: a pull re-reads a few minutes before its mark,
and a resumed piece may be read again from its start (`Landing.known`).

Our lines are read by the one reader's rules (`inferobs.read.records_in`); a
line that mentions our event but holds no readable record is put in the
store's ``set_aside`` table with the reason, so `obs report` names it as it
names a bad line of a file.
"""

from __future__ import annotations

import json
import time

from ..drift.counting import DRIFT_EVENT
from ..export.store import (
    REPORT_VALUES,
    WindowRow,
    connect,
    insert_rows,
    invocation_row,
    put_aside,
)
from ..read import records_in
from ..record import EVENT

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Mapping
    from typing import Any

    from ..export.store import Pending

__all__ = ["Counts", "Covered", "Known", "Landing", "RecordKey"]

RecordKey = tuple[str, int, str]  # id, start, kind: what makes two records one (the reader's rule)

_INSERT_REPORT = (
    "INSERT OR IGNORE INTO platform_reports (source, pulled_at, function, id, "
    + ", ".join(REPORT_VALUES)
    + ") VALUES (?, ?, ?, ?"
    + ", ?" * len(REPORT_VALUES)
    + ")"
)
_UPSERT_POINT = (
    "INSERT INTO metric_points (source, pulled_at, function, metric, statistic, period_s, at,"
    " value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (function, metric, statistic,"
    " period_s, at) DO UPDATE SET value = excluded.value, pulled_at = excluded.pulled_at,"
    " source = excluded.source"
)
_INSERT_CONFIG = (
    "INSERT INTO function_configs (source, pulled_at, provider, region, function, memory_mb,"
    " arch, timeout_s, provisioned, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_PLACE = (
    "INSERT INTO pulls (source, first, mark, pulled_at, resume) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (source) DO UPDATE SET first = excluded.first, mark = excluded.mark,"
    " pulled_at = excluded.pulled_at, resume = excluded.resume"
)
# a drift window is emitted at its end or later: windows started this long before a
# piece may be the ones its events hold (a window is minutes to an hour long)
_LONGEST_WINDOW_NS = 24 * 3600 * 1_000_000_000


class Covered:
    """How far one source has been read: all of [first, mark], and an unfinished pull's place."""

    __slots__ = ("first", "mark", "resume")

    def __init__(self, first: int, mark: int, resume: dict[str, Any] | None) -> None:
        self.first = first
        self.mark = mark
        self.resume = resume


class Known:
    """What the store held before a piece was read: record keys, and drift window ids."""

    __slots__ = ("records", "windows")

    def __init__(self) -> None:
        self.records: set[RecordKey] = set()
        self.windows: set[str] = set()


class Counts:
    """What a pull stored: each kind counted once, whatever was fetched twice."""

    __slots__ = ("events", "metric_points", "records", "reports", "set_aside", "skipped", "windows")

    def __init__(self) -> None:
        self.events = 0  # log events (lines) fetched
        self.records = 0  # invocation records stored
        self.windows = 0  # drift windows stored
        self.reports = 0  # platform reports stored
        self.metric_points = 0
        self.set_aside = 0  # lines of ours that held no readable record
        self.skipped = 0  # records and drift windows already in the store

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Landing:
    """The store a pull writes into; one connection, used by one thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.connection: sqlite3.Connection = connect(path)

    def close(self) -> None:
        self.connection.close()

    def covered(self, source: str) -> Covered | None:
        """How far ``source`` has been read before; None when it never was."""
        row = self.connection.execute(
            "SELECT first, mark, resume FROM pulls WHERE source = ?", (source,)
        ).fetchone()
        if row is None:
            return None
        first, mark, resume = row
        return Covered(first, mark, json.loads(resume) if resume else None)

    def known(self, low_ns: int, high_ns: int) -> Known:
        """The records and drift windows already stored that started between ``low_ns``
        and ``high_ns``: what pages fetched again may hold."""
        known = Known()
        rows = self.connection.execute(
            "SELECT json_extract(record, '$.id'), start, kind FROM invocations"
            " WHERE start BETWEEN ? AND ?",
            (low_ns, high_ns),
        )
        known.records = {(i, start, kind) for i, start, kind in rows if isinstance(i, str)}
        windows = self.connection.execute(
            "SELECT json_extract(record, '$.window_id') FROM drift_windows"
            " WHERE window_start BETWEEN ? AND ?",
            (low_ns - _LONGEST_WINDOW_NS, high_ns),
        )
        known.windows = {i for (i,) in windows if isinstance(i, str)}
        return known

    def page(
        self,
        source: str,
        lines: Iterable[str],
        reports: Iterable[Mapping[str, Any]],
        *,
        function: str,
        known: Known,
        place: Covered,
    ) -> Counts:
        """One page of a log source, its reports, and the pull's place after it: all or nothing.

        ``known`` holds what was stored before the piece was begun (`known`),
        and is skipped; the piece's own pages never hold one record twice, so
        their keys are not kept: memory stays that of a page however long the
        piece. Drift windows are known by their ``window_id`` (one per emission);
        those written without one are stored as found, since alike windows of one
        source are parts of one window.
        """
        counts = Counts()
        rows: list[Pending] = []
        unread: list[tuple[str, str]] = []
        for line in lines:
            counts.events += 1
            if EVENT not in line and DRIFT_EVENT not in line:
                continue
            records, windows, error = records_in(line)
            for record in records:
                if known.records and (record.id, record.start, record.kind) in known.records:
                    counts.skipped += 1
                    continue
                rows.append(invocation_row(record))
                counts.records += 1
            for window in windows:
                if known.windows and window.get("window_id") in known.windows:
                    counts.skipped += 1
                    continue
                rows.append(WindowRow(window))
                counts.windows += 1
            if not records and not windows:
                unread.append((f"pulled from {source}: {error}", line))
        now = time.time_ns()
        report_rows = [
            (source, now, function, report["id"], *(report.get(c) for c in REPORT_VALUES))
            for report in reports
        ]
        with self._transaction():
            if rows:
                insert_rows(self.connection, rows)
            for reason, line in unread:
                put_aside(self.connection, reason, line)
            before = self.connection.total_changes
            self.connection.executemany(_INSERT_REPORT, report_rows)
            counts.reports = self.connection.total_changes - before
            self._place(source, place, now)
        counts.set_aside = len(unread)
        return counts

    def metric_points(
        self,
        source: str,
        function: str,
        points: Iterable[tuple[str, str, int, int, float]],
        place: Covered,
    ) -> int:
        """Metric points (metric, statistic, period, period start in ns, value), replacing the
        points kept for the same periods, and the pull's place after them."""
        now = time.time_ns()
        rows = [(source, now, function, *point) for point in points]
        with self._transaction():
            self.connection.executemany(_UPSERT_POINT, rows)
            self._place(source, place, now)
        return len(rows)

    def config(
        self,
        source: str,
        *,
        provider: str,
        region: str | None,
        function: str,
        memory_mb: int | None,
        arch: str | None,
        timeout_s: float | None,
        provisioned: int | None,
        details: Mapping[str, Any],
    ) -> None:
        """The function's configuration as found now (the newest is what reports price)."""
        row = (source, time.time_ns(), provider, region, function, memory_mb, arch)
        with self._transaction():
            self.connection.execute(
                _INSERT_CONFIG,
                (*row, timeout_s, provisioned, json.dumps(details, sort_keys=True, default=str)),
            )

    def _place(self, source: str, place: Covered, now: int) -> None:
        resume = json.dumps(place.resume) if place.resume is not None else None
        self.connection.execute(_SET_PLACE, (source, place.first, place.mark, now, resume))

    def _transaction(self) -> _Transaction:
        return _Transaction(self.connection)


class _Transaction:
    """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception (Ctrl-C included)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.connection.execute("COMMIT")
        else:
            self.connection.execute("ROLLBACK")
