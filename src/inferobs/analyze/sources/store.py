"""The embedded store: its rows' JSON lines, judged in bulk like a log file's lines."""

from __future__ import annotations

import os

from ...export.lines import encode
from ...export.store import DATABASE
from ...read import Problem, _opened, check_layout, store_notes
from ...record import Invocation
from . import Source, fresh_name
from .records import invocations_of, judge, rows_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

__all__ = ["Store"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


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
            f"CREATE TEMP TABLE {table} AS {judge(f'{table}_rows', self.path, (), every_line=True)}"
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
        return {"invocations": invocations_of(db, table, slow)}
