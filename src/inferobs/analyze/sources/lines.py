"""Log files: our JSON record lines, and the platform's REPORT lines beside them.

A CloudWatch, Cloud Logging or Log Analytics export, or a file our stdout
exporter wrote, is a file of lines: our records (after a timestamp, beside
other JSON, several on a line), the platform's START / END / REPORT lines and
the application's own logs. DuckDB splits the file into numbered lines (in
parallel, gzip included); the lines that mention a record are parsed in bulk
(`records.split`), and only the ones that are not plainly one record of ours
go through the record-by-record reader, so its rules and messages hold here
too. UTF-16 files (PowerShell's redirection writes them) are split in Python.
"""

from __future__ import annotations

from ...export.lines import encode
from ...read import Problem, ReadError, _records_in
from ...record import EVENT
from ..columns import INVOCATIONS, conform
from . import Source, head
from .records import arrow_rows, rows_of, split

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

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
        table = _fresh_name()
        _numbered(db, self.path, table)
        out: dict[str, duckdb.DuckDBPyRelation] = {}
        columns = ", ".join(f'"{n}" {t}' for n, t in INVOCATIONS.items())
        db.execute(f"CREATE OR REPLACE TEMP TABLE {table}_inv ({columns})")
        source = self.path.replace("'", "''")
        db.execute(
            f"CREATE OR REPLACE TEMP VIEW {table}_texts AS "
            f"SELECT '{source}' AS source, line, substr(text, strpos(text, '{{')) AS j "
            f"FROM {table} WHERE contains(text, '{EVENT}')"
        )
        rest = split(db, f"{table}_texts", f"{table}_inv")
        slow: list[dict[str, object]] = []
        for line, text in rest:
            found, error = _records_in(text)
            if found:
                slow.extend(rows_of(found, self.path, line, encode))
            else:
                problems.append(Problem(f"{self.path}:{line}", error))
        if slow:
            db.register("_slow", arrow_rows(slow))
            db.execute(f"INSERT INTO {table}_inv SELECT * FROM _slow")
            db.unregister("_slow")
        out["invocations"] = db.table(f"{table}_inv")
        ((found,),) = db.execute(f"SELECT count(*) FROM {table}_inv").fetchall()
        functions = db.execute(
            f"SELECT DISTINCT function FROM {table}_inv WHERE function IS NOT NULL LIMIT 2"
        ).fetchall()
        # an export holds one log group: one function's records name its reports too
        owner = functions[0][0] if len(functions) == 1 else None
        reports = _reports(db, table, self.path, problems, owner)
        if reports is not None:
            out["reports"] = reports
        elif not found and not any(p.location.startswith(f"{self.path}:") for p in problems):
            raise ReadError(f"{self.path}: holds no inferobs records")
        return out


_counter = iter(range(1, 1 << 62))


def _fresh_name() -> str:
    """A table name for one file's lines, unique in the process."""
    return f"_lines{next(_counter)}"


def _numbered(db: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
    """Table ``table`` (line, text, rest): the file's lines a source reads, numbered from 1.

    DuckDB splits UTF-8 files (gzip too); UTF-16 files, bytes that are not
    UTF-8, and lines holding the split character are read in Python instead.
    """
    import duckdb

    if head(path)[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        compression = "gzip" if _is_gzip(path) else "none"
        # only the lines a source reads are kept: an application's own logs can be most
        wanted = " OR ".join(["rest IS NOT NULL", *(["contains(text, ?)"] * len(_markers()))])
        try:
            db.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM ("
                "SELECT row_number() OVER () AS line, text, rest FROM read_csv(?, "
                "columns = {'text': 'VARCHAR', 'rest': 'VARCHAR'}, delim = ?, quote = '', "
                "escape = '', header = false, auto_detect = false, strict_mode = false, "
                "null_padding = true, max_line_size = 268435456, compression = ?, "
                f"ignore_errors = false)) WHERE {wanted}",
                [path, _UNIT_SEPARATOR, compression, *_markers()],
            )
            ((split_lines,),) = db.execute(
                f"SELECT count(*) FROM {table} WHERE rest IS NOT NULL"
            ).fetchall()
        except duckdb.Error:  # bytes that are not UTF-8: Python replaces them and reads on
            split_lines = 1
        if not split_lines:
            return
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


def _markers() -> tuple[str, ...]:
    """What a line holds for a source to read it: our records' event, a report's marker."""
    return (EVENT, *_report_markers())


def _report_markers() -> tuple[str, ...]:
    try:
        from .lambda_report import REPORT_MARKERS
    except ImportError:  # the REPORT reader is not in this build yet
        return ()
    return REPORT_MARKERS


def _reports(
    db: duckdb.DuckDBPyConnection,
    table: str,
    path: str,
    problems: list[Problem],
    function: str | None,
) -> duckdb.DuckDBPyRelation | None:
    """The platform's REPORT lines in the file, in the report columns; None when none."""
    markers = _report_markers()
    if not markers:
        return None
    where = " OR ".join("contains(text, ?)" for _ in markers)
    candidates = db.execute(
        f"SELECT line, text FROM {table} WHERE {where} ORDER BY line", list(markers)
    ).fetchall()
    if not candidates:
        return None
    from .lambda_report import parse

    rows = parse(candidates, path, problems, function)
    if not rows:
        return None
    import pyarrow as pa

    from ..columns import REPORTS

    types = {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
    }
    arrow = pa.table(
        {name: pa.array([row.get(name) for row in rows], types[t]) for name, t in REPORTS.items()}
    )
    name = f"{table}_rep"
    db.register(f"{name}_arrow", arrow)
    db.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    db.unregister(f"{name}_arrow")
    return conform(db.table(name), "reports")
