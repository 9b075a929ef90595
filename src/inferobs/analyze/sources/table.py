"""Tables of invocations exported by other tools: CSV, TSV, JSON Lines, Parquet, plain or gzip.

A user's warehouse export or another tracer's dump names its columns its own
way (``timestamp``, ``latency_ms``, ``Cold Start``); this source maps the common
names onto the invocation columns and converts units, all in DuckDB SQL, so ten
million Parquet rows load at the speed of the scan and never pass through
Python one by one. Every value is parsed with TRY_CAST; a row whose value did
not parse is reported (file and line or row) and left out, the rest are read.

The CSV and Azure trace readers share `scan_csv` and `left_out` from here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re

from ...record import EVENT, KINDS
from ..columns import conform, sql_name, sql_string
from . import Source

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

    from ...read import Problem

__all__ = ["ALIASES", "MAX_PROBLEMS", "InvocationTable", "left_out", "scan_csv"]

MAX_PROBLEMS = 20  # rows named one by one per file; the rest are counted

# The invocation column each accepted name (normalised: lower case, spaces and
# dashes as underscores) fills, in order of preference when a file has several.
ALIASES: dict[str, tuple[str, ...]] = {
    "start": ("start", "start_time", "timestamp", "ts", "time", "@timestamp"),
    "duration_ms": (
        "duration_ms",
        "duration",
        "elapsed_ms",
        "latency_ms",
        "duration_s",
        "duration_sec",
        "duration_seconds",
    ),
    "memory_mb": ("memory_mb", "memory", "memory_size", "memory_size_mb"),
    "cold_start": ("cold_start", "coldstart", "is_cold_start", "cold"),
    "init_ms": ("init_ms", "init_duration", "init_duration_ms", "init_duration_s"),
    "id": ("id", "request_id", "requestid", "aws_request_id", "invocation_id"),
    "function": ("function", "function_name", "func", "service", "app"),
    "kind": ("kind",),
    "status": ("status",),
    "version": ("version",),
    "model": ("model",),
    "model_version": ("model_version",),
    "variant": ("variant",),
    "instance_id": ("instance_id",),
}

# A duration column whose name ends so holds seconds; every other one milliseconds.
_SECONDS = re.compile(r"_(s|sec|secs|seconds)$")

# A column a scan may add: why its row as a whole could not be read, else NULL
_UNREADABLE = "__unreadable"
_TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")
_COLD = ("true", "t", "1", "1.0", "yes", "y")
_WARM = ("false", "f", "0", "0.0", "no", "n")
_OK = ("ok", "success", "succeeded", "successful")
_ERROR = ("error", "failed", "failure", "fail")


def normalise(name: str) -> str:
    """A column name as the aliases spell it: ``Cold Start`` -> ``cold_start``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def mapping(names: list[str]) -> dict[str, str]:
    """For each invocation column a file fills, the file's column that fills it."""
    by_normal: dict[str, str] = {}
    for name in names:
        by_normal.setdefault(normalise(name), name)
    found: dict[str, str] = {}
    for target, aliases in ALIASES.items():
        for alias in aliases:
            if alias in by_normal:
                found[target] = by_normal[alias]
                break
    return found


def is_gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _plain_name(path: str) -> str:
    """The lower-cased file name without a ``.gz``."""
    name = os.path.basename(path).lower()
    return name[:-3] if name.endswith(".gz") else name


def header(head: bytes, delimiter: str) -> list[str]:
    """The column names on the first line of a delimited text, [] when there is none."""
    text = head.decode("utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        return []
    return next(csv.reader(io.StringIO(first), delimiter=delimiter), [])


def scan_csv(path: str, names: list[str], delimiter: str) -> str:
    """SQL for the rows of a delimited text whose header is ``names``, every value text.

    The dialect is given, not sniffed: DuckDB's sniffer may skip leading lines
    it finds irregular, and a row it skipped would be lost without a word.
    ``line`` is the row's line in the file (the header is line 1).
    """
    columns = ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in names)
    compression = "gzip" if is_gzip(path) else "none"
    return (
        f"SELECT ordinality + 1 AS line, * EXCLUDE (ordinality) FROM read_csv("
        f"{sql_string(path)}, auto_detect = false, header = true, "
        f"delim = {sql_string(delimiter)}, quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, null_padding = true, strict_mode = false, "
        f"compression = '{compression}') WITH ORDINALITY"
    )


