"""Log files: our JSON record lines, and the platform's REPORT lines beside them.

A CloudWatch, Cloud Logging or Log Analytics export, or a file our stdout
exporter wrote, is a file of lines: our records and drift windows (after a
timestamp, beside other JSON, several on a line), the platform's START / END /
REPORT lines and the application's own logs. DuckDB numbers the file's lines
(gzip included) and keeps the ones a source reads; those that mention a record
are judged in bulk (`records.judge`), and only the ones that are not plainly one record of
ours go through the record-by-record reader, so its rules and messages hold
here too. UTF-16 files (PowerShell's redirection writes them) are split in
Python. Drift windows are few (one per instance and window): the lines that
hold one are found the same way and read by the record-by-record reader.
"""

from __future__ import annotations

from ...drift.counting import DRIFT_EVENT
from ...export.lines import encode
from ...read import Problem, ReadError, _records_in
from ...record import EVENT
from ..columns import arrow_table, sql_string
from . import Source, fresh_name, head
from .lambda_report import REPORT_MARKERS, parse
from .records import invocations_of, judge, rows_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import duckdb

    from ...drift.baseline import Baseline
    from ...drift.window_table import WindowTable

__all__ = ["LogLines"]

# a character log lines do not hold: DuckDB's CSV reader splits lines on it,
# and any line that does hold it is read again in Python
_UNIT_SEPARATOR = "\x1f"


class LogLines(Source):
    """Our JSON lines and the logs they sit in (plain, gzip, UTF-8 or UTF-16)."""

    name = "log lines"

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        # the last source asked: any text file may hold records past its first bytes
        # (an export that starts with a long stretch of the application's own logs)
        from ...read import _binary

        return not _binary(head)

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        table = fresh_name("_lines")
        _judged(db, self.path, table)
        slow: list[dict[str, object]] = []
        for line, text in db.execute(
            f"SELECT line, text FROM {table} WHERE ours AND NOT fast ORDER BY line"
        ).fetchall():
            found, _, error = _records_in(text)
            try:
                if found:
                    slow.extend(rows_of(found, self.path, line, encode))
                    continue
            except ValueError as exc:  # a value no column can hold
                error = str(exc)
            problems.append(Problem(f"{self.path}:{line}", error))
        out = {"invocations": invocations_of(db, table, slow)}
        ((found, functions, owner),) = db.execute(
            f"SELECT count(*) FILTER (WHERE fast), count(DISTINCT function), any_value(function) "
            f"FROM {table}"
        ).fetchall()
        found += len(slow)
        # an export holds one log group: one function's records name its reports too
        reports = _reports(db, table, self.path, problems, owner if functions == 1 else None)
        if reports is not None:
            out["reports"] = reports
        elif (
            not found
            and not any(p.location.startswith(f"{self.path}:") for p in problems)
            and not self._window_lines(db)
        ):
            raise ReadError(f"{self.path}: holds no inferobs records")
        return out

    def windows(self, baseline: Baseline, problems: list[Problem]) -> WindowTable:
        import duckdb

        from ...drift.window_table import WindowTable

        db = duckdb.connect()
        try:
            lines = self._window_lines(db)
        finally:
            db.close()
        records: list[dict[str, Any]] = []
        places: list[int] = []  # each record's line
        for line, text in lines:
            _, found, error = _records_in(text)
            if not found:
                problems.append(Problem(f"{self.path}:{line}", error))
            records += found
            places += [line] * len(found)
        table, unfit = WindowTable.from_records(baseline, records)
        problems += [Problem(f"{self.path}:{places[n]}", why) for n, why in unfit]
        return table

    def _window_lines(self, db: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
        """The numbers and text of the file's lines that mention a drift window."""
        table = fresh_name("_windows")
        _lines_holding(db, self.path, table, (DRIFT_EVENT,))
        lines: list[tuple[int, str]] = db.execute(
            f"SELECT line, text FROM {table} WHERE contains(text, {sql_string(DRIFT_EVENT)})"
            " ORDER BY line"
        ).fetchall()
        db.execute(f"DROP TABLE {table}")
        return lines


def _judged(db: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
    """Table ``table``: the file's lines that a source reads, judged (`records.judge`)."""
    _lines_holding(db, path, f"{table}_lines", (EVENT, *REPORT_MARKERS))
    db.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS {judge(f'{table}_lines', path, REPORT_MARKERS)}"
    )
    db.execute(f"DROP TABLE {table}_lines")


def _lines_holding(
    db: duckdb.DuckDBPyConnection, path: str, table: str, markers: tuple[str, ...]
) -> None:
    """Table ``table`` (line, text, rest): the file's numbered lines, at least those
    holding any of ``markers``.

    DuckDB splits UTF-8 files (gzip too), keeping only the lines that hold a
    marker; UTF-16 files, bytes that are not UTF-8, and lines holding the split
    character are split in Python, and then every line is kept.
    """
    import duckdb

    if head(path)[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        compression = "gzip" if _is_gzip(path) else "none"
        numbered = (
            "(SELECT row_number() OVER () AS line, text, rest FROM read_csv("
            f"{sql_string(path)}, columns = {{'text': 'VARCHAR', 'rest': 'VARCHAR'}}, "
            f"delim = '{_UNIT_SEPARATOR}', quote = '', escape = '', header = false, "
            "auto_detect = false, strict_mode = false, null_padding = true, "
            f"compression = '{compression}'))"
        )
        # numbering keeps the lines in order, on one thread; the JSON work then runs
        # on every core, over only the lines a source reads
        wanted = " OR ".join(f"contains(text, {sql_string(m)})" for m in markers)
        try:
            db.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS "
                f"SELECT * FROM {numbered} WHERE rest IS NOT NULL OR {wanted}"
            )
            ((split_lines,),) = db.execute(
                f"SELECT count(*) FROM {table} WHERE rest IS NOT NULL"
            ).fetchall()
        except duckdb.Error:  # bytes that are not UTF-8 (Python replaces them and reads on),
            # or a line longer than DuckDB's 2 MB (a big buffer for every line would cost more)
            split_lines = 1
        if split_lines:
            _numbered_in_python(db, path, table)
    else:
        _numbered_in_python(db, path, table)


def _numbered_in_python(db: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
    import gzip

    import pyarrow as pa

    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as raw:
        start = raw.read(4)
    encoding = "utf-16" if start[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    numbers: list[int] = []
    texts: list[str] = []
    with opener(path, "rt", encoding=encoding, errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            numbers.append(number)
            texts.append(line.rstrip("\r\n"))
    lines = pa.table(
        {
            "line": pa.array(numbers, pa.int64()),
            "text": pa.array(texts, pa.string()),
            "rest": pa.nulls(len(texts), pa.string()),
        }
    )
    db.register("_py_lines", lines)
    db.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM _py_lines")
    db.unregister("_py_lines")


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _reports(
    db: duckdb.DuckDBPyConnection,
    table: str,
    path: str,
    problems: list[Problem],
    function: str | None,
) -> duckdb.DuckDBPyRelation | None:
    """The platform's REPORT lines in the file, in the report columns; None when none."""
    candidates = db.execute(f"SELECT line, text FROM {table} WHERE report ORDER BY line").fetchall()
    if not candidates:
        return None
    rows = parse(candidates, path, problems, function)
    if not rows:
        return None
    name = f"{table}_rep"
    db.register(name, arrow_table(rows, "reports"))
    return db.table(name)
