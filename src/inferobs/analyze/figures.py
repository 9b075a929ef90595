"""`obs report`'s operating figures, reduced in DuckDB from the columnar form.

The same figures, by the same rules, as `summary.summarize_records` computes
record by record (that module is the reference; the test suite checks the
two agree on generated records): groups by function, model, model version and
variant in order of first appearance; warm-ups counted but kept out of
latency and cold starts; timeouts kept out of latency; stage percentiles
weighted by ``1 / sample_rate``; percentiles the weighted nearest rank.
"""

from __future__ import annotations

from .summary import PERCENTILES, Rates

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .frames import Frames
    from .summary import GroupKey

__all__ = ["GroupFigures", "by_window", "figures"]

_KEY = "function, model, model_version, variant"


class GroupFigures(Rates):
    """One group's figures, shaped like `summary.GroupSummary` for the report sections."""

    def __init__(self, key: GroupKey, data: dict[str, object]) -> None:
        self.key = key
        self.function, self.model, self.model_version, self.variant = key
        self._data = data
        self.invocations = _int(data["invocations"])
        self.errors = _int(data["errors"])
        self.timeouts = _int(data["timeouts"])
        self.cold_starts = _int(data["cold_starts"])
        self.warmups = _int(data["warmups"])

    def as_dict(self) -> dict[str, object]:
        return dict(self._data)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


_QS = "[" + ", ".join(str(q / 100) for q in PERCENTILES) + "]"

# Counts and the unweighted percentiles, one row per group. DuckDB's
# quantile_disc is the nearest rank (the smallest value with at least q of the
# values at or below it), which is what `summary.percentile` computes for
# equal weights; a hash aggregate, so ten million rows never need sorting as one.
_GROUPS = f"""
SELECT {_KEY},
    min((start, rank, line)) AS first_seen,
    count(*) FILTER (WHERE kind <> 'warmup') AS invocations,
    count(*) FILTER (WHERE kind <> 'warmup' AND status = 'error') AS errors,
    count(*) FILTER (WHERE kind = 'timeout') AS timeouts,
    count(*) FILTER (WHERE kind <> 'warmup' AND cold_start) AS cold_starts,
    count(*) FILTER (WHERE kind = 'warmup') AS warmups,
    quantile_disc(duration_ms, {_QS}) FILTER (WHERE kind NOT IN ('warmup', 'timeout'))
        AS duration,
    quantile_disc(init_ms, {_QS}) FILTER (WHERE kind <> 'warmup' AND cold_start) AS init,
    quantile_disc(line_bytes, 0.5) AS line
FROM invocations GROUP BY ALL
"""

# Stage values, one row per stage entry of a line with detail, weighted by 1 / sample_rate;
# json_each walks the object once, and its node ids keep the entries' order
_STAGE_ROWS = f"""
SELECT {_KEY}, entry.key AS stage, CAST(entry.value AS DOUBLE) AS value, weight,
       (start, rank, line, entry.id) AS seen
FROM (
    SELECT {_KEY}, start, rank, line, stages,
        CASE WHEN sample_rate > 0 THEN 1.0 / sample_rate ELSE 1.0 END AS weight
    FROM invocations WHERE kind NOT IN ('warmup', 'timeout') AND stages IS NOT NULL
) AS detail, json_each(detail.stages) AS entry
"""

_STAGES = f"""
SELECT {_KEY}, stage, min(seen) AS first_seen, count(DISTINCT weight) AS weights,
       quantile_disc(value, {_QS}) AS spread
FROM _stage_rows GROUP BY ALL
"""

# Where weights differ (the sample rate changed), the weighted nearest rank
_WEIGHTED = f"""
SELECT {_KEY}, stage, {
    ", ".join(
        f"min(value) FILTER (WHERE cum >= {q / 100!r} * total - 1e-9 * total)" for q in PERCENTILES
    )
}
FROM (
    SELECT *, sum(weight) OVER (PARTITION BY {_KEY}, stage ORDER BY value, weight
                                ROWS UNBOUNDED PRECEDING) AS cum,
              sum(weight) OVER (PARTITION BY {_KEY}, stage) AS total
    FROM _stage_rows WHERE ({_KEY}, stage) IN (SELECT ({_KEY}, stage) FROM _mixed)
) GROUP BY ALL
"""


