"""The embedded store: its rows' JSON lines, parsed in bulk like a log file's."""

from __future__ import annotations

import os

from ...export.store import DATABASE
from ...read import Problem, _opened, check_layout, store_notes
from ...record import Invocation, RecordError
from ..columns import INVOCATIONS
from . import Source
from .records import arrow_rows, rows_of, split

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

__all__ = ["Store"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_fresh = iter(range(1, 1 << 62))


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
        texts = pa.table(
            {
                "source": pa.array([self.path] * len(rows), pa.string()),
                "line": pa.array([rowid for rowid, _ in rows], pa.int64()),
                "j": pa.array([text for _, text in rows], pa.string()),
            }
        )
        table = f"_store{next(_fresh)}"
        columns = ", ".join(f'"{n}" {t}' for n, t in INVOCATIONS.items())
        db.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({columns})")
        db.register(f"{table}_texts", texts)
        rest = split(db, f"{table}_texts", table)
        db.unregister(f"{table}_texts")
        slow: list[dict[str, object]] = []
        for rowid, text in rest:
            try:
                record = Invocation.from_json(text)
            except RecordError as exc:
                problems.append(Problem(f"{self.path}#row{rowid}", str(exc)))
                continue
            try:
                slow.extend(rows_of([record], self.path, rowid, _encode))
            except ValueError as exc:  # a value no column can hold
                problems.append(Problem(f"{self.path}#row{rowid}", str(exc)))
        if slow:
            db.register("_slow", arrow_rows(slow))
            db.execute(f"INSERT INTO {table} SELECT * FROM _slow")
            db.unregister("_slow")
        return {"invocations": db.table(table)}


def _encode(record: Invocation) -> str:
    from ...export.lines import encode

    return encode(record)
