"""`obs report --costs` written out: a table per function to read at a glance, or the schema.

JSON is the cost report's own versioned schema (`cost_report.SCHEMA`);
table and Markdown are sections like the operations report's; HTML is one
self-contained page with plots (`cost_html`).
"""

from __future__ import annotations

import json
from typing import Any

from .render import Section, render_report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["COST_FORMATS", "cost_sections", "platform_line", "write_costs"]

COST_FORMATS = ("table", "json", "markdown", "html")
_LONGEST_NAME = 40
_COLUMNS = [
    "policy",
    "$ window",
    "$ / month",
    "cold starts",
    "cold rate",
    "p95 +ms",
    "p99 +ms",
    "utilisation",
    "meets SLO",
]


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _short(policy: str) -> str:
    """A schedule of many runs, named by what it keeps (its full spec is in the JSON)."""
    if not policy.startswith("schedule:") or len(policy) <= _LONGEST_NAME:
        return policy
    runs = [run.split("@") for run in policy.removeprefix("schedule:").split(",")]
    hours = sum(int(h.split("-")[1]) - int(h.split("-")[0]) for _, h in runs)
    most = max(int(n) for n, _ in runs)
    return f"schedule by hour: up to {most}, {hours} h of 24 warm"


def _row(option: dict[str, Any], current: bool) -> list[str]:
    utilisation = option["utilisation"]
    return [
        _short(option["policy"]) + (" (current)" if current else ""),
        _money(option["cost_usd"]),
        _money(option["monthly_usd"]),
        f"{option['cold_starts']:,}",
        f"{option['cold_start_rate']:.2%}",
        _ms(option["p95_added_ms"]),
        _ms(option["p99_added_ms"]),
        "-" if utilisation is None else f"{utilisation:.0%}",
        "yes" if option["meets_slo"] else "no",
    ]


def _shown(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The options a table shows: all but the dearer always-on sizes of each family."""
    cheapest: dict[str, dict[str, Any]] = {}
    for option in entry["options"]:
        if option["policy"].startswith("always-on:"):
            family = option["policy"].split(" x ")[-1].split(":")[0]
            held = cheapest.get(family)
            if held is None or option["monthly_usd"] < held["monthly_usd"]:
                cheapest[family] = option
    kept = {id(option) for option in cheapest.values()}
    return [
        o for o in entry["options"] if not o["policy"].startswith("always-on:") or id(o) in kept
    ]


def platform_line(entry: dict[str, Any]) -> str | None:
    """What the platform's metrics counted beside what the records hold, in a sentence."""
    count = entry.get("platform_count")
    if not count:
        return None
    share = count["recorded_share"]
    return (
        f"Platform: {count['service']} counted {count['invocations']:,} invocations in the "
        f"window ({count['metric']}); the data read holds {entry['requests']:,}"
        + (f" ({share:.1%})." if share is not None else ".")
    )


def cost_sections(answer: dict[str, Any]) -> list[tuple[Section, list[str]]]:
    """One section per function (its options), with the lines said under it."""
    out = []
    for entry in answer["functions"]:
        name = entry["function"] or "(unnamed)"
        current = entry["current"]
        options = _shown(entry)
        rows = [_row(o, o["policy"] == current["policy"]) for o in options]
        if current["policy"] not in {o["policy"] for o in options}:
            rows.insert(0, _row(current, True))
        advice = entry["recommendation"]
        policy, reason = advice["policy"], advice["reason"]
        if policy is None:
            lines = [f"No recommendation: {reason}."]
        else:  # the reason names the policy first; the line already has
            lines = [f"Recommended: {policy}, {reason.removeprefix(f'{policy} is ')}."]
        flag = entry["memory"].get("flag")
        if flag:
            lines.append(f"Memory: {flag}.")
        counted = platform_line(entry)
        if counted:
            lines.append(counted)
        requests = entry["requests"]
        title = (
            f"Costs: {name} ({requests:,} request{'' if requests == 1 else 's'}, "
            f"{entry['memory']['priced_mb']} MB, at most {entry['peak_concurrency']} at once)"
        )
        out.append((Section(title, _COLUMNS, rows, [entry]), lines))
    return out


def write_costs(answer: dict[str, Any], output_format: str, stream: TextIO) -> None:
    """Write the cost answer to ``stream`` in one of `COST_FORMATS`."""
    if output_format == "json":
        stream.write(json.dumps(answer, indent=2) + "\n")
    elif output_format == "html":
        from .cost_html import render_html

        stream.write(render_html(answer))
    else:
        if not answer["functions"]:
            stream.write("no invocations to price\n")
            return
        for section, lines in cost_sections(answer):
            render_report([section], output_format, stream)
            for line in lines:
                stream.write(line + ("\n\n" if output_format == "markdown" else "\n"))
