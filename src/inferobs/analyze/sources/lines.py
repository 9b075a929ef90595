"""Log files: our JSON record lines, and the platform's REPORT lines beside them.

A CloudWatch, Cloud Logging or Log Analytics export, or a file our stdout
exporter wrote, is a file of lines: our records and drift windows (after a
timestamp, beside other JSON, several on a line), the platform's START / END /
REPORT lines and the application's own logs. DuckDB splits the file (gzip
included) on every core and judges each line in the same pass (`records.judge`),
into a table in the file's order; only the lines that are not plainly one
record of ours go through the record-by-record reader, so its rules and
messages hold here too. UTF-16 files (PowerShell's redirection writes them)
are split in Python. Drift windows are few (one per instance and window): the
lines that hold one are found the same way and read by the record-by-record
reader.
"""

from __future__ import annotations

from ...drift.counting import DRIFT_EVENT
from ...export.lines import encode
from ...read import Problem, ReadError, records_in
from ..columns import arrow_table, sql_string
from . import Source, fresh_name, head
from .lambda_report import REPORT_MARKERS, parse
from .records import invocations_of, judge, rows_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    import duckdb

    from ...drift.baseline import Baseline
    from ...drift.window_table import WindowTable

__all__ = ["LogLines"]

# a character log lines do not hold: DuckDB's CSV reader splits lines on it,
# and any line that does hold it is read again in Python
_UNIT_SEPARATOR = "\x1f"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
        exact = _lines_into(db, self.path, table, lambda lines: judge(db, lines, REPORT_MARKERS))
        found_problems: list[Problem] = []
        slow: list[dict[str, object]] = []
        for line, text in db.execute(
            f"SELECT line, text FROM {table} WHERE ours AND NOT fast ORDER BY line"
        ).fetchall():
            found, _, error = records_in(text)
            try:
                if found:
                    slow.extend(rows_of(found, self.path, line, encode))
                    continue
            except ValueError as exc:  # a value no column can hold
                error = str(exc)
            found_problems.append(Problem(f"{self.path}:{line}", error))
        out = {"invocations": invocations_of(db, table, self.path, slow)}
        ((found, functions, owner),) = db.execute(
            f"SELECT count(*) FILTER (WHERE fast), count(DISTINCT function), any_value(function) "
            f"FROM {table}"
        ).fetchall()
        found += len(slow)
        # an export holds one log group: one function's records name its reports too
        reports = _reports(db, table, self.path, found_problems, owner if functions == 1 else None)
        problems += found_problems if exact else _placed(self.path, found_problems)
        if reports is not None:
            out["reports"] = reports
        elif not found and not found_problems and not self._window_lines(db)[0]:
            raise ReadError(f"{self.path}: holds no inferobs records")
        return out

    def windows(self, baseline: Baseline, problems: list[Problem]) -> WindowTable:
        import duckdb

        from ...drift.window_table import WindowTable

        db = duckdb.connect()
        try:
            lines, exact = self._window_lines(db)
        finally:
            db.close()
        records: list[dict[str, Any]] = []
        places: list[int] = []  # each record's line
        found_problems: list[Problem] = []
        for line, text in lines:
            _, found, error = records_in(text)
            if not found:
                found_problems.append(Problem(f"{self.path}:{line}", error))
            records += found
            places += [line] * len(found)
        table, unfit = WindowTable.from_records(baseline, records)
        found_problems += [Problem(f"{self.path}:{places[n]}", why) for n, why in unfit]
        problems += found_problems if exact else _placed(self.path, found_problems)
        return table

    def _window_lines(self, db: duckdb.DuckDBPyConnection) -> tuple[list[tuple[int, str]], bool]:
        """The numbers and text of the file's lines that mention a drift window, and whether
        the numbers are the lines' (see `_lines_into`)."""
        table = fresh_name("_windows")
        marker = sql_string(DRIFT_EVENT)
        exact = _lines_into(
            db,
            self.path,
            table,
            lambda lines: (
                f"SELECT line, CASE WHEN contains(text, {marker}) THEN text END AS text,"
                f" rest IS NOT NULL AS split FROM {lines}"
            ),
        )
        found: list[tuple[int, str]] = db.execute(
            f"SELECT line, text FROM {table} WHERE text IS NOT NULL ORDER BY line"
        ).fetchall()
        db.execute(f"DROP VIEW {table}")
        db.execute(f"DROP TABLE {table}_each")
        return found, exact


