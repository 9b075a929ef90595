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

__all__ = ["invocations_of", "judge", "rows_of"]

FIELD_ORDER = list(FIELDS)
_PATHS = "[" + ", ".join(f"'$.{name}'" for name in FIELD_ORDER) + "]"

# The JSON types (DuckDB's json_type names) a field's Python types accept. One
# parse gives every field's type; the list, cast to text, reads like
# "[UBIGINT, VARCHAR, NULL, 'NULL', ...]": NULL for an absent field, 'NULL'
# for a JSON null, both of which the reader takes as absent. Whole-number
# fields accept only integer types, so 1.0 or 1e3 there is not plainly sound.
_JSON_TYPES = {
    str: ("VARCHAR",),
    int: ("BIGINT", "UBIGINT"),
    float: ("DOUBLE", "BIGINT", "UBIGINT"),
    bool: ("BOOLEAN",),
    dict: ("OBJECT",),
}


def _types_pattern() -> str:
    fields = []
    for name in FIELD_ORDER:
        types, _ = FIELDS[name]
        accepted = sorted({json_type for kind in types for json_type in _JSON_TYPES[kind]})
        if name != "event":  # the one field a record cannot be without
            accepted += ["NULL", "'NULL'"]
        fields.append("(" + "|".join(accepted) + ")")
    return "^\\[" + ", ".join(fields) + "\\]$"


# The values, by a second parse into typed columns. Its conversions are lenient
# ("12" into a number reads as 12), which the types above make harmless: a row
# whose types are not the accepted ones is never ``fast``. Whole numbers are
# read wide, so that a value beyond the column's range is seen, not lost.
_SQL_TYPES = {
    (str,): "VARCHAR",
    (int,): "HUGEINT",
    (int, float): "DOUBLE",
    (bool,): "BOOLEAN",
    (dict,): "JSON",
}
_READ = ", ".join(
    f'"{name}": "{_SQL_TYPES[FIELDS[name][0]]}"'
    for name in FIELD_ORDER
    if name not in ("trace_id", "input", "tags", "sdk_faults")
)
# a number too big for a double (1e400) parses as infinite: the reader refuses it
_FINITE = [
    f"coalesce(isfinite(r.{name}), true)"
    for name, (types, _) in FIELDS.items()
    if types == (int, float)
]


def _enum(name: str, values: Iterable[str], default: str) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"coalesce(r.{name}, '{default}') IN ({listed})"


# True where ``j`` is one record of ours whose every field is sound; the rest is
# read record by record. A stage value that is not a number shows in the
# stages' text as a colon followed by something other than a number, and a
# value that may be too big for a double as an exponent of three digits.
_TYPES_SOUND = f"regexp_full_match(types, {sql_string(_types_pattern())})"

_FAST = " AND ".join(
    [
        # the parser takes them (a lone escaped surrogate, which UTF-8 text cannot
        # hold, fails the parse: ``types`` is NULL)
        "NOT contains(j, 'NaN') AND NOT contains(j, 'Infinity')",
        "{types}",
        f"r.event = '{EVENT}'",
        f"r.schema BETWEEN 1 AND {SCHEMA_VERSION}",
        f"r.start BETWEEN {-(2**63)} AND {2**63 - 1}",
        "r.duration_ms IS NOT NULL",
        f"coalesce(r.memory_mb BETWEEN {-(2**31)} AND {2**31 - 1}, true)",
        f"coalesce(r.drift_observations BETWEEN {-(2**63)} AND {2**63 - 1}, true)",
        _enum("kind", KINDS, "invocation"),
        _enum("status", STATUSES, "ok"),
        *_FINITE,
        *(
            f"NOT coalesce(regexp_matches(CAST(r.{name} AS VARCHAR), "
            "':\\s*(true|false|null|\"|\\{|\\[)|[0-9][eE][+-]?[0-9]{3}'), false)"
            for name in ("stages", "stage_starts")
        ),
    ]
)

# The invocation columns (but source and line) of a judged row. TRY_CAST: a row
# that is not sound, whose columns are never used, cannot stop the query.
_COLUMNS = """
    r.id AS id,
    TRY_CAST(r.start AS BIGINT) AS start,
    coalesce(r.kind, 'invocation') AS kind,
    coalesce(r.status, 'ok') AS status,
    r.error_type AS error_type,
    r.error_stage AS error_stage,
    coalesce(nullif(r.function, ''), nullif(r.service, '')) AS function,
    r.version AS version,
    r.model AS model,
    r.model_version AS model_version,
    r.variant AS variant,
    r.instance_id AS instance_id,
    r.platform AS platform,
    r.init_type AS init_type,
    TRY_CAST(r.memory_mb AS INTEGER) AS memory_mb,
    r.duration_ms AS duration_ms,
    coalesce(r.cold_start, false) AS cold_start,
    r.init_ms AS init_ms,
    coalesce(r.sample_rate, 1.0) AS sample_rate,
    r.stages AS stages,
    coalesce(TRY_CAST(r.drift_observations AS BIGINT), 0) AS drift_observations,
    bytes AS line_bytes
"""


