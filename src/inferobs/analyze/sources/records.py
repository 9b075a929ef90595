"""Our records' JSON text into the invocation columns, in bulk, by the reader's rules.

Both the log-line and the store sources hold records as JSON text. DuckDB
parses and checks it in C; a text that is not plainly one valid record of
ours (several records on a line, a record inside someone else's JSON, a bad
field, NaN) goes to the record-by-record reader, whose rules and messages are
the definition, so the two paths can never disagree about what a line holds.
"""

from __future__ import annotations

from ...record import EVENT, FIELDS, KINDS, SCHEMA_VERSION, STATUSES, Invocation
from ..columns import sql_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import duckdb

__all__ = ["COLUMNS", "FAST", "PARSE", "invocations_of", "judge", "rows_of"]

# JSON types DuckDB's json_type() gives for the Python types a field accepts
_JSON_TYPES = {
    str: ("VARCHAR",),
    int: ("BIGINT", "UBIGINT"),
    float: ("DOUBLE", "BIGINT", "UBIGINT"),
    bool: ("BOOLEAN",),
    dict: ("OBJECT",),
}
# Every known field, extracted in one parse of the text: v[i] is FIELD_ORDER[i - 1]
FIELD_ORDER = list(FIELDS)
_AT = {name: index for index, name in enumerate(FIELD_ORDER, 1)}


def _v(name: str) -> str:
    return f"v[{_AT[name]}]"


def _text(name: str) -> str:
    return f"({_v(name)}->>'$')"


# the first character of a JSON value says its type; "_" stands for an absent field
_FIRST = {
    str: '"',
    int: "0-9",
    float: "0-9",
    bool: "tf",
    dict: "{",
}
# fields that must be whole numbers: their text holds no fraction or exponent
_WHOLE = [name for name, (types, _) in FIELDS.items() if types == (int,)]


def _signature_pattern() -> str:
    classes = []
    for name in FIELD_ORDER:
        types, _ = FIELDS[name]
        accepted = "".join(sorted({_FIRST[kind] for kind in types}))
        numbers = "-" if int in types or float in types else ""  # first in a class: literal
        classes.append(f"[{numbers}{accepted}n_]" if name != "event" else '"')
    return "^" + "".join(classes) + "$"


def _enum(name: str, values: Iterable[str], default: str) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"coalesce({_text(name)}, '{default}') IN ({listed})"


_PATHS = "[" + ", ".join(f"'$.{name}'" for name in FIELD_ORDER) + "]"

# The parse, ``v``: NULL where ``j`` is not JSON at all
PARSE = f"TRY(json_extract(j, {_PATHS}))"

# True where ``v`` is one record of ours whose every field is sound; the rest
# is read record by record. A stage value that is not a number shows in the
# stages' text as a colon followed by something other than a number.
SIGNATURE = "array_to_string(list_transform(v, lambda x: coalesce(left(x, 1), '_')), '')"

FAST = " AND ".join(
    [
        "v IS NOT NULL",
        "NOT contains(j, 'NaN') AND NOT contains(j, 'Infinity')",  # the parser takes them
        # an escaped surrogate may be a lone one, which UTF-8 text cannot hold
        "NOT contains(j, '\\ud') AND NOT contains(j, '\\uD')",
        f"regexp_full_match({SIGNATURE}, '{_signature_pattern()}')",
        f"{_text('event')} = '{EVENT}'",
        f"TRY_CAST({_text('schema')} AS BIGINT) BETWEEN 1 AND {SCHEMA_VERSION}",
        f"TRY_CAST({_text('start')} AS BIGINT) IS NOT NULL",
        f"{_text('duration_ms')} IS NOT NULL",
        f"TRY_CAST({_text('memory_mb')} AS INTEGER) IS NOT DISTINCT FROM "
        f"TRY_CAST({_text('memory_mb')} AS HUGEINT)",
        *(
            f"NOT coalesce(contains({_v(name)}, '.') OR contains(lower({_v(name)}), 'e'), false)"
            for name in _WHOLE
        ),
        _enum("kind", KINDS, "invocation"),
        _enum("status", STATUSES, "ok"),
        f"NOT coalesce(regexp_matches(CAST({_v('stages')} AS VARCHAR), "
        "':\\s*(true|false|null|\"|\\{|\\[)'), false)",
    ]
)