def left_out(
    db: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    path: str,
    problems: list[Problem],
) -> None:
    """Report the rows whose ``problem`` is set: the first by line, the rest counted.

    One pass in constant memory (``min_by`` keeps the first rows), so a file
    where every row is bad costs what a good one does.
    """
    from ...read import Problem

    counted = relation.filter("problem IS NOT NULL").aggregate(
        f"count(*), min_by(struct_pack(line, problem), line, {MAX_PROBLEMS})"
    )
    count, first = counted.fetchall()[0]
    if not count:
        return
    for item in first:
        problems.append(Problem(f"{path}:{item['line']}", f"left out: {item['problem']}"))
    if count > len(first):
        problems.append(
            Problem(path, f"{count - len(first)} more rows left out with unreadable values")
        )


def _epoch_ns_of_integer(x: str) -> str:
    # Magnitude decides the unit: below 1e11 seconds (until the year 5138),
    # below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
    return (
        f"CASE WHEN abs({x}) < 100000000000 THEN {x} * 1000000000 "
        f"WHEN abs({x}) < 100000000000000 THEN {x} * 1000000 "
        f"WHEN abs({x}) < 100000000000000000 THEN {x} * 1000 ELSE {x} END"
    )


def _epoch_ns_of_double(x: str) -> str:
    scaled = (
        f"CASE WHEN abs({x}) < 1e11 THEN {x} * 1e9 WHEN abs({x}) < 1e14 THEN {x} * 1e6 "
        f"WHEN abs({x}) < 1e17 THEN {x} * 1e3 ELSE {x} END"
    )
    return f"TRY_CAST(round({scaled}) AS BIGINT)"


def _epoch_ns_of_text(x: str) -> str:
    # Text with an offset (Z, +02:00) is that instant; text without one is UTC,
    # whatever the session's time zone.
    offset = r"':\d\d(\.\d+)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$'"
    return (
        # TRY_CAST of '1.5' to BIGINT rounds it: only whole numbers take the exact path
        f"coalesce(CASE WHEN regexp_full_match({x}, '\\s*[+-]?\\d+\\s*') "
        f"THEN {_epoch_ns_of_integer(f'TRY_CAST({x} AS BIGINT)')} END, "
        f"{_epoch_ns_of_double(f'TRY_CAST({x} AS DOUBLE)')}, "
        f"CASE WHEN regexp_matches({x}, {offset}) "
        f"THEN epoch_ns(TRY_CAST({x} AS TIMESTAMPTZ)) "
        f"ELSE epoch_ns(TRY_CAST({x} AS TIMESTAMP)) END)"
    )


def _start(x: str, kind: str) -> str:
    if kind.startswith(("TIMESTAMP", "DATE")):
        return f"epoch_ns({x})"
    if kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
        return _epoch_ns_of_integer(f"CAST({x} AS BIGINT)")
    if kind in ("FLOAT", "DOUBLE") or kind.startswith("DECIMAL"):
        return _epoch_ns_of_double(f"CAST({x} AS DOUBLE)")
    return _epoch_ns_of_text(f"CAST({x} AS VARCHAR)")


def _milliseconds(x: str, kind: str, name: str) -> str:
    if kind == "INTERVAL":
        return f"epoch({x}) * 1000"
    factor = " * 1000" if _SECONDS.search(normalise(name)) else ""
    value = f"TRY_CAST({x} AS DOUBLE)"
    return f"CASE WHEN isfinite({value}) AND {value} >= 0 THEN {value}{factor} END"


