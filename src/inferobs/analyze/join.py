"""Our invocation records joined with the platform's reports on the request id.

Each side knows what the other cannot: our record has the stages, the model,
the input and whether a user waited for init; Lambda's REPORT has what was
billed, the memory high-water mark, the init and SnapStart restore durations,
and it exists for invocations that never finished (an out-of-memory kill or a
crash leaves a REPORT and no record of ours). The join keeps every row of both
sides (a full outer join), so nothing read is lost:

- a record with its report: our columns, completed by the report's billed
  duration, max memory, restore durations and (where given) init duration;
- a record without a report: billed duration computed the way Lambda bills it
  (``billed_computed`` true), see `BILLED_SQL`;
- a report without a record: a row of its own built from the report (see
  docs/join.md for the kind, status and error type it gets).

The same report read twice (one export given twice, or beside a copy of
itself) counts once. Several different reports under one id (an asynchronous
request retried keeps its id) are paired with that id's records in order of
time.
"""

from __future__ import annotations

from .columns import INVOCATIONS, sql_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

__all__ = ["JOINED", "join"]

# Columns the join adds after the `INVOCATIONS` ones.
JOINED: dict[str, str] = {
    "billed_ms": "DOUBLE",  # REPORT's Billed Duration, else computed from our record
    "billed_computed": "BOOLEAN",  # true where no REPORT gave billed_ms
    "max_memory_mb": "INTEGER",  # REPORT's Max Memory Used
    "restore_ms": "DOUBLE",  # SnapStart Restore Duration
    "billed_restore_ms": "DOUBLE",  # SnapStart Billed Restore Duration (billed apart)
    "reported": "BOOLEAN",  # a REPORT was found for the row
}

# Billed duration of a record with no REPORT. Lambda bills the handler's time
# rounded up to the millisecond; on an on-demand cold start the init is billed
# with it (on-demand ZIP functions on managed runtimes since August 2025, the
# rest before), rounded up together: REPORT shows Billed Duration =
# ceil(Duration + Init Duration). Provisioned concurrency's init is paid by the
# provisioned hours, and SnapStart's restore is billed apart (Billed Restore
# Duration), so neither is added. Rounding to the microsecond first keeps
# float noise (0.1 + 0.2) from adding a millisecond.
BILLED_SQL = (
    "CEIL(ROUND(i.duration_ms + CASE WHEN i.cold_start AND i.init_ms IS NOT NULL "
    "AND coalesce(i.init_type, 'on-demand') = 'on-demand' THEN i.init_ms ELSE 0 END, 3))"
)

_counter = iter(range(1, 1 << 62))


def join(
    db: duckdb.DuckDBPyConnection,
    invocations: duckdb.DuckDBPyRelation,
    reports: duckdb.DuckDBPyRelation,
) -> duckdb.DuckDBPyRelation:
    """``invocations`` and ``reports`` joined: the `INVOCATIONS` columns, then `JOINED`'s.

    Both relations come from ``db`` with their kind's columns
    (`inferobs.analyze.columns.conform`); ``reports`` may also carry
    ``error_type`` (the platform's Error Type), which names what ended an
    invocation that left no record of ours.
    """
    n = next(_counter)
    inv, rep = f"_join_inv{n}", f"_join_rep{n}"
    invocations.create_view(inv, replace=True)
    reports.create_view(rep, replace=True)
    error_type = "error_type" if "error_type" in reports.columns else "CAST(NULL AS VARCHAR)"
    columns = ",\n  ".join(
        f"CAST({_EXPRESSIONS.get(name, f'i.{sql_name(name)}')} AS {kind}) AS {sql_name(name)}"
        for name, kind in {**INVOCATIONS, **JOINED}.items()
    )
    return db.sql(
        f"""
WITH r_all AS (
  SELECT *, {error_type} AS _error_type,
    row_number() OVER (
      PARTITION BY id, "end", duration_ms, billed_ms, memory_mb, max_memory_mb,
        init_ms, restore_ms, billed_restore_ms, status
      ORDER BY source, line) AS _copy
  FROM {rep} WHERE id IS NOT NULL
),
r AS (
  SELECT *, row_number() OVER (
    PARTITION BY id ORDER BY "end" NULLS LAST, source, line) AS _nth
  FROM r_all WHERE _copy = 1
),
i AS (
  SELECT *, true AS _mine, CASE WHEN id IS NOT NULL THEN row_number() OVER (
    PARTITION BY id ORDER BY start NULLS LAST, source, line) END AS _nth
  FROM {inv}
)
SELECT
  {columns}
FROM i FULL OUTER JOIN r ON i.id = r.id AND i._nth = r._nth
"""
    )


# How each output column is made, where it is not simply our record's. ``i``
# is our record (``i._mine`` true when there is one), ``r`` the report.
_FROM_REPORT_KIND = "CASE WHEN r.status = 'timeout' THEN 'timeout' ELSE 'invocation' END"
_FROM_REPORT_STATUS = "CASE WHEN r.status = 'success' THEN 'ok' ELSE 'error' END"
_FROM_REPORT_ERROR = (
    "CASE WHEN r.status = 'success' THEN NULL "
    "WHEN r._error_type IS NOT NULL THEN r._error_type "
    "WHEN r.status = 'timeout' THEN NULL "
    "WHEN r.max_memory_mb >= r.memory_mb THEN 'Runtime.OutOfMemory' "
    "ELSE 'crash' END"
)
_FROM_REPORT_INIT_TYPE = (
    "CASE WHEN r.restore_ms IS NOT NULL THEN 'snap-start' "
    "WHEN r.init_ms IS NOT NULL THEN 'on-demand' END"
)


def _ours_else(ours: str, theirs: str) -> str:
    return f"CASE WHEN i._mine THEN {ours} ELSE {theirs} END"


_EXPRESSIONS: dict[str, str] = {
    "source": _ours_else("i.source", "r.source"),
    "line": _ours_else("i.line", "r.line"),
    "id": "coalesce(i.id, r.id)",
    "start": _ours_else("i.start", 'r."end" - CAST(round(r.duration_ms * 1e6) AS BIGINT)'),
    "kind": _ours_else("i.kind", _FROM_REPORT_KIND),
    "status": _ours_else("i.status", _FROM_REPORT_STATUS),
    "error_type": _ours_else("i.error_type", _FROM_REPORT_ERROR),
    "function": "coalesce(i.function, r.function)",
    "platform": _ours_else("i.platform", "'aws_lambda'"),
    "init_type": _ours_else("i.init_type", _FROM_REPORT_INIT_TYPE),
    "memory_mb": "coalesce(i.memory_mb, r.memory_mb)",
    "duration_ms": _ours_else("i.duration_ms", "r.duration_ms"),
    "cold_start": _ours_else("i.cold_start", "r.init_ms IS NOT NULL OR r.restore_ms IS NOT NULL"),
    "init_ms": "coalesce(r.init_ms, i.init_ms)",
    "sample_rate": _ours_else("i.sample_rate", "1.0"),
    "billed_ms": f"CASE WHEN r.id IS NOT NULL THEN r.billed_ms ELSE {BILLED_SQL} END",
    "billed_computed": "r.id IS NULL",
    "max_memory_mb": "r.max_memory_mb",
    "restore_ms": "r.restore_ms",
    "billed_restore_ms": "r.billed_restore_ms",
    "reported": "r.id IS NOT NULL",
}
