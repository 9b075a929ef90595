"""The columnar forms every source is read into: invocations, platform reports, minutes.

Sources translate their format into these columns and nothing else, so the
analyzer (reports, costs, drift) is written once against them. They are
DuckDB relations: the engine scans, filters and aggregates in C, in parallel,
and spills to disk past memory, so a month of a billion invocations reduces
like a day of a thousand (docs/architecture.md says why DuckDB).

``source`` and ``line`` say where each row came from, for problems and for
keeping a record seen twice once.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb
    import pyarrow

__all__ = [
    "CONFIGS",
    "INVOCATIONS",
    "KINDS",
    "MINUTES",
    "POINTS",
    "REPORTS",
    "arrow_table",
    "conform",
    "empty",
    "sql_name",
    "sql_string",
]

# One row per invocation recorded by inferobs, or per row of an invocation table.
INVOCATIONS: dict[str, str] = {
    "source": "VARCHAR",  # the file or store, as given
    "line": "BIGINT",  # its line (files) or row (stores, tables), from 1
    "id": "VARCHAR",  # the platform's request id
    "start": "BIGINT",  # Unix epoch ns
    "kind": "VARCHAR",  # invocation | warmup | timeout
    "status": "VARCHAR",  # ok | error
    "error_type": "VARCHAR",
    "error_stage": "VARCHAR",
    "function": "VARCHAR",  # the function, else the service: what reports group by
    "version": "VARCHAR",
    "model": "VARCHAR",
    "model_version": "VARCHAR",
    "variant": "VARCHAR",
    "instance_id": "VARCHAR",
    "platform": "VARCHAR",
    "init_type": "VARCHAR",
    "memory_mb": "INTEGER",
    "duration_ms": "DOUBLE",
    "cold_start": "BOOLEAN",
    "init_ms": "DOUBLE",
    "sample_rate": "DOUBLE",  # 1 when absent
    "stages": "JSON",  # {name: ms} in order of first entry; NULL when the line has no detail
    "drift_observations": "BIGINT",  # predictions and feature rows counted for drift; 0 none
    "line_bytes": "INTEGER",  # the record's JSON text, bytes (what the log service bills)
}

# One row per platform report of an invocation (Lambda's REPORT line), joined
# to the invocations on the request id.
REPORTS: dict[str, str] = {
    "source": "VARCHAR",
    "line": "BIGINT",
    "id": "VARCHAR",  # RequestId
    "end": "BIGINT",  # Unix epoch ns of the report (the invocation's end), when known
    "function": "VARCHAR",  # when the export says (a log group's name), else NULL
    "duration_ms": "DOUBLE",
    "billed_ms": "DOUBLE",  # Billed Duration: includes on-demand init since August 2025
    "memory_mb": "INTEGER",  # Memory Size
    "max_memory_mb": "INTEGER",  # Max Memory Used
    "init_ms": "DOUBLE",  # Init Duration, on cold starts
    "restore_ms": "DOUBLE",  # SnapStart Restore Duration
    "billed_restore_ms": "DOUBLE",  # SnapStart Billed Restore Duration
    "status": "VARCHAR",  # success | timeout | error, where the report says (newer runtimes)
    "error_type": "VARCHAR",  # the report's Error Type (Runtime.OutOfMemory, ...)
}

# Per-minute aggregates, where only aggregates exist (Azure Functions 2019).
MINUTES: dict[str, str] = {
    "source": "VARCHAR",
    "function": "VARCHAR",
    "minute": "BIGINT",  # Unix epoch ns of the minute's start
    "invocations": "BIGINT",
    "duration_avg_ms": "DOUBLE",  # over the whole trace, where only that is known
    "duration_p50_ms": "DOUBLE",
    "duration_p99_ms": "DOUBLE",
    "duration_max_ms": "DOUBLE",
}

# A function's configuration, as `obs pull` found it in its cloud (the store's
# function_configs table): what a cost report prices as the setup in force.
CONFIGS: dict[str, str] = {
    "source": "VARCHAR",
    "function": "VARCHAR",
    "provider": "VARCHAR",  # aws | gcp | azure
    "region": "VARCHAR",
    "memory_mb": "INTEGER",
    "arch": "VARCHAR",  # x86_64 | arm64
    "timeout_s": "DOUBLE",
    "provisioned": "INTEGER",  # environments kept warm (Lambda's provisioned concurrency)
    "pulled_at": "BIGINT",  # Unix epoch ns: the newest row of a function is the one in force
}

# The platform's metric series, as `obs pull` found them (the store's metric_points).
POINTS: dict[str, str] = {
    "source": "VARCHAR",
    "function": "VARCHAR",
    "metric": "VARCHAR",  # the platform's name: Invocations, run.googleapis.com/request_count
    "statistic": "VARCHAR",  # Sum, Total, Maximum, p99, ...
    "period_s": "INTEGER",
    "at": "BIGINT",  # Unix epoch ns of the period's start
    "value": "DOUBLE",
}

KINDS: dict[str, dict[str, str]] = {
    "invocations": INVOCATIONS,
    "reports": REPORTS,
    "minutes": MINUTES,
    "configs": CONFIGS,
    "points": POINTS,
}


def conform(relation: duckdb.DuckDBPyRelation, kind: str) -> duckdb.DuckDBPyRelation:
    """``relation`` with exactly ``kind``'s columns, in order and type; missing ones NULL."""
    have = set(relation.columns)
    parts = [
        f"CAST({sql_name(name)} AS {kind_type}) AS {sql_name(name)}"
        if name in have
        else f"CAST(NULL AS {kind_type}) AS {sql_name(name)}"
        for name, kind_type in KINDS[kind].items()
    ]
    return relation.project(", ".join(parts))


def empty(db: duckdb.DuckDBPyConnection, kind: str) -> duckdb.DuckDBPyRelation:
    """A relation with ``kind``'s columns and no rows."""
    columns = ", ".join(f"CAST(NULL AS {t}) AS {sql_name(n)}" for n, t in KINDS[kind].items())
    return db.sql(f"SELECT {columns} WHERE false")


def arrow_table(rows: list[dict[str, object]], kind: str) -> pyarrow.Table:
    """Rows made in Python (the record-by-record path, parsed reports) as ``kind``'s columns."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
    }
    return pa.table(
        {
            name: pa.array([row.get(name) for row in rows], types[kind_type])
            for name, kind_type in KINDS[kind].items()
        }
    )


def sql_name(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (paths, names, markers: anything a user gave)."""
    return "'" + text.replace("'", "''") + "'"
