"""`obs report --drift`: windows merged over time, the statistics per column, the rules that fire.

The answer is one JSON-able document (schema ``inferobs.drift/1``), so the
table, Markdown, JSON and HTML forms all say the same thing: per arm
(function, model, version, variant) and column, the statistic of every period
and the latest; the findings of every alert rule, drift and operations alike;
and coverage, the share of the observations the handlers made that reached
a delivered window (an environment reclaimed while idle takes its open window
with it).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from ..drift.baseline import Baseline, Categorical, ClassScores, Numeric
from .rules import DRIFT_METRICS, Finding, Rule, judge

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..drift.compare import Period
    from .frames import Frames

__all__ = ["DRIFT_SCHEMA", "drift_answer", "finding_dict", "newest_first", "operations_by_rule"]

DRIFT_SCHEMA = "inferobs.drift/1"
_STATISTICS = ("psi", "jensen_shannon", "wasserstein", "ks", "chi2", "chi2_p_value")
_GROUP = ("function", "model", "model_version", "variant")


def drift_answer(
    frames: Frames,
    baseline: Baseline,
    *,
    baseline_path: str,
    period_s: float,
    rules: list[Rule],
    since_ns: int | None,
) -> dict[str, Any]:
    """The drift report of what ``frames`` holds (read with ``baseline``)."""
    from ..drift.compare import compare  # numpy: not for `obs report` without --drift
    from ..drift.window_table import WindowTable

    windows = frames.windows if frames.windows is not None else WindowTable.empty(baseline)
    periods, _ = compare(baseline, windows, period_s)
    by_window: dict[float, list[Period]] = {period_s: periods}
    for rule in rules:
        if rule.metric in DRIFT_METRICS and rule.window_s not in by_window:
            by_window[rule.window_s] = compare(baseline, windows, rule.window_s)[0]
    findings = judge(rules, by_window, operations_by_rule(frames, rules))
    return {
        "schema": DRIFT_SCHEMA,
        "baseline": {
            "path": baseline_path,
            "hash": baseline.hash,
            "prediction": baseline.prediction[0],
            "features": list(baseline.features),
        },
        "since": None if since_ns is None else _iso(since_ns),
        "window_s": period_s,
        "windows": len(windows),
        "instances": len({i for i in windows.instance if i is not None}),
        "other_baseline_windows": windows.other,
        "coverage": _coverage(frames, windows),
        "groups": _groups(baseline, periods, findings),
        "rules": [{**asdict(rule), "columns": list(rule.columns)} for rule in rules],
        "findings": [finding_dict(f) for f in sorted(findings, key=newest_first)],
        "alert": any(f.level == "alert" for f in findings),
        "warn": any(f.level == "warn" for f in findings),
    }


def operations_by_rule(frames: Frames, rules: list[Rule]) -> dict[float, list[dict[str, Any]]]:
    """The per-window operations figures each operations rule is judged on."""
    operations: dict[float, list[dict[str, Any]]] = {}
    if frames.count():
        from .figures import by_window

        for rule in rules:
            if rule.metric not in DRIFT_METRICS and rule.window_s not in operations:
                operations[rule.window_s] = by_window(frames, rule.window_s)
    return operations


def _coverage(frames: Frames, windows: Any) -> dict[str, Any] | None:
    """Observations delivered in windows against observations the invocations say they made.

    None where it means nothing: no invocation says it counted, or some windows
    were counted against another baseline (the invocations do not say which).
    """
    made = 0
    if frames.count() and not windows.other:
        ((total,),) = frames.db.execute(
            "SELECT coalesce(sum(drift_observations), 0) FROM invocations"
        ).fetchall()
        made = int(total)
    if not made:
        return None
    delivered = int(windows.observations.sum())
    return {"made": made, "delivered": delivered, "share": min(delivered / made, 1.0)}


def _kind(baseline: Baseline, column: str) -> str:
    name, spec = baseline.prediction
    specs: dict[str, Any] = dict(baseline.features)
    if isinstance(spec, ClassScores):
        specs[name] = spec.label
        specs.update({f"{name}.{c}": s for c, s in zip(spec.classes, spec.scores, strict=True)})
    else:
        specs[name] = spec
    found = specs.get(column)
    if isinstance(found, Numeric):
        return "numeric"
    if isinstance(found, Categorical):
        return "categorical"
    return "-"


def _groups(
    baseline: Baseline, periods: list[Period], findings: list[Finding]
) -> list[dict[str, Any]]:
    levels: dict[tuple[Any, ...], str] = {}
    for finding in findings:
        key = (finding.group, finding.subject)
        if finding.level == "alert" or key not in levels:
            levels[key] = finding.level
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for period in periods:
        group = out.get(period.group)
        if group is None:
            group = dict(zip(_GROUP, period.group, strict=True))
            group["columns"] = {}
            out[period.group] = group
        for column in period.columns:
            entry = group["columns"].get(column.column)
            if entry is None:
                entry = {
                    "column": column.column,
                    "kind": _kind(baseline, column.column),
                    "observations": 0,
                    "missing": 0,
                    "invalid": 0,
                    "level": levels.get((period.group, column.column)),
                    "series": [],
                }
                group["columns"][column.column] = entry
            entry["observations"] += column.observations
            entry["missing"] += column.missing
            entry["invalid"] += column.invalid
            point = {"start_ns": period.start_ns, "observations": column.observations}
            point.update({s: getattr(column, s) for s in _STATISTICS})
            entry["series"].append(point)
    groups = []
    for group in out.values():
        columns = list(group.pop("columns").values())
        for entry in columns:
            measured = [p for p in entry["series"] if p["psi"] is not None]
            entry["latest"] = measured[-1] if measured else None
        group["columns"] = columns
        groups.append(group)
    return groups


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as the report's JSON holds it."""
    group = finding.group + (None,) * (len(_GROUP) - len(finding.group))
    return {
        "rule": finding.rule,
        "level": finding.level,
        "metric": finding.metric,
        "value": finding.value,
        "subject": finding.subject,
        **dict(zip(_GROUP, group, strict=True)),
        "start": _iso(finding.start_ns),
        "start_ns": finding.start_ns,
        "samples": finding.samples,
    }


def newest_first(finding: Finding) -> tuple[int, int, str]:
    return (-finding.start_ns, 0 if finding.level == "alert" else 1, finding.subject)


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")