def _choice(x: str, cases: dict[str, tuple[str, ...]]) -> str:
    text = f"lower(trim(CAST({x} AS VARCHAR)))"
    whens = " ".join(
        f"WHEN {text} IN ({', '.join(sql_string(v) for v in values)}) THEN {result}"
        for result, values in cases.items()
    )
    return f"CASE {whens} END"


def _status(x: str) -> str:
    code = f"TRY_CAST(CAST({x} AS VARCHAR) AS INTEGER)"
    named = _choice(x, {"'ok'": _OK, "'error'": _ERROR})
    return (
        f"coalesce({named}, "
        f"CASE WHEN {code} BETWEEN 100 AND 399 THEN 'ok' "
        f"WHEN {code} BETWEEN 400 AND 599 THEN 'error' END)"
    )


def _parsed(target: str, x: str, kind: str, name: str) -> str:
    """SQL for the invocation column ``target`` from the file's column ``x`` (type ``kind``)."""
    if target == "start":
        return _start(x, kind)
    if target in ("duration_ms", "init_ms"):
        return _milliseconds(x, kind, name)
    if target == "memory_mb":
        return f"TRY_CAST(round(TRY_CAST({x} AS DOUBLE)) AS INTEGER)"
    if target == "cold_start":
        return _choice(x, {"true": _COLD, "false": _WARM})
    if target == "kind":
        return _choice(x, {sql_string(k): (k,) for k in KINDS})
    if target == "status":
        return _status(x)
    return f"CAST({x} AS VARCHAR)"


def _given(x: str) -> str:
    return f"({x} IS NOT NULL AND trim(CAST({x} AS VARCHAR)) <> '')"


def invocations(
    db: duckdb.DuckDBPyConnection, scan: str, path: str, problems: list[Problem]
) -> duckdb.DuckDBPyRelation | None:
    """The invocation rows of ``scan`` (SQL with a ``line`` column), bad rows reported and left out.

    None, with a problem, when the file lacks a start or a duration column.
    """
    from ...read import Problem

    raw = db.sql(scan)
    names = [n for n in raw.columns if n not in ("line", _UNREADABLE)]
    found = mapping(names)
    missing = [t for t in ("start", "duration_ms") if t not in found]
    if missing:
        accepted = "; ".join(f"{t}: {', '.join(ALIASES[t])}" for t in missing)
        problems.append(
            Problem(
                path,
                f"no {' and no '.join(missing)} column (it has: {', '.join(names) or 'none'}; "
                f"names accepted, in any case: {accepted})",
            )
        )
        return None
    types = dict(zip(raw.columns, (str(t) for t in raw.types), strict=True))
    parsed = []
    checks = []
    for target, name in found.items():
        x = sql_name(name)
        value = _parsed(target, x, types[name], name)
        parsed.append(f"{value} AS {sql_name(target)}")
        if target in ("start", "duration_ms"):
            checks.append(
                f"CASE WHEN NOT {_given(x)} THEN {sql_string(f'no {target} ({name})')} END"
            )
        if target in _WHAT:
            message = sql_string(f"{target} ({name}) is not {_WHAT[target]}")
            checks.append(f"CASE WHEN {_given(x)} AND ({value}) IS NULL THEN {message} END")
    whole = f"{_UNREADABLE}, " if _UNREADABLE in raw.columns else ""
    projection = ", ".join(
        [
            f"{sql_string(path)} AS source",
            "line",
            *parsed,
            f"coalesce({whole}NULLIF(concat_ws('; ', {', '.join(checks)}), '')) AS problem",
        ]
    )
    rows = db.sql(f"SELECT {projection} FROM ({scan})")
    left_out(db, rows, path, problems)
    kept = [sql_name(t) for t in found if t not in ("kind", "status")]
    kind = "coalesce(kind, 'invocation')" if "kind" in found else "'invocation'"
    status = "coalesce(status, 'ok')" if "status" in found else "'ok'"
    columns = ["source", "line", *kept, f"{kind} AS kind", f"{status} AS status"]
    return rows.filter("problem IS NULL").project(", ".join([*columns, "1.0 AS sample_rate"]))


