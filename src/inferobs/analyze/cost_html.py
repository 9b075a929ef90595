"""`obs report --costs --format html`: one page that needs nothing but itself, plots included.

A cost answer is read by people deciding what to pay for, often somewhere
with no network (an attachment, a CI artifact), so the page makes no request
at all: styles are inline, the plots are SVG drawn here from the answer (the
standard library only, as the CLI imports this module), there is no script,
and a Content-Security-Policy of ``default-src 'none'`` stops the browser
fetching anything even if something slipped in (`svg_plot`, shared with the
drift page, holds the page and the plots' common parts). Per function: the
recommendation and why, the options as the text table shows them
(`cost_render.cost_sections`), and three plots: concurrency over time against
the provisioned level, monthly cost against N, cold-start rate against N.

Function names are the user's text: each is escaped, lone surrogates shown as
backslash escapes (`render.encodable`), and the page is written in ASCII
(character references for the rest), so any stream can carry it. Long series
are thinned to what a plot's pixels can show, so 50 functions stay a page of
a few hundred KB.
"""

from __future__ import annotations

import math
from typing import Any

from .cost_render import cost_sections, platform_line
from .policy import PolicyError, parse_policy
from .svg_plot import (
    BOTTOM,
    LEFT,
    PLOT_H,
    PLOT_W,
    TOP,
    Frame,
    H,
    axes,
    count_label,
    decimals,
    duration,
    figure,
    legend,
    num,
    page,
    simplified,
    text,
    time_ticks,
    y_axis,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .render import Section

__all__ = ["render_html"]

# Series longer than this are thinned before they are drawn; a sweep's line is
# then simplified to what moves it by a visible fraction of a pixel (`svg_plot.simplified`)
_MOST_POINTS = 1500

# What this page adds to the shared look (`svg_plot.page`): the advice, and the options' table
_STYLE = """.advice{font-size:1.05em}.advice b{color:#0b5d1e}
.warn,.advice b.warn{color:#a34400}
tr.best td{background:#e6f4ea;font-weight:600}td.no{color:#b3261e}
"""


def render_html(answer: dict[str, Any]) -> str:
    """The whole cost answer (schema ``inferobs.costs/1``) as one self-contained HTML page."""
    parts = [
        "<h1>What each way of running these functions costs</h1>",
        _settings(answer),
    ]
    functions = answer["functions"]
    if not functions:
        parts.append("<p>No invocations to price.</p>")
    else:
        parts.append(_contents(functions))
        for number, (entry, (section, _lines)) in enumerate(
            zip(functions, cost_sections(answer), strict=True)
        ):
            parts.append(_function(number, entry, section, answer))
    return page("inferobs: what each way of running costs", _STYLE, parts)


def _money(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _settings(answer: dict[str, Any]) -> str:
    """What the answer was asked under: the window, where, the SLO, the keep-alive."""
    window = answer["window"]
    slo = answer["slo"]
    targets = []
    if slo.get("max_cold_start_rate") is not None:
        targets.append(f"cold starts at most {slo['max_cold_start_rate']:.2%}")
    if slo.get("p99_ms") is not None:
        targets.append(f"p99 at most {slo['p99_ms']:g} ms")
    span = duration(float(window["seconds"]))
    when = (
        f"Window {text(window['start'])} to {text(window['end'])} ({span}), projected to "
        f"a month of {answer['month_hours']:g} hours."
        if window.get("start")
        else "No invocations in the window."
    )
    return (
        f'<p class="meta">{when} '
        f"{text(answer['region'])}, {text(answer['arch'])}; idle environments kept "
        f"{answer['keep_alive_s'] / 60:g} min; free tier "
        f"{'counted' if answer['free_tier'] else 'not counted'}. "
        f"Target: {' and '.join(targets) or 'none given'}.</p>"
    )


def _contents(functions: list[dict[str, Any]]) -> str:
    """Every function on one line: what it costs now, what to do, what that saves."""
    rows = []
    for number, entry in enumerate(functions):
        advice = entry["recommendation"]
        policy = advice["policy"]
        saving = advice.get("savings_monthly_usd")
        rows.append(
            f'<tr><td><a href="#f{number}">{text(entry["function"] or "(unnamed)")}</a></td>'
            f"<td>{entry['requests']:,}</td><td>{_money(entry['current']['monthly_usd'])}</td>"
            f"<td>{text(policy or 'none: see below')}</td>"
            f"<td>{'-' if policy is None else _money(advice['monthly_usd'])}</td>"
            f"<td>{'-' if saving is None else _money(saving)}</td></tr>"
        )
    return (
        "<table><tr><th>function</th><th>requests</th><th>now $ / month</th>"
        "<th>recommended</th><th>$ / month</th><th>saves $ / month</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _function(number: int, entry: dict[str, Any], section: Section, answer: dict[str, Any]) -> str:
    advice = entry["recommendation"]
    policy = advice["policy"]
    if policy is None:
        said = f'<b class="warn">No recommendation</b>: {text(advice["reason"])}.'
    else:
        reason = advice["reason"].removeprefix(f"{policy} is ")  # it names the policy first
        said = f"Recommended: <b>{text(policy)}</b>, {text(reason)}."
    parts = [f'<h2 id="f{number}">{text(section.title)}</h2>', f'<p class="advice">{said}</p>']
    if entry["memory"].get("flag"):
        parts.append(f'<p class="warn">Memory: {text(entry["memory"]["flag"])}.</p>')
    counted = platform_line(entry)
    if counted:
        parts.append(f"<p>{text(counted)}</p>")
    parts.append(_table(section.columns, section.rows, policy))
    name = entry["function"] or "(unnamed)"
    chosen = _option(entry, policy)
    parts.append('<div class="plots">')
    parts.append(_concurrency_plot(name, entry, _provisioned(entry, policy)))
    n = _static_n(policy)
    limit = answer["slo"].get("max_cold_start_rate")
    for key in ("monthly_usd", "cold_start_rate"):
        parts.append(_sweep_plot(name, entry, key, marked=n, chosen=chosen, limit=limit))
    parts.append("</div>")
    return "\n".join(parts)


def _table(columns: list[str], rows: list[list[str]], recommended: str | None) -> str:
    head = "".join(f"<th>{text(c)}</th>" for c in columns)
    body = []
    for row in rows:
        best = recommended is not None and row[0].removesuffix(" (current)") == recommended
        cells = "".join(
            f'<td class="no">{text(cell)}</td>' if cell == "no" else f"<td>{text(cell)}</td>"
            for cell in row
        )
        body.append(f'<tr class="best">{cells}</tr>' if best else f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _option(entry: dict[str, Any], policy: str | None) -> dict[str, Any] | None:
    options: list[dict[str, Any]] = [entry["current"], *entry["options"]]
    for option in options:
        if option["policy"] == policy:
            return option
    return None


def _levels(policy: str) -> tuple[int, ...] | None:
    """Environments kept by UTC hour of day, where ``policy`` provisions any."""
    if not policy.startswith(("provisioned:", "schedule:")):
        return None
    try:
        levels = parse_policy(policy).by_hour
    except PolicyError:
        return None
    return levels if any(levels) else None


def _provisioned(entry: dict[str, Any], policy: str | None) -> tuple[str, tuple[int, ...]] | None:
    """The level to draw: the recommendation's, or else the first option that provisions."""
    names = [policy] if policy else []
    names += [option["policy"] for option in entry["options"]]
    for name in names:
        levels = _levels(name)
        if levels is not None:
            short = "schedule by hour" if name.startswith("schedule:") else name
            return short + (" (recommended)" if name == policy else ""), levels
    return None


def _static_n(policy: str | None) -> int | None:
    """N of the sweep that is the recommendation: on-demand is N = 0, provisioned:N all day."""
    if policy == "on-demand":
        return 0
    levels = _levels(policy) if policy and policy.startswith("provisioned:") else None
    return levels[0] if levels and len(set(levels)) == 1 else None


# -- plots ---------------------------------------------------------------------------


def _usd(value: float, step: float) -> str:
    return f"${value:,.{decimals(step)}f}"


def _percent(value: float, step: float) -> str:
    return f"{value * 100:.{decimals(step * 100)}f}%"


def _merged(peaks: list[int], bucket_s: float) -> tuple[list[int], float]:
    """At most one bucket per pixel across, each the highest of those it merges (so the
    peaks that provisioning is weighed against stay)."""
    merge = math.ceil(len(peaks) / PLOT_W)
    if merge <= 1:
        return peaks, bucket_s
    return [max(peaks[i : i + merge]) for i in range(0, len(peaks), merge)], bucket_s * merge


def _step_path(values: list[int]) -> str:
    """``values[i]`` held over bucket i, in data units (bucket, requests): relative moves
    in whole numbers, a few bytes a bucket; the path's transform scales it onto the plot."""
    d = [f"M0 {values[0]}"]
    run, held = 0, values[0]
    for value in values[1:]:
        run += 1
        if value != held:
            d.append(f"h{run}v{value - held}")
            run, held = 0, value
    d.append(f"h{run + 1}")
    return "".join(d)


def _hourly(levels: tuple[int, ...], frame: Frame, start: float, end: float) -> str:
    """A level by UTC hour of day, as a step line across the window (pixels)."""
    hour = math.floor(start / 3600) * 3600
    held = levels[int(hour // 3600) % 24]
    d = [f"M{num(frame.x(start))} {num(frame.y(held))}"]
    hour += 3600
    while hour < end:
        level = levels[int(hour // 3600) % 24]
        if level != held:
            d.append(f"H{num(frame.x(hour))}V{num(frame.y(level))}")
            held = level
        hour += 3600
    d.append(f"H{num(frame.x(end))}")
    return "".join(d)


def _concurrency_plot(
    name: str, entry: dict[str, Any], level: tuple[str, tuple[int, ...]] | None
) -> str:
    series = entry["sweep"]["concurrency"]
    peaks, bucket_s = _merged([int(p) for p in series["peak"]] or [0], float(series["bucket_s"]))
    start = float(series["start"])
    end = start + len(peaks) * bucket_s
    high = max(peaks)
    if level is not None:
        high = max(high, *level[1])
    top, y_ticks = y_axis(float(high), count_label, whole=True)
    frame = Frame(start, end, top)
    body = axes(frame, time_ticks(start, end), y_ticks, "time (UTC)", "requests at once")
    scale = f"{PLOT_W / len(peaks):.6g} 0 0 {-PLOT_H / top:.6g} {LEFT} {H - BOTTOM}"
    body.append(
        f'<path class="l c1" vector-effect="non-scaling-stroke" transform="matrix({scale})" '
        f'd="{_step_path(peaks)}"/>'
    )
    keys = [("c1", f"most at once in {duration(bucket_s)}")]
    if level is not None:
        body.append(f'<path class="l c2" d="{_hourly(level[1], frame, start, end)}"/>')
        keys.append(("c2", level[0]))
    body += legend(keys)
    return figure(
        f"Concurrency over time: {name}",
        body,
        "Requests running at once (the most in each interval), against the environments "
        "provisioned.",
    )


def _sweep_plot(
    name: str,
    entry: dict[str, Any],
    key: str,
    *,
    marked: int | None,
    chosen: dict[str, Any] | None,
    limit: float | None,
) -> str:
    """Monthly cost or cold-start rate against N provisioned all day (N = 0: on-demand)."""
    sweep = entry["sweep"]
    ns, values = [int(n) for n in sweep["n"]], [float(v) for v in sweep[key]]
    money = key == "monthly_usd"
    stride = math.ceil(len(ns) / _MOST_POINTS)
    keep = {i for i in (marked, min(range(len(values)), key=values.__getitem__)) if i is not None}
    kept = sorted(set(range(0, len(ns), stride)) | {len(ns) - 1} | keep)
    high = max([values[i] for i in kept] + [0.0])
    reference = None
    if chosen is not None and marked is None:  # not on the sweep: drawn level across it
        reference = float(chosen[key])
        high = max(high, reference)
    if limit is not None and not money:
        high = max(high, limit)
    top, y_ticks = y_axis(high * 1.04 or 1.0, _usd if money else _percent)
    x_top, x_ticks = y_axis(float(ns[-1]), count_label, whole=True)
    frame = Frame(0.0, x_top, top)
    body = axes(
        frame,
        x_ticks,
        y_ticks,
        "N environments provisioned all day (0 = on-demand)",
        "$ per month" if money else "cold-start rate",
    )
    points = [(frame.x(ns[i]), frame.y(values[i])) for i in kept]
    drawn = simplified(points, {kept.index(i) for i in keep})
    line = " ".join(f"{num(points[i][0])} {num(points[i][1])}" for i in drawn)
    kind = "c3" if money else "c4"
    body.append(f'<path class="l {kind}" d="M{line}"/>')
    keys = [(kind, "monthly cost" if money else "cold starts / request")]
    if limit is not None and not money:
        body.append(f'<path class="l c2" d="M{LEFT} {num(frame.y(limit))}h{PLOT_W}"/>')
        keys.append(("c2", "SLO"))
    if reference is not None and chosen is not None:
        body.append(f'<path class="l c5" d="M{LEFT} {num(frame.y(reference))}h{PLOT_W}"/>')
        policy = chosen["policy"]
        short = "schedule by hour" if policy.startswith("schedule:") else policy
        keys.append(("c5", f"{short} (recommended)"))
    if marked is not None and marked < len(values):
        body.append(_mark(frame, ns[marked], values[marked], money))
    body += legend(keys)
    what = "Monthly cost" if money else "Cold-start rate"
    return figure(
        f"{what} against N: {name}",
        body,
        f"{what} with N environments provisioned all day; spillover runs on demand.",
    )


def _mark(frame: Frame, n: int, value: float, money: bool) -> str:
    """The recommended N: a dot, and what it costs or how often it starts cold."""
    x, y = frame.x(n), frame.y(value)
    shown = _money(value) if money else f"{value:.2%}"
    what = "on-demand" if n == 0 else f"N = {n}"
    anchor, dx = ("end", -8) if x > LEFT + PLOT_W / 2 else ("start", 8)
    return (
        f'<circle class="m" cx="{num(x)}" cy="{num(y)}" r="5"/>'
        f'<text x="{num(x + dx)}" y="{num(max(y - 8, TOP + 10))}" '
        f'text-anchor="{anchor}">recommended: {what}, {shown}</text>'
    )