def judge(
    db: duckdb.DuckDBPyConnection,
    numbered: str,
    markers: tuple[str, ...],
    *,
    every_line: bool = False,
) -> str:
    """SQL: every line of ``numbered`` (line, text, rest), judged in one pass, in its order.

    Each row keeps its line (NULL where ``numbered`` does not number its lines:
    the table built from this query numbers them by their place), whether it
    holds a record of ours (``ours``) and whether that is plainly one sound
    record (``fast``, with its columns), a report's marker (``report``), and
    its text only where something is still to be done with it: read record by
    record, or parsed as a report. A line holding the split character
    (``split``) means the file must be split again. With ``every_line`` (a
    store's rows), rows that mention no record keep their text too, to be read
    record by record and reported. Every row is kept, so that a table made
    from the query in one parallel pass still has the file's order.

    A file's records have few shapes: the sound lists of field types of its
    first lines are learned first (a table in ``db``), and a line whose types
    are one of those is passed by one lookup; any other is matched by the
    regular expression, as every line would be without them.
    """
    from . import fresh_name

    known = fresh_name("_sound_types")
    sample = _parsed(f"(SELECT * FROM {numbered} LIMIT {_SAMPLE_LINES})", markers)
    db.execute(
        f"CREATE OR REPLACE TEMP TABLE {known} AS "
        f"SELECT DISTINCT types FROM ({sample}) WHERE ours AND {_TYPES_SOUND}"
    )
    types = f"CASE WHEN types IN (SELECT types FROM {known}) THEN true ELSE {_TYPES_SOUND} END"
    wanted = "true" if every_line else "ours OR report OR split"
    return f"""
        SELECT line, ours, fast, report, split,
            CASE WHEN ({wanted}) AND NOT (fast AND NOT report) THEN text END AS text, {_COLUMNS}
        FROM (
            SELECT *, ours AND coalesce({_FAST.replace("{types}", types)}, false) AS fast
            FROM ({_parsed(numbered, markers)})
        )
    """


_SAMPLE_LINES = 10_000


def _parsed(numbered: str, markers: tuple[str, ...]) -> str:
    """SQL: the lines of ``numbered``, with the types (``types``, as text) and values
    (``r``) of the record each mentions."""
    marked = " OR ".join(f"contains(text, {sql_string(m)})" for m in markers)
    return f"""
        SELECT line, text, ours, report, split, j,
            CAST(strlen(j) AS INTEGER) AS bytes,
            CASE WHEN ours THEN CAST(TRY(json_type(j, {_PATHS})) AS VARCHAR) END AS types,
            CASE WHEN ours THEN TRY(json_transform(j, '{{{_READ}}}')) END AS r
        FROM (
            SELECT line, text, split, ours,
                -- the platform's lines never hold a record of ours
                CASE WHEN ours THEN false ELSE ({marked or "false"}) END AS report,
                CASE WHEN NOT ours THEN NULL
                    WHEN starts_with(text, '{{') THEN text
                    ELSE substr(text, strpos(text, '{{')) END AS j
            FROM (
                SELECT line, text, rest IS NOT NULL AS split, contains(text, '{EVENT}') AS ours
                FROM {numbered}
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
    db: duckdb.DuckDBPyConnection, judged: str, source: str, slow: list[dict[str, object]]
) -> duckdb.DuckDBPyRelation:
    """The invocation columns: the sound records of table ``judged``, read from ``source``,
    and the ``slow`` rows the record-by-record reader made of the others."""
    from ..columns import INVOCATIONS, arrow_table, sql_name

    columns = ", ".join(
        f"{sql_string(source)} AS source" if name == "source" else sql_name(name)
        for name in INVOCATIONS
    )
    relation = db.sql(f"SELECT {columns} FROM {judged} WHERE fast")
    if slow:
        db.register(f"{judged}_slow", arrow_table(slow, "invocations"))
        relation = relation.union(db.table(f"{judged}_slow"))
    return relation