_WHAT = {
    "start": "a time",
    "duration_ms": "a duration",
    "init_ms": "a duration",
    "memory_mb": "a number",
    "cold_start": "true or false",
    "kind": "one of " + ", ".join(KINDS),
    "status": "ok or error",
}


class InvocationTable(Source):
    """CSV, TSV, JSON Lines or Parquet files of invocation records, plain or gzip.

    Claims a file by its extension and only when its header (or first object)
    names a start and a duration column, so our own JSON lines, the Azure
    traces and arbitrary CSVs fall to other sources or to none.
    """

    name = "invocation table"

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        plain = _plain_name(path)
        if plain.endswith(".parquet"):
            names = _parquet_columns(path)
        elif plain.endswith(_TEXT_SUFFIXES):
            if EVENT.encode() in head:  # our own lines: the log-line source reads them
                return False
            names = _text_columns(plain, head)
        else:
            return False
        found = mapping(names)
        return "start" in found and "duration_ms" in found

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        import duckdb

        from ...read import Problem
        from . import head

        plain = _plain_name(self.path)
        try:
            if plain.endswith(".parquet"):
                scan = (
                    "SELECT file_row_number + 1 AS line, * EXCLUDE (file_row_number) FROM "
                    f"read_parquet({sql_string(self.path)}, file_row_number = true)"
                )
            elif plain.endswith((".csv", ".tsv")):
                delimiter = "\t" if plain.endswith(".tsv") else ","
                names = header(head(self.path), delimiter)
                scan = scan_csv(self.path, names, delimiter)
            else:
                scan = _scan_json(self.path, plain, head(self.path))
            rows = invocations(db, scan, self.path, problems)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            problems.append(Problem(self.path, f"not readable as {self.name}: {first}"))
            return {}
        if rows is None:
            return {}
        return {"invocations": conform(rows, "invocations")}


def _parquet_columns(path: str) -> list[str]:
    import duckdb

    try:
        db = duckdb.connect()
        try:
            described = db.sql(f"DESCRIBE SELECT * FROM read_parquet({sql_string(path)})")
            return [str(row[0]) for row in described.fetchall()]
        finally:
            db.close()
    except duckdb.Error:
        return []


def _first_object(head: bytes) -> dict[str, object] | None:
    """The first JSON object of a JSON Lines text or of a JSON array."""
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("["):
        text = text[1:].lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text_columns(plain: str, head: bytes) -> list[str]:
    if plain.endswith(".csv"):
        return header(head, ",")
    if plain.endswith(".tsv"):
        return header(head, "\t")
    first = _first_object(head)
    return list(first) if first is not None else []


def _scan_json(path: str, plain: str, head: bytes) -> str:
    """SQL for a JSON Lines file (or a JSON array) as text columns named by its first object.

    Each object is read as JSON text and its fields taken with ``->>``, so a
    field whose type changes between rows is still read (and checked) row by
    row rather than failing the file on DuckDB's type guess. A line that is not
    JSON comes out as no start and no duration, and is reported.
    """
    first = _first_object(head) or {}
    fields = ", ".join(f"json->>{sql_string('$.' + json_path(k))} AS {sql_name(k)}" for k in first)
    text_format = "auto" if plain.endswith(".json") else "newline_delimited"
    compression = "gzip" if is_gzip(path) else "none"
    return (
        "SELECT ordinality AS line, CASE WHEN coalesce(json_type(json), '') <> 'OBJECT' "
        f"THEN 'not a JSON object' END AS {_UNREADABLE}{', ' + fields if fields else ''} "
        "FROM read_json_objects("
        f"{sql_string(path)}, format = '{text_format}', ignore_errors = true, "
        f"compression = '{compression}') WITH ORDINALITY"
    )


def json_path(key: str) -> str:
    """``key`` as one step of a JSON path, quoted so dots and spaces stay in the name."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