def _lines_into(
    db: duckdb.DuckDBPyConnection, path: str, table: str, each: Callable[[str], str]
) -> bool:
    """View ``table``: ``each(lines)`` over the file's lines (line, text, rest) in order,
    with a ``split`` column; True where its ``line`` is each line's number.

    DuckDB splits UTF-8 files (gzip too) on every core, and the table it
    fills keeps the file's order, so a row's place is its line's: but its CSV
    reader skips blank lines, so there a line is its place among the
    non-blank ones (False; `_placed` finds the real number of the few that a
    problem names). UTF-16 files, bytes that are not UTF-8, and lines holding
    the split character are split in Python, and numbered exactly.
    """
    raw = f"{table}_each"
    exact = head(path)[:2] in _UTF16_BOMS or not _split_by_duckdb(db, path, raw, each)
    if exact:
        _numbered_in_python(db, path, raw, each)
    db.execute(
        f"CREATE OR REPLACE TEMP VIEW {table} AS "
        f"SELECT * REPLACE (coalesce(line, rowid + 1) AS line) FROM {raw}"
    )
    return exact


def _split_by_duckdb(
    db: duckdb.DuckDBPyConnection, path: str, table: str, each: Callable[[str], str]
) -> bool:
    """Table ``table`` from DuckDB's split of a UTF-8 file; False where it cannot be used."""
    import duckdb

    compression = "gzip" if _is_gzip(path) else "none"
    lines = (
        "(SELECT NULL::BIGINT AS line, text, rest FROM read_csv("
        f"{sql_string(path)}, columns = {{'text': 'VARCHAR', 'rest': 'VARCHAR'}}, "
        f"delim = '{_UNIT_SEPARATOR}', quote = '', escape = '', header = false, "
        "auto_detect = false, strict_mode = false, null_padding = true, "
        f"compression = '{compression}'))"
    )
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {each(lines)}")
        ((split_lines,),) = db.execute(f"SELECT count(*) FROM {table} WHERE split").fetchall()
    except duckdb.Error:  # bytes that are not UTF-8 (Python replaces them and reads on),
        # or a line longer than DuckDB's 2 MB (a big buffer for every line would cost more)
        return False
    return not split_lines


def _numbered_in_python(
    db: duckdb.DuckDBPyConnection, path: str, table: str, each: Callable[[str], str]
) -> None:
    import pyarrow as pa

    numbers: list[int] = []
    texts: list[str] = []
    with _text(path) as handle:
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
    db.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {each('_py_lines')}")
    db.unregister("_py_lines")


def _text(path: str) -> TextIO:
    """The file as text, lines split as the record-by-record reader splits them."""
    import gzip

    opener = gzip.open if _is_gzip(path) else open
    encoding = "utf-16" if head(path)[:2] in _UTF16_BOMS else "utf-8-sig"
    handle: TextIO = opener(path, "rt", encoding=encoding, errors="replace")
    return handle


def _placed(path: str, problems: list[Problem]) -> list[Problem]:
    """``problems`` located by a line's place among the file's non-blank lines, located
    by its number instead (one pass over the file, only when there is a problem)."""
    if not problems:
        return problems
    prefix = f"{path}:"
    wanted = sorted({int(p.location[len(prefix) :]) for p in problems})
    numbers: dict[int, int] = {}
    place = 0
    with _text(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.rstrip("\r\n"):
                place += 1
                if place == wanted[len(numbers)]:
                    numbers[place] = number
                    if len(numbers) == len(wanted):
                        break
    return [
        Problem(f"{prefix}{numbers.get(n, n)}", p.message)
        for p, n in ((p, int(p.location[len(prefix) :])) for p in problems)
    ]


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
