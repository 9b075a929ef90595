"""Alert rules: a small TOML file of thresholds, judged on drift and on operations alike.

One engine for both, so a sustained p99 spike or an error rate alerts the way
a drifting feature does: each rule names a metric, a warn and an alert level
(higher is worse for every metric), the period it is judged over and the
fewest samples in that period before it may fire. The shipped rules are
`default_rules.toml` beside this module; ``--rules FILE`` replaces them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .toml_file import read_toml

__all__ = ["DRIFT_METRICS", "OPS_METRICS", "Finding", "Rule", "RuleError", "judge", "load_rules"]

DRIFT_METRICS = ("psi", "jensen_shannon", "wasserstein", "ks")
OPS_METRICS = ("p95_ms", "p99_ms", "error_rate", "cold_start_rate")
DEFAULT_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_rules.toml")


class RuleError(ValueError):
    """A rules file that cannot be used: the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    alert: float
    warn: float | None
    window_s: float
    min_samples: int
    columns: tuple[str, ...] = ("*",)

    def level(self, value: float) -> str | None:
        """``alert``, ``warn`` or None for a value of this rule's metric."""
        if value >= self.alert:
            return "alert"
        if self.warn is not None and value >= self.warn:
            return "warn"
        return None

    def covers(self, column: str) -> bool:
        base = column.split(".", 1)[0]
        return "*" in self.columns or column in self.columns or base in self.columns


@dataclass(frozen=True)
class Finding:
    """A rule that fired: where, when, on what value."""

    rule: str
    level: str  # warn | alert
    metric: str
    value: float
    subject: str  # the column, or the function for an operations rule
    group: tuple[Any, ...]
    start_ns: int
    samples: int


def load_rules(path: str | None = None) -> list[Rule]:
    """The rules of ``path`` (default: the shipped ones), checked field by field."""
    from ..config import parse_window

    path = path or DEFAULT_RULES
    data = read_toml(path, RuleError)
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path}: expected [[rule]] tables")
    rules = []
    for n, entry in enumerate(entries, 1):
        where = f"{path}: rule {n} ({entry.get('name', 'unnamed')})"
        metric = entry.get("metric")
        known = DRIFT_METRICS + OPS_METRICS
        if metric not in known:
            raise RuleError(f"{where}: metric={metric!r}: expected one of {', '.join(known)}")
        alert = _threshold(entry, "alert", where)
        if alert is None:
            raise RuleError(f"{where}: alert: every rule needs the level at which it alerts")
        warn = _threshold(entry, "warn", where)
        if warn is not None and warn > alert:
            raise RuleError(f"{where}: warn={warn} is above alert={alert}")
        try:
            window_s = parse_window(str(entry.get("window", "1h")))
        except ValueError as exc:
            raise RuleError(f"{where}: window: {exc}") from None
        samples = entry.get("min_samples", 0)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise RuleError(f"{where}: min_samples={samples!r}: expected a whole number >= 0")
        columns = entry.get("columns", ["*"])
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise RuleError(f"{where}: columns: expected a list of column names")
        rules.append(
            Rule(
                str(entry.get("name", metric)),
                metric,
                alert,
                warn,
                window_s,
                samples,
                tuple(columns),
            )
        )
    return rules


def _threshold(entry: dict[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RuleError(f"{where}: {key}={value!r}: expected a finite number")
    return float(value)


def judge(
    rules: list[Rule],
    drift: dict[float, list[Any]] | None = None,
    operations: dict[float, list[dict[str, Any]]] | None = None,
) -> list[Finding]:
    """Every rule judged on its period: ``drift[window_s]`` holds `drift.compare.Period`
    lists, ``operations[window_s]`` rows of per-window figures (function, start_ns,
    requests and the `OPS_METRICS`)."""
    findings = []
    for rule in rules:
        for value, subject, group, start_ns, samples in _values(rule, drift, operations):
            level = rule.level(value)
            if level is not None and samples >= rule.min_samples:
                findings.append(
                    Finding(rule.name, level, rule.metric, value, subject, group, start_ns, samples)
                )
    return findings


def _values(
    rule: Rule,
    drift: dict[float, list[Any]] | None,
    operations: dict[float, list[dict[str, Any]]] | None,
) -> Iterator[tuple[float, str, tuple[Any, ...], int, int]]:
    """(value, subject, group, period start, samples) of every place ``rule`` judges."""
    if rule.metric in DRIFT_METRICS:
        for period in (drift or {}).get(rule.window_s, []):
            for column in period.columns:
                value = getattr(column, rule.metric)
                if value is not None and rule.covers(column.column):
                    yield (
                        value,
                        column.column,
                        period.group,
                        period.start_ns,
                        column.observations,
                    )
        return
    for row in (operations or {}).get(rule.window_s, []):
        value = row.get(rule.metric)
        if value is not None:
            function = row["function"]
            yield float(value), function or "-", (function,), row["start_ns"], row["requests"]
