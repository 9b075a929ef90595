"""`obs report --costs --format html`: one page that needs nothing but itself, plots included.

A cost answer is read by people deciding what to pay for, often somewhere
with no network (an attachment, a CI artifact), so the page makes no request
at all: styles are inline, the plots are SVG drawn here from the answer (the
standard library only, as the CLI imports this module), there is no script,
and a Content-Security-Policy of ``default-src 'none'`` stops the browser
fetching anything even if something slipped in. Per function: the
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
from datetime import datetime, timezone
from html import escape
from itertools import pairwise
from typing import Any

from .cost_render import cost_sections
from .policy import PolicyError, parse_policy
from .render import encodable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .render import Section

__all__ = ["render_html"]

# A plot's box (SVG units = CSS pixels) and the margins its axes take
_W, _H = 420, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 42, 48
_PLOT_W, _PLOT_H = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
# Series longer than this are thinned before they are drawn; a sweep's line is
# then simplified to what moves it by a visible fraction of a pixel
_MOST_POINTS = 1500
_TOLERANCE_PX = 0.25
# Seconds between time ticks, the fewest giving at most five across the window
_TIME_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_TIME_STEPS += (7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2230;
margin:0 auto;padding:1.5em;max-width:1340px}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:2em 0 .4em;
border-bottom:1px solid #d5d9e0;padding-bottom:.2em}
.meta{color:#555d6b}.advice{font-size:1.05em}.advice b{color:#0b5d1e}
.warn,.advice b.warn{color:#a34400}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{padding:.25em .7em;border-bottom:1px solid #e4e7ec;text-align:right;white-space:nowrap}
th{background:#f3f5f8}th:first-child,td:first-child{text-align:left}
tr.best td{background:#e6f4ea;font-weight:600}td.no{color:#b3261e}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:420px;max-width:100%}
figcaption{font-size:.85em;color:#555d6b}
svg{box-sizing:border-box;width:420px;max-width:100%;height:auto;background:#fff;
border:1px solid #e4e7ec}
svg text{font:11px system-ui,sans-serif;fill:#3b4252}svg .t{font-size:12px;fill:#1d2230}
.ax{stroke:#8b93a1;fill:none}.g{stroke:#eceff3}.l{fill:none;stroke-width:2}
.c1{stroke:#1f77b4}.c2{stroke:#d62728;stroke-dasharray:6 4}.c3{stroke:#2ca02c}
.c4{stroke:#9467bd}.c5{stroke:#ff7f0e;stroke-dasharray:4 3}.m{fill:#ff7f0e;stroke:#fff}
"""