# The invocation columns (but source and line) of a judged row. TRY_CAST: a row
# that is not sound, whose columns are never used, cannot stop the query.
COLUMNS = f"""
    {_text("id")} AS id,
    TRY_CAST({_text("start")} AS BIGINT) AS start,
    coalesce({_text("kind")}, 'invocation') AS kind,
    coalesce({_text("status")}, 'ok') AS status,
    {_text("error_type")} AS error_type,
    {_text("error_stage")} AS error_stage,
    coalesce(nullif({_text("function")}, ''), nullif({_text("service")}, '')) AS function,
    {_text("version")} AS version,
    {_text("model")} AS model,
    {_text("model_version")} AS model_version,
    {_text("variant")} AS variant,
    {_text("instance_id")} AS instance_id,
    {_text("platform")} AS platform,
    {_text("init_type")} AS init_type,
    TRY_CAST({_text("memory_mb")} AS INTEGER) AS memory_mb,
    TRY_CAST({_text("duration_ms")} AS DOUBLE) AS duration_ms,
    coalesce(TRY_CAST({_text("cold_start")} AS BOOLEAN), false) AS cold_start,
    TRY_CAST({_text("init_ms")} AS DOUBLE) AS init_ms,
    coalesce(TRY_CAST({_text("sample_rate")} AS DOUBLE), 1.0) AS sample_rate,
    {_v("stages")} AS stages,
    coalesce(TRY_CAST({_text("drift_observations")} AS BIGINT), 0) AS drift_observations,
    bytes AS line_bytes
"""


def judge(numbered: str, source: str, markers: tuple[str, ...], *, every_line: bool = False) -> str:
    """SQL: the lines of ``numbered`` (line, text, rest) a source reads, judged in one pass.

    Each row keeps its line, whether it holds a record of ours (``ours``) and
    whether that is plainly one sound record (``fast``, with its columns), a
    report's marker (``report``), and its text only where something is still
    to be done with it: read record by record, or parsed as a report. A line
    holding the split character (``split``) means the file must be split again.
    With ``every_line`` (a store's rows), rows that mention no record are kept
    too, to be read record by record and reported.
    """
    marked = " OR ".join(f"contains(text, {sql_string(m)})" for m in markers)
    return f"""
        SELECT {sql_string(source)} AS source, line, ours, fast, report, split,
            CASE WHEN fast AND NOT report THEN NULL ELSE text END AS text, {COLUMNS}
        FROM (
            SELECT *, ours AND coalesce({FAST}, false) AS fast FROM (
                SELECT line, text, ours, report, split, j,
                    CAST(strlen(j) AS INTEGER) AS bytes,
                    CASE WHEN ours THEN {PARSE} END AS v
                FROM (
                    SELECT line, text, rest IS NOT NULL AS split,
                        contains(text, '{EVENT}') AS ours, ({marked or "false"}) AS report,
                        substr(text, strpos(text, '{{')) AS j
                    FROM {numbered}
                ) WHERE {"true" if every_line else "ours OR report OR split"}
            )
        )
    """


def rows_of(
    records: Iterable[Invocation], source: str, line: int, encode: Callable[[Invocation], str]
) -> list[dict[str, object]]:
    """Invocation-column rows for records the record-by-record reader found on one line.

    Text that UTF-8 cannot carry (a lone surrogate a request sent) is written
    as its backslash escape, as the store does in its columns: the columnar
    form is UTF-8 throughout.
    """
    import json

    out = []
    for record in records:
        if not -(2**63) <= record.start < 2**63:
            raise ValueError(f"start={record.start}: beyond a 64-bit count of nanoseconds")
        if record.memory_mb is not None and not 0 <= record.memory_mb < 2**31:
            raise ValueError(f"memory_mb={record.memory_mb}: not a memory size")
        stages = record.get("stages")
        row: dict[str, object] = {
            "source": source,
            "line": line,
            "start": record.start,
            "memory_mb": record.memory_mb,
            "duration_ms": float(record.duration_ms),
            "cold_start": bool(record.cold_start),
            "init_ms": None if record.init_ms is None else float(record.init_ms),
            "sample_rate": float(record.sample_rate),
            "stages": None
            if stages is None
            else json.dumps({_utf8(k): v for k, v in stages.items()}, ensure_ascii=False),
            "drift_observations": record.drift_observations,
            "line_bytes": len(encode(record)),
        }
        for name in _TEXT:
            value = record.get(name)
            row[name] = None if value is None else _utf8(value)
        row["kind"] = record.kind
        row["status"] = record.status
        row["function"] = _utf8(record.function or record.service or "") or None
        out.append(row)
    return out


_TEXT = (
    "id",
    "error_type",
    "error_stage",
    "version",
    "model",
    "model_version",
    "variant",
    "instance_id",
    "platform",
    "init_type",
)


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def invocations_of(
    db: duckdb.DuckDBPyConnection, judged: str, slow: list[dict[str, object]]
) -> duckdb.DuckDBPyRelation:
    """The invocation columns: the sound records of table ``judged``, and the ``slow`` rows
    the record-by-record reader made of the others."""
    from ..columns import INVOCATIONS, arrow_table, sql_name

    columns = ", ".join(sql_name(name) for name in INVOCATIONS)
    relation = db.sql(f"SELECT {columns} FROM {judged} WHERE fast")
    if slow:
        db.register(f"{judged}_slow", arrow_table(slow, "invocations"))
        relation = relation.union(db.table(f"{judged}_slow"))
    return relation