def _spread(values: list[float] | None) -> dict[str, float | None]:
    if values is None:
        return {f"p{q}": None for q in PERCENTILES}
    return {f"p{q}": value for q, value in zip(PERCENTILES, values, strict=True)}


def figures(frames: Frames) -> list[GroupFigures]:
    """One `GroupFigures` per group, in order of first appearance."""
    db = frames.db
    groups = db.execute(_GROUPS).fetchall()
    stages: dict[GroupKey, list[tuple[object, str, dict[str, float | None]]]] = {}
    mixed = []
    # the stage rows are made again for the few stages whose sample rate varied:
    # cheaper than keeping millions of them in a table for the common case
    for row in db.execute(f"WITH _stage_rows AS ({_STAGE_ROWS}) {_STAGES}").fetchall():
        group: GroupKey = (row[0], row[1], row[2], row[3])
        stage, first_seen, weights, spread = row[4:]
        stages.setdefault(group, []).append((first_seen, stage, _spread(spread)))
        if weights > 1:
            mixed.append((*group, stage))
    if mixed:
        db.execute(
            "CREATE OR REPLACE TEMP TABLE _mixed AS SELECT * FROM "
            "(SELECT NULL::VARCHAR function, NULL::VARCHAR model, NULL::VARCHAR model_version,"
            " NULL::VARCHAR variant, NULL::VARCHAR stage) WHERE false"
        )
        db.executemany("INSERT INTO _mixed VALUES (?, ?, ?, ?, ?)", mixed)
        for row in db.execute(f"WITH _stage_rows AS ({_STAGE_ROWS}) {_WEIGHTED}").fetchall():
            group = (row[0], row[1], row[2], row[3])
            stage, values = row[4], list(row[5:])
            for n, (seen, name, _) in enumerate(stages[group]):
                if name == stage:
                    stages[group][n] = (seen, name, _spread(values))
    out = []
    for row in sorted(groups, key=lambda row: row[4]):
        function, model, version, variant = key = row[:4]
        invocations, errors, timeouts, cold, warmups, duration, init, line = row[5:]
        out.append(
            GroupFigures(
                (function, model, version, variant),
                {
                    "function": function,
                    "model": model,
                    "model_version": version,
                    "variant": variant,
                    "invocations": invocations,
                    "errors": errors,
                    "error_rate": errors / invocations if invocations else None,
                    "timeouts": timeouts,
                    "cold_starts": cold,
                    "cold_start_rate": cold / invocations if invocations else None,
                    "warmups": warmups,
                    "duration_ms": _spread(duration),
                    "cold_init_ms": _spread(init),
                    "stages_ms": {name: spread for _, name, spread in sorted(stages.get(key, []))},
                    "line_bytes_p50": None if line is None else float(line),
                },
            )
        )
    return out


def by_window(frames: Frames, window_s: float) -> list[dict[str, object]]:
    """Per function and clock-aligned window: requests, error and cold-start rates, p95 and
    p99 duration (for alert rules on operations; the same rules as `figures`)."""
    window_ns = int(window_s * 1e9)
    rows = frames.db.execute(
        f"""
        SELECT function, start // {window_ns} * {window_ns} AS start_ns,
            count(*) FILTER (WHERE kind <> 'warmup') AS requests,
            count(*) FILTER (WHERE kind <> 'warmup' AND status = 'error') AS errors,
            count(*) FILTER (WHERE kind <> 'warmup' AND cold_start) AS cold,
            quantile_disc(duration_ms, [0.95, 0.99])
                FILTER (WHERE kind NOT IN ('warmup', 'timeout')) AS tail
        FROM invocations WHERE start IS NOT NULL GROUP BY ALL ORDER BY start_ns, function
        """
    ).fetchall()
    out: list[dict[str, object]] = []
    for function, start_ns, requests, errors, cold, tail in rows:
        if not requests:
            continue
        out.append(
            {
                "function": function,
                "start_ns": int(start_ns),
                "requests": int(requests),
                "error_rate": errors / requests,
                "cold_start_rate": cold / requests,
                "p95_ms": None if tail is None else float(tail[0]),
                "p99_ms": None if tail is None else float(tail[1]),
            }
        )
    return out