def render_html(answer: dict[str, Any]) -> str:
    """The whole cost answer (schema ``inferobs.costs/1``) as one self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>inferobs: what each way of running costs</title>",
        f"<style>{_STYLE}</style></head><body>",
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
    parts.append("</body></html>\n")
    return "\n".join(parts).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _text(value: object) -> str:
    """User text made safe for the page: escaped, and writable whatever it holds."""
    return escape(encodable(str(value), "utf-8"))


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
    span = _duration(float(window["seconds"]))
    when = (
        f"Window {_text(window['start'])} to {_text(window['end'])} ({span}), projected to "
        f"a month of {answer['month_hours']:g} hours."
        if window.get("start")
        else "No invocations in the window."
    )
    return (
        f'<p class="meta">{when} '
        f"{_text(answer['region'])}, {_text(answer['arch'])}; idle environments kept "
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
            f'<tr><td><a href="#f{number}">{_text(entry["function"] or "(unnamed)")}</a></td>'
            f"<td>{entry['requests']:,}</td><td>{_money(entry['current']['monthly_usd'])}</td>"
            f"<td>{_text(policy or 'none: see below')}</td>"
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
        said = f'<b class="warn">No recommendation</b>: {_text(advice["reason"])}.'
    else:
        reason = advice["reason"].removeprefix(f"{policy} is ")  # it names the policy first
        said = f"Recommended: <b>{_text(policy)}</b>, {_text(reason)}."
    parts = [f'<h2 id="f{number}">{_text(section.title)}</h2>', f'<p class="advice">{said}</p>']
    if entry["memory"].get("flag"):
        parts.append(f'<p class="warn">Memory: {_text(entry["memory"]["flag"])}.</p>')
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
    head = "".join(f"<th>{_text(c)}</th>" for c in columns)
    body = []
    for row in rows:
        best = recommended is not None and row[0].removesuffix(" (current)") == recommended
        cells = "".join(
            f'<td class="no">{_text(cell)}</td>' if cell == "no" else f"<td>{_text(cell)}</td>"
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


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class _Frame:
    """A plot's data ranges mapped onto its box, y upwards."""

    def __init__(self, x_low: float, x_high: float, y_high: float) -> None:
        self.x_low = x_low
        self.x_span = (x_high - x_low) or 1.0
        self.y_high = y_high or 1.0

    def x(self, value: float) -> float:
        return _LEFT + (value - self.x_low) / self.x_span * (_W - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return _H - _BOTTOM - value / self.y_high * (_H - _TOP - _BOTTOM)


def _step(high: float, count: int = 5, whole: bool = False) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``count`` ticks to high."""
    raw = (high or 1.0) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(1.0, round(step)) if whole else step


def _y_axis(high: float, label: Any, whole: bool = False) -> tuple[float, list[tuple[float, str]]]:
    """The top of the y axis (a whole tick at or above ``high``) and its labelled ticks."""
    step = _step(high, whole=whole)
    top = max(1, math.ceil(high / step - 1e-9)) * step
    ticks = [(i * step, label(i * step, step)) for i in range(round(top / step) + 1)]
    return top, ticks


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _usd(value: float, step: float) -> str:
    return f"${value:,.{_decimals(step)}f}"


def _percent(value: float, step: float) -> str:
    return f"{value * 100:.{_decimals(step * 100)}f}%"


def _count(value: float, step: float) -> str:
    return f"{value:,.0f}"


def _time_ticks(start: float, end: float) -> list[tuple[float, str]]:
    """Round UTC times across the window, each labelled with the clock and, on a new day,
    the date beneath (a ``|`` separates the two lines)."""
    span = max(end - start, 1.0)
    longest = math.ceil(span / 5 / 86400) * 86400  # past four weeks, whole days
    step = next((s for s in _TIME_STEPS if span / s <= 5), longest)
    ticks: list[tuple[float, str]] = []
    at = math.ceil(start / step) * step
    day = None
    while at <= end:
        moment = datetime.fromtimestamp(at, tz=timezone.utc)
        clock = moment.strftime("%H:%M:%S" if step < 60 else "%H:%M")
        date = moment.strftime("%b %d")
        label = date if step >= 86400 else clock + (f"|{date}" if date != day else "")
        ticks.append((at, label))
        day = date
        at += step
    return ticks


def _axes(
    frame: _Frame,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
    x_title: str,
    y_title: str,
) -> list[str]:
    bottom, right = _H - _BOTTOM, _W - _RIGHT
    grid = "".join(f"M{_LEFT} {_num(frame.y(value))}H{right}" for value, _ in y_ticks)
    marks = "".join(f"M{_num(frame.x(value))} {bottom}v4" for value, _ in x_ticks)
    frame_d = f"{marks}M{_LEFT} {_TOP}V{bottom}H{right}"
    out = [f'<path class="g" d="{grid}"/><path class="ax" d="{frame_d}"/>', '<g text-anchor="end">']
    for value, label in y_ticks:
        y = _num(frame.y(value) + 4)
        out.append(f'<text x="{_LEFT - 6}" y="{y}">{_text(label)}</text>')
    out.append('</g><g text-anchor="middle">')
    for value, label in x_ticks:
        x = _num(frame.x(value))
        for row, line in enumerate(label.split("|")):
            out.append(f'<text x="{x}" y="{bottom + 16 + 13 * row}">{_text(line)}</text>')
    out.append(
        f'<text class="t" x="{_LEFT + _PLOT_W / 2:g}" y="{_H - 4}">{_text(x_title)}</text>'
        f'<text class="t" transform="translate(13 {_TOP + _PLOT_H / 2:g}) rotate(-90)">'
        f"{_text(y_title)}</text></g>"
    )
    return out


def _legend(items: list[tuple[str, str]]) -> list[str]:
    """Coloured keys along the top, (line class, text), on a second row where one is full."""
    out = []
    x, y = float(_LEFT), 12
    for kind, label in items:
        width = 30 + 6 * len(label)
        if x > _LEFT and x + width > _W - _RIGHT:
            x, y = float(_LEFT), y + 15
        out.append(f'<path class="l {kind}" d="M{_num(x)} {y}h18"/>')
        out.append(f'<text x="{_num(x + 22)}" y="{y + 4}">{_text(label)}</text>')
        x += width + 10
    return out


def _svg(title: str, body: list[str], caption: str) -> str:
    return (
        f'<figure><svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{_text(title)}"><title>{_text(title)}</title>{"".join(body)}</svg>'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
    )


def _merged(peaks: list[int], bucket_s: float) -> tuple[list[int], float]:
    """At most one bucket per pixel across, each the highest of those it merges (so the
    peaks that provisioning is weighed against stay)."""
    merge = math.ceil(len(peaks) / _PLOT_W)
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


def _hourly(levels: tuple[int, ...], frame: _Frame, start: float, end: float) -> str:
    """A level by UTC hour of day, as a step line across the window (pixels)."""
    hour = math.floor(start / 3600) * 3600
    held = levels[int(hour // 3600) % 24]
    d = [f"M{_num(frame.x(start))} {_num(frame.y(held))}"]
    hour += 3600
    while hour < end:
        level = levels[int(hour // 3600) % 24]
        if level != held:
            d.append(f"H{_num(frame.x(hour))}V{_num(frame.y(level))}")
            held = level
        hour += 3600
    d.append(f"H{_num(frame.x(end))}")
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
    top, y_ticks = _y_axis(float(high), _count, whole=True)
    frame = _Frame(start, end, top)
    body = _axes(frame, _time_ticks(start, end), y_ticks, "time (UTC)", "requests at once")
    scale = f"{_PLOT_W / len(peaks):.6g} 0 0 {-_PLOT_H / top:.6g} {_LEFT} {_H - _BOTTOM}"
    body.append(
        f'<path class="l c1" vector-effect="non-scaling-stroke" transform="matrix({scale})" '
        f'd="{_step_path(peaks)}"/>'
    )
    keys = [("c1", f"most at once in {_duration(bucket_s)}")]
    if level is not None:
        body.append(f'<path class="l c2" d="{_hourly(level[1], frame, start, end)}"/>')
        keys.append(("c2", level[0]))
    body += _legend(keys)
    return _svg(
        f"Concurrency over time: {name}",
        body,
        "Requests running at once (the most in each interval), against the environments "
        "provisioned.",
    )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def _simplified(points: list[tuple[float, float]], keep: set[int]) -> list[int]:
    """Indices of the points a line needs: one lying within `_TOLERANCE_PX` of the chord
    between its kept neighbours is dropped (Ramer-Douglas-Peucker); ``keep`` always stays."""
    chosen = sorted({0, len(points) - 1} | keep)
    spans = list(pairwise(chosen))
    out = set(chosen)
    while spans:
        first, last = spans.pop()
        if last - first < 2:
            continue
        (x0, y0), (x1, y1) = points[first], points[last]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1e-12
        far, at = max(
            (abs(dy * (points[i][0] - x0) - dx * (points[i][1] - y0)) / length, i)
            for i in range(first + 1, last)
        )
        if far > _TOLERANCE_PX:
            out.add(at)
            spans += [(first, at), (at, last)]
    return sorted(out)


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
    top, y_ticks = _y_axis(high * 1.04 or 1.0, _usd if money else _percent)
    x_top, x_ticks = _y_axis(float(ns[-1]), _count, whole=True)
    frame = _Frame(0.0, x_top, top)
    body = _axes(
        frame,
        x_ticks,
        y_ticks,
        "N environments provisioned all day (0 = on-demand)",
        "$ per month" if money else "cold-start rate",
    )
    points = [(frame.x(ns[i]), frame.y(values[i])) for i in kept]
    drawn = _simplified(points, {kept.index(i) for i in keep})
    line = " ".join(f"{_num(points[i][0])} {_num(points[i][1])}" for i in drawn)
    kind = "c3" if money else "c4"
    body.append(f'<path class="l {kind}" d="M{line}"/>')
    keys = [(kind, "monthly cost" if money else "cold starts / request")]
    if limit is not None and not money:
        body.append(f'<path class="l c2" d="M{_LEFT} {_num(frame.y(limit))}h{_PLOT_W}"/>')
        keys.append(("c2", "SLO"))
    if reference is not None and chosen is not None:
        body.append(f'<path class="l c5" d="M{_LEFT} {_num(frame.y(reference))}h{_PLOT_W}"/>')
        policy = chosen["policy"]
        short = "schedule by hour" if policy.startswith("schedule:") else policy
        keys.append(("c5", f"{short} (recommended)"))
    if marked is not None and marked < len(values):
        body.append(_mark(frame, ns[marked], values[marked], money))
    body += _legend(keys)
    what = "Monthly cost" if money else "Cold-start rate"
    return _svg(
        f"{what} against N: {name}",
        body,
        f"{what} with N environments provisioned all day; spillover runs on demand.",
    )


def _mark(frame: _Frame, n: int, value: float, money: bool) -> str:
    """The recommended N: a dot, and what it costs or how often it starts cold."""
    x, y = frame.x(n), frame.y(value)
    shown = _money(value) if money else f"{value:.2%}"
    what = "on-demand" if n == 0 else f"N = {n}"
    anchor, dx = ("end", -8) if x > _LEFT + _PLOT_W / 2 else ("start", 8)
    return (
        f'<circle class="m" cx="{_num(x)}" cy="{_num(y)}" r="5"/>'
        f'<text x="{_num(x + dx)}" y="{_num(max(y - 8, _TOP + 10))}" '
        f'text-anchor="{anchor}">recommended: {what}, {shown}</text>'
    )
