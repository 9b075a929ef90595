"""`obs report`'s operating figures, reduced in DuckDB from the columnar form.

The same figures, by the same rules, as `summary.summarize_records` computes
record by record (that module is the reference; the test suite checks the
two agree on generated records): groups by function, model, model version and
variant in order of first appearance; warm-ups counted but kept out of
latency and cold starts; timeouts kept out of latency; stage percentiles
weighted by ``1 / sample_rate``; percentiles the weighted nearest rank.
"""

from __future__ import annotations

from .summary import PERCENTILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .frames import Frames
    from .summary import GroupKey

__all__ = ["GroupFigures", "figures"]

_KEY = "function, model, model_version, variant"


class GroupFigures:
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

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.invocations if self.invocations else None

    @property
    def cold_start_rate(self) -> float | None:
        return self.cold_starts / self.invocations if self.invocations else None

    def as_dict(self) -> dict[str, object]:
        return dict(self._data)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _percentiles(values: str) -> str:
    """Weighted nearest-rank percentiles per (g, metric) of (g, metric, value, weight) rows."""
    picks = ", ".join(
        f"min(value) FILTER (WHERE cum >= {q / 100!r} * total - 1e-9 * total) AS p{q}"
        for q in PERCENTILES
    )
    return f"""
        SELECT g, metric, {picks} FROM (
            SELECT g, metric, value,
                sum(weight) OVER (PARTITION BY g, metric ORDER BY value, weight
                                  ROWS UNBOUNDED PRECEDING) AS cum,
                sum(weight) OVER (PARTITION BY g, metric) AS total
            FROM ({values})
        ) GROUP BY g, metric
    """


_QUERY = f"""
WITH grouped AS (
    SELECT *, dense_rank() OVER (ORDER BY {_KEY}) AS g,
           min((start, rank, line)) OVER (PARTITION BY {_KEY}) AS first_seen
    FROM invocations
),
counts AS (
    SELECT g, any_value(first_seen) AS first_seen,
        any_value(function) AS function, any_value(model) AS model,
        any_value(model_version) AS model_version, any_value(variant) AS variant,
        count(*) FILTER (WHERE kind <> 'warmup') AS invocations,
        count(*) FILTER (WHERE kind <> 'warmup' AND status = 'error') AS errors,
        count(*) FILTER (WHERE kind = 'timeout') AS timeouts,
        count(*) FILTER (WHERE kind <> 'warmup' AND cold_start) AS cold_starts,
        count(*) FILTER (WHERE kind = 'warmup') AS warmups
    FROM grouped GROUP BY g
),
stage_rows AS (
    SELECT g, start, rank, line, entry.key AS stage, entry.value AS value,
           CASE WHEN sample_rate > 0 THEN 1.0 / sample_rate ELSE 1.0 END AS weight,
           position
    FROM (
        SELECT g, start, rank, line, sample_rate,
               unnest(map_entries(json_transform(stages, '"MAP(VARCHAR, DOUBLE)"'))) AS entry,
               unnest(range(1, 1 + len(map_entries(
                   json_transform(stages, '"MAP(VARCHAR, DOUBLE)"'))))) AS position
        FROM grouped WHERE kind NOT IN ('warmup', 'timeout') AND stages IS NOT NULL
    )
),
metrics AS (
    SELECT g, 'duration' AS metric, duration_ms AS value, 1.0 AS weight
        FROM grouped WHERE kind NOT IN ('warmup', 'timeout')
    UNION ALL
    SELECT g, 'init', init_ms, 1.0 FROM grouped
        WHERE kind <> 'warmup' AND cold_start AND init_ms IS NOT NULL
    UNION ALL
    SELECT g, 'line', line_bytes, 1.0 FROM grouped
    UNION ALL
    SELECT g, 'stage:' || stage, value, weight FROM stage_rows
)
SELECT 'group' AS what, g, first_seen, function, model, model_version, variant,
       invocations, errors, timeouts, cold_starts, warmups, NULL AS metric,
       NULL AS p50, NULL AS p95, NULL AS p99, NULL AS stage_order
FROM counts
UNION ALL
SELECT 'metric', p.g, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, p.metric,
       p.p50, p.p95, p.p99, o.stage_order
FROM ({_percentiles("SELECT * FROM metrics")}) AS p
LEFT JOIN (
    SELECT g, 'stage:' || stage AS metric, min((start, rank, line, position)) AS stage_order
    FROM stage_rows GROUP BY g, stage
) AS o ON o.g = p.g AND o.metric = p.metric
"""


def figures(frames: Frames) -> list[GroupFigures]:
    """One `GroupFigures` per group, in order of first appearance."""
    rows = frames.db.execute(_QUERY).fetchall()
    groups: dict[int, dict[str, object]] = {}
    order: dict[int, object] = {}
    keys: dict[int, GroupKey] = {}
    spreads: dict[int, dict[str, dict[str, float | None]]] = {}
    stage_order: dict[int, list[tuple[object, str]]] = {}
    for row in rows:
        (what, g, first_seen, function, model, version, variant, invocations, errors,
         timeouts, cold_starts, warmups, metric, p50, p95, p99, stage_at) = row  # fmt: skip
        if what == "group":
            order[g] = first_seen
            keys[g] = (function, model, version, variant)
            groups[g] = {
                "invocations": invocations,
                "errors": errors,
                "timeouts": timeouts,
                "cold_starts": cold_starts,
                "warmups": warmups,
            }
            continue
        spread = {"p50": p50, "p95": p95, "p99": p99}
        spreads.setdefault(g, {})[metric] = spread
        if metric.startswith("stage:"):
            stage_order.setdefault(g, []).append((stage_at, metric[len("stage:") :]))
    out = []
    for g in sorted(groups, key=lambda g: order[g]):  # type: ignore[arg-type, return-value]
        data = groups[g]
        found = spreads.get(g, {})
        none = {f"p{q}": None for q in PERCENTILES}
        invocations = data["invocations"]
        assert isinstance(invocations, int)
        stages = [name for _, name in sorted(stage_order.get(g, []))]
        errors, cold = data["errors"], data["cold_starts"]
        assert isinstance(errors, int) and isinstance(cold, int)
        out.append(
            GroupFigures(
                keys[g],
                {
                    "function": keys[g][0],
                    "model": keys[g][1],
                    "model_version": keys[g][2],
                    "variant": keys[g][3],
                    "invocations": invocations,
                    "errors": errors,
                    "error_rate": errors / invocations if invocations else None,
                    "timeouts": data["timeouts"],
                    "cold_starts": cold,
                    "cold_start_rate": cold / invocations if invocations else None,
                    "warmups": data["warmups"],
                    "duration_ms": found.get("duration", none),
                    "cold_init_ms": found.get("init", none),
                    "stages_ms": {name: found[f"stage:{name}"] for name in stages},
                    "line_bytes_p50": found.get("line", none)["p50"],
                },
            )
        )
    return out
