"""`obs report --drift` as text: a table per arm and column, the findings, and what was read.

The table and Markdown say per column the latest period's statistics, the
worst PSI and when, and the level its rules reached; then the findings,
newest first; then coverage. JSON is the answer itself
(`drift_report.drift_answer`), HTML its page (`drift_html`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from .render import Section, counted, render_report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["drift_sections", "fired_section", "write_drift"]

_MOST_FINDINGS = 30  # rows of rules that fired shown in text; JSON lists every finding


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _arm(entry: dict[str, Any]) -> str:
    names = [entry.get(k) for k in ("function", "model", "model_version", "variant")]
    return " / ".join(n or "-" for n in names)


def drift_sections(answer: dict[str, Any]) -> tuple[list[Section], list[str]]:
    """The report's tables, and the lines that follow them."""
    columns = [
        "arm (function / model / version / variant)",
        "column",
        "kind",
        "values",
        "missing",
        "latest PSI",
        "latest JS",
        "latest KS / chi2",
        "worst PSI (period)",
        "rules",
    ]
    rows = []
    for group in answer["groups"]:
        for entry in group["columns"]:
            latest = entry["latest"] or {}
            measured = [p for p in entry["series"] if p["psi"] is not None]
            worst = max(measured, key=lambda p: p["psi"]) if measured else None
            third = latest.get("ks") if latest.get("ks") is not None else latest.get("chi2")
            rows.append(
                [
                    _arm(group),
                    entry["column"],
                    entry["kind"],
                    f"{entry['observations']:,}",
                    f"{entry['missing']:,}",
                    _number(latest.get("psi")),
                    _number(latest.get("jensen_shannon")),
                    _number(third),
                    "-" if worst is None else f"{worst['psi']:.3f} ({_when(worst['start_ns'])})",
                    entry["level"].upper() if entry["level"] else "ok",
                ]
            )
    window = _duration(answer["window_s"])
    sections = [
        Section(f"Drift per {window} against {answer['baseline']['path']}", columns, rows, [])
    ]
    fired, lines = fired_section(answer["findings"])
    if fired is not None:
        sections.append(fired)
    lines.append(
        f"{counted(answer['windows'], 'window')} from {counted(answer['instances'], 'instance')}"
        + (
            f"; {answer['other_baseline_windows']:,} windows of other baselines left out"
            if answer["other_baseline_windows"]
            else ""
        )
        + "."
    )
    coverage = answer["coverage"]
    if coverage is not None:
        lines.append(
            f"Coverage: {coverage['share']:.1%} of the {coverage['made']:,} observations the "
            f"handlers made reached a delivered window (environments reclaimed while idle "
            f"take their open window with them)."
        )
    if answer["alert"]:
        lines.append("ALERT: an alert rule fired (obs report --drift exits with status 3).")
    elif answer["warn"]:
        lines.append("Warning: a rule reached its warning level.")
    elif not answer["windows"] and answer["other_baseline_windows"]:
        lines.append(
            "No drift windows against this baseline: the windows read were counted against "
            "another one (--baseline names the file the functions count against)."
        )
    elif not answer["windows"]:
        lines.append(
            "No drift windows against this baseline in what was read (or in --since and "
            "--function): functions count them with obs.observe_prediction / "
            "observe_features and a baseline configured (docs/drift.md)."
        )
    else:
        lines.append("No rule fired.")
    return sections, lines


def fired_section(findings: list[dict[str, Any]]) -> tuple[Section | None, list[str]]:
    """The rules that fired, one row per rule, level, subject and arm (how many periods,
    first and latest), alerts first; None when none did. And a line when rows were cut."""
    rows = _fired(findings)
    if not rows:
        return None, []
    section = Section(
        "Alert rules that fired",
        ["level", "rule", "subject", "arm", "periods", "first", "latest", "latest value"],
        rows[:_MOST_FINDINGS],
        findings,
    )
    cut = len(rows) - _MOST_FINDINGS
    return section, [f"... and {cut} more (--format json lists all)."] if cut > 0 else []


def _fired(findings: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of `fired_section`, the most recent first within each level."""
    rows: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for finding in findings:  # newest first already
        key = (finding["level"], finding["rule"], finding["subject"], _arm(finding))
        rows.setdefault(key, []).append(finding)
    ordered = sorted(
        rows.items(), key=lambda item: (item[0][0] != "alert", -item[1][0]["start_ns"])
    )
    return [
        [
            level.upper(),
            rule,
            subject,
            arm,
            str(len(found)),
            _when(found[-1]["start_ns"]),
            _when(found[0]["start_ns"]),
            f"{found[0]['value']:.4g}",
        ]
        for (level, rule, subject, arm), found in ordered
    ]


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def write_drift(answer: dict[str, Any], output_format: str, stream: TextIO) -> None:
    """Write the drift answer to ``stream`` as a table, JSON, Markdown or an HTML page."""
    if output_format == "json":
        stream.write(json.dumps(answer, indent=2) + "\n")
        return
    if output_format == "html":
        from .drift_html import render_drift_html

        stream.write(render_drift_html(answer))
        return
    sections, lines = drift_sections(answer)
    render_report(sections, output_format, stream)
    for line in lines:
        stream.write(line + ("\n\n" if output_format == "markdown" else "\n"))
