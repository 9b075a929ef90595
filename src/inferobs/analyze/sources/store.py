"""The embedded store: its rows' JSON lines, judged in bulk like a log file's lines; its
drift windows straight from their stored arrays.

A month of windows is a few hundred thousand rows of a few hundred counts
each: they are read as blobs, joined and viewed as one matrix per distinct
shape (numpy, no per-count Python), and put in the baseline's column order by
one index array per shape, so a record's key order never matters.
"""

from __future__ import annotations

import os
import sqlite3

from ...export.lines import encode
from ...export.store import DATABASE, REPORT_VALUES, table_columns
from ...read import COUNTS, ID, SHAPE, Problem, _opened, check_layout, store_notes, stored_windows
from ...record import Invocation
from ..columns import CONFIGS, POINTS, arrow_table
from . import Source, fresh_name
from .records import invocations_of, judge, rows_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import duckdb
    import numpy as np
    import numpy.typing as npt

    from ...drift.baseline import Baseline
    from ...drift.layout import Segment
    from ...drift.window_table import WindowTable

    # a shape's index array (None: already in the baseline's order) and its count of counts
    Plan = tuple[npt.NDArray[np.intp] | None, int]

__all__ = ["Store"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 4096  # window rows fetched at a time: a few MB of blobs in memory beside the matrix


class Store(Source):
    """A store folder or its database file; rows are numbered by their rowid."""

    name = "store"

    def __init__(self, path: str) -> None:
        super().__init__(os.path.join(path, DATABASE) if os.path.isdir(path) else path)
        self.losses: list[Problem] = []  # records its writers had to drop

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        return head[:16] == _SQLITE_MAGIC

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        import pyarrow as pa

        with _opened(self.path) as connection:
            check_layout(connection, self.path)
            rows = connection.execute("SELECT rowid, record FROM invocations").fetchall()
            store_notes(connection, self.path, problems, self.losses)
            pulled = _pulled(connection, self.path)
        table = fresh_name("_store")
        db.register(
            f"{table}_rows",
            pa.table(
                {
                    "line": pa.array([rowid for rowid, _ in rows], pa.int64()),
                    "text": pa.array([text for _, text in rows], pa.string()),
                    "rest": pa.nulls(len(rows), pa.string()),
                }
            ),
        )
        db.execute(
            f"CREATE TEMP TABLE {table} AS {judge(db, f'{table}_rows', (), every_line=True)}"
        )
        db.unregister(f"{table}_rows")
        slow: list[dict[str, object]] = []
        for rowid, text in db.execute(
            f"SELECT line, text FROM {table} WHERE NOT fast ORDER BY line"
        ).fetchall():
            try:
                slow.extend(rows_of([Invocation.from_json(text)], self.path, rowid, encode))
            except ValueError as exc:  # a RecordError, or a value no column holds
                problems.append(Problem(f"{self.path}#row{rowid}", str(exc)))
        loaded = {"invocations": invocations_of(db, table, self.path, slow)}
        for kind, found in pulled.items():
            if found:
                name = fresh_name(f"_store_{kind}")
                db.register(name, arrow_table(found, kind))
                loaded[kind] = db.table(name)
        return loaded

    def windows(self, baseline: Baseline, problems: list[Problem]) -> WindowTable:
        from itertools import islice

        with _opened(self.path) as connection:
            check_layout(connection, self.path)
            connection.execute("BEGIN")  # one snapshot: the counts match the rows
            count, rows, other = stored_windows(connection, self.path, problems, baseline.hash)
            matrix = _Matrix(self.path, baseline, count, problems)
            rows = iter(rows)
            for at in range(0, count, _CHUNK):
                matrix.add(list(islice(rows, _CHUNK)), at)
        return matrix.table(other)


def _pulled(connection: sqlite3.Connection, path: str) -> dict[str, list[dict[str, object]]]:
    """What `obs pull` kept beside the records: the platform's reports (numbered by
    rowid, as records are), the functions' configurations and the platform's metric
    points; none in older stores."""
    if not table_columns(connection, "function_configs"):  # a store from before layout 3
        return {}
    reports = [
        dict(zip(_REPORT_FIELDS, row, strict=True), source=path)
        for row in connection.execute(
            f"SELECT rowid, {', '.join(_REPORT_COLUMNS)} FROM platform_reports"
        )
    ]
    configs = [
        dict(zip(_CONFIG_COLUMNS, row, strict=True), source=path)
        for row in connection.execute(f"SELECT {', '.join(_CONFIG_COLUMNS)} FROM function_configs")
    ]
    points = [
        dict(zip(_POINT_COLUMNS, row, strict=True), source=path)
        for row in connection.execute(f"SELECT {', '.join(_POINT_COLUMNS)} FROM metric_points")
    ]
    return {"reports": reports, "configs": configs, "points": points}


# the store's platform_reports columns, and the report columns they are read as
_REPORT_COLUMNS = ("id", "function", *REPORT_VALUES)
_REPORT_FIELDS = ("line", *(("end" if c == "end_ns" else c) for c in _REPORT_COLUMNS))
_CONFIG_COLUMNS = tuple(c for c in CONFIGS if c != "source")
_POINT_COLUMNS = tuple(c for c in POINTS if c != "source")


class _Matrix:
    """A store's windows of one baseline, filled in chunks of rows: counts in the
    baseline's order, one index array per distinct shape."""

    def __init__(self, path: str, baseline: Baseline, count: int, problems: list[Problem]) -> None:
        import numpy as np

        from ...drift.layout import segments

        self.path = path
        self.baseline = baseline
        self.layout = segments(baseline)
        self.problems = problems
        self.starts, self.ends, self.observations, self.group = (
            np.zeros(count, dtype=np.int64) for _ in range(4)
        )
        self.counts = np.zeros((count, self.layout[-1].stop), dtype=np.int64)
        self.keep = np.zeros(count, dtype=bool)  # rows read and fitting the baseline
        self.groups: dict[tuple[str | None, ...], int] = {}
        self.instances: list[str | None] = [None] * count
        self.ids: list[str | None] = [None] * count
        self.plans: dict[str, Plan] = {}  # shape -> where its counts go
        self.misfits: dict[str, str] = {}  # shape -> why its windows do not fit

    def add(self, chunk: list[tuple[Any, ...]], at: int) -> None:
        """Rows ``at`` onward from a chunk of window rows; one that does not fit is a
        problem, and left out."""
        import numpy as np

        by_shape: dict[str, list[int]] = {}
        groups = self.groups
        fields = []  # start, end and observations of each row (zeros where left out)
        group = []
        for n, row in enumerate(chunk):
            why = self._misfit(row[SHAPE], row[COUNTS])
            if not (
                isinstance(row[1], int) and isinstance(row[2], int) and isinstance(row[9], int)
            ):
                why = "window_start, window_end or observations is not an integer"
            if why:
                self.problems.append(Problem(f"{self.path}#window{row[0]}", why))
                fields.append((0, 0, 0))
                group.append(0)
                continue
            by_shape.setdefault(row[SHAPE], []).append(n)
            fields.append((row[1], row[2], row[9]))
            group.append(groups.setdefault(row[3:7], len(groups)))
            self.instances[at + n] = row[7]
            if len(row) > ID and isinstance(row[ID], str):  # layout 1's rows have none
                self.ids[at + n] = row[ID]
            self.keep[at + n] = True
        end = at + len(chunk)
        self.starts[at:end], self.ends[at:end], self.observations[at:end] = (
            np.array(fields, dtype=np.int64).reshape(len(chunk), 3).T
        )
        self.group[at:end] = group
        for form, members in by_shape.items():
            index, size = self.plans[form]
            joined = b"".join([chunk[n][COUNTS] for n in members])
            flat = np.frombuffer(joined, dtype="<i8").reshape(len(members), size)
            if len(members) == members[-1] - members[0] + 1:  # a run of rows: the usual case
                rows: slice | npt.NDArray[np.intp] = slice(at + members[0], at + members[-1] + 1)
            else:
                rows = np.asarray(members) + at
            # windows written in the baseline's order (the SDK's own) need no reordering
            self.counts[rows] = flat if index is None else flat[:, index]

    def _misfit(self, form: str, blob: object) -> str:
        """Why a window of this shape and counts cannot be read against the baseline; ""
        when it can."""
        if form not in self.plans and form not in self.misfits:
            try:
                self.plans[form] = _plan(form, self.layout)
            except ValueError as exc:
                self.misfits[form] = str(exc)
        if form in self.misfits:
            return self.misfits[form]
        if not isinstance(blob, bytes) or len(blob) != 8 * self.plans[form][1]:
            return "its counts do not fit their shape"
        return ""

    def table(self, other: int) -> WindowTable:
        from ...drift.window_table import WindowTable

        table = WindowTable(
            self.baseline,
            self.starts,
            self.ends,
            self.group,
            list(self.groups),
            self.instances,
            self.observations,
            self.counts,
            other,
            self.ids if any(i is not None for i in self.ids) else None,
        )
        return table if self.keep.all() else table.take(self.keep)


def _plan(form: str, layout: list[Segment]) -> Plan:
    """For windows of shape ``form``: where each of the baseline's counts sits in their
    array, and how many counts the array holds; ValueError saying why the shape does not
    fit the baseline."""
    import json

    import numpy as np

    from ...drift.layout import row, unflatten

    try:
        shape = json.loads(form)
        size = _size(shape)
        # the record's own nesting, holding each count's place in the array
        places, _ = unflatten(shape, list(range(size)))
        index = row(places, layout)
    except (TypeError, RecursionError):
        raise ValueError("its shape is not a window's") from None
    if index == list(range(size)):
        return None, size
    return np.array(index, dtype=np.intp), size


def _size(shape: Any) -> int:
    """How many counts a window of this `inferobs.drift.layout.shape` holds."""
    if isinstance(shape, dict):
        return sum(_size(value) for value in shape.values())
    if isinstance(shape, list):
        return sum(_size(value) for value in shape)
    if shape is None:
        return 1
    if isinstance(shape, int) and not isinstance(shape, bool) and shape >= 0:
        return shape
    raise ValueError("its shape is not a window's")
