"""Plots drawn as inline SVG, and the self-contained page they sit in, for ``--format html``.

Every HTML report (costs, drift) is read where there may be no network and
must be safe to open whatever names it holds, so all of them follow the same
rules, kept here once: the page (`page`) carries its styles inline, has no
script, and its Content-Security-Policy (``default-src 'none'``) stops the
browser fetching anything; it is written in ASCII (character references for
the rest) so any stream can carry it; user text goes through `text`, which
escapes it and shows lone surrogates as backslash escapes. The plots are SVG
written here with the standard library only (the CLI imports the pages), on
one box size (`W` x `H`), with the helpers every plot needs: a frame mapping
data onto the box (`Frame`), round ticks (`y_axis`, `time_ticks`), the axes,
a legend, and `simplified` to drop the points a line does not need.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from itertools import pairwise

from .render import encodable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BOTTOM",
    "LEFT",
    "PLOT_H",
    "PLOT_W",
    "RIGHT",
    "TOP",
    "Frame",
    "H",
    "W",
    "axes",
    "count_label",
    "decimals",
    "duration",
    "figure",
    "legend",
    "num",
    "page",
    "simplified",
    "text",
    "time_ticks",
    "y_axis",
]

# A plot's box (SVG units = CSS pixels) and the margins its axes take
W, H = 420, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 42, 48
PLOT_W, PLOT_H = W - LEFT - RIGHT, H - TOP - BOTTOM
# A line's point within this many pixels of the chord between its neighbours adds nothing
TOLERANCE_PX = 0.25
# Seconds between time ticks, the fewest giving at most five across the window
_TIME_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_TIME_STEPS += (7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)

# The look every report page shares: text, tables, and the plots' classes (``l`` a data
# line, ``c1``..``c5`` its colour and dashes, ``g`` grid, ``ax`` axes, ``m`` a marked point)
_PAGE_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2230;
margin:0 auto;padding:1.5em;max-width:1340px}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:2em 0 .4em;
border-bottom:1px solid #d5d9e0;padding-bottom:.2em}
.meta{color:#555d6b}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{padding:.25em .7em;border-bottom:1px solid #e4e7ec;text-align:right;white-space:nowrap}
th{background:#f3f5f8}th:first-child,td:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:420px;max-width:100%}
figcaption{font-size:.85em;color:#555d6b}
svg{box-sizing:border-box;width:420px;max-width:100%;height:auto;background:#fff;
border:1px solid #e4e7ec}
svg text{font:11px system-ui,sans-serif;fill:#3b4252}svg .t{font-size:12px;fill:#1d2230}
.ax{stroke:#8b93a1;fill:none}.g{stroke:#eceff3}.l{fill:none;stroke-width:2}
.c1{stroke:#1f77b4}.c2{stroke:#d62728;stroke-dasharray:6 4}.c3{stroke:#2ca02c}
.c4{stroke:#9467bd}.c5{stroke:#ff7f0e;stroke-dasharray:4 3}.m{fill:#ff7f0e;stroke:#fff}
"""


def page(title: str, style: str, body: list[str]) -> str:
    """A whole page around ``body`` (HTML already made safe): the shared look plus ``style``,
    a policy that lets the browser fetch nothing, and ASCII throughout."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{text(title)}</title>",
        f"<style>{_PAGE_STYLE}{style}</style></head><body>",
        *body,
        "</body></html>\n",
    ]
    return "\n".join(parts).encode("ascii", "xmlcharrefreplace").decode("ascii")


def text(value: object) -> str:
    """User text made safe for the page: escaped, and writable whatever it holds."""
    return escape(encodable(str(value), "utf-8"))


def num(value: float) -> str:
    """A coordinate to a tenth of a pixel, the most a screen shows, in the fewest bytes."""
    return f"{value:.1f}".removesuffix(".0")


def duration(seconds: float) -> str:
    """A span as people say it: seconds, minutes, hours, then days."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


class Frame:
    """A plot's data ranges mapped onto its box, y upwards from 0."""

    def __init__(self, x_low: float, x_high: float, y_high: float) -> None:
        self.x_low = x_low
        self.x_span = (x_high - x_low) or 1.0
        self.y_high = y_high or 1.0

    def x(self, value: float) -> float:
        return LEFT + (value - self.x_low) / self.x_span * (W - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return H - BOTTOM - value / self.y_high * (H - TOP - BOTTOM)


def _step(high: float, count: int = 5, whole: bool = False) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``count`` ticks to high."""
    raw = (high or 1.0) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(1.0, round(step)) if whole else step


def y_axis(
    high: float, label: Callable[[float, float], str], whole: bool = False
) -> tuple[float, list[tuple[float, str]]]:
    """The top of an axis from 0 (a round tick at or above ``high``) and its ticks, each
    labelled by ``label(value, step)``; ``whole`` keeps the step a whole number."""
    step = _step(high, whole=whole)
    top = max(1, math.ceil(high / step - 1e-9)) * step
    ticks = [(i * step, label(i * step, step)) for i in range(round(top / step) + 1)]
    return top, ticks


def decimals(step: float) -> int:
    """The decimals that tell ticks ``step`` apart, and no more."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def count_label(value: float, step: float) -> str:
    """A tick of whole things (requests, environments): thousands separated."""
    return f"{value:,.0f}"


def time_ticks(start: float, end: float) -> list[tuple[float, str]]:
    """Round UTC times (epoch seconds) across the window, each labelled with the clock and,
    on a new day, the date beneath (a ``|`` separates the two lines)."""
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


def axes(
    frame: Frame,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
    x_title: str,
    y_title: str,
) -> list[str]:
    """The grid, the axes, their tick labels and titles: the start of a plot's body."""
    bottom, right = H - BOTTOM, W - RIGHT
    grid = "".join(f"M{LEFT} {num(frame.y(value))}H{right}" for value, _ in y_ticks)
    marks = "".join(f"M{num(frame.x(value))} {bottom}v4" for value, _ in x_ticks)
    frame_d = f"{marks}M{LEFT} {TOP}V{bottom}H{right}"
    out = [f'<path class="g" d="{grid}"/><path class="ax" d="{frame_d}"/>', '<g text-anchor="end">']
    for value, label in y_ticks:
        y = num(frame.y(value) + 4)
        out.append(f'<text x="{LEFT - 6}" y="{y}">{text(label)}</text>')
    out.append('</g><g text-anchor="middle">')
    for value, label in x_ticks:
        x = num(frame.x(value))
        for row, line in enumerate(label.split("|")):
            out.append(f'<text x="{x}" y="{bottom + 16 + 13 * row}">{text(line)}</text>')
    out.append(
        f'<text class="t" x="{LEFT + PLOT_W / 2:g}" y="{H - 4}">{text(x_title)}</text>'
        f'<text class="t" transform="translate(13 {TOP + PLOT_H / 2:g}) rotate(-90)">'
        f"{text(y_title)}</text></g>"
    )
    return out


def legend(items: list[tuple[str, str]]) -> list[str]:
    """Coloured keys along the top, (line class, text), on a second row where one is full."""
    out = []
    x, y = float(LEFT), 12
    for kind, label in items:
        width = 30 + 6 * len(label)
        if x > LEFT and x + width > W - RIGHT:
            x, y = float(LEFT), y + 15
        out.append(f'<path class="l {kind}" d="M{num(x)} {y}h18"/>')
        out.append(f'<text x="{num(x + 22)}" y="{y + 4}">{text(label)}</text>')
        x += width + 10
    return out


def figure(title: str, body: list[str], caption: str, ident: str | None = None) -> str:
    """A plot as a figure: the SVG (``title`` also what a screen reader says) and its caption;
    ``ident``, where given, the figure's id for links within the page."""
    anchor = "" if ident is None else f' id="{text(ident)}"'
    return (
        f'<figure{anchor}><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{text(title)}"><title>{text(title)}</title>{"".join(body)}</svg>'
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )


def simplified(points: list[tuple[float, float]], keep: set[int]) -> list[int]:
    """Indices of the points a line needs: one lying within `TOLERANCE_PX` of the chord
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
        if far > TOLERANCE_PX:
            out.add(at)
            spans += [(first, at), (at, last)]
    return sorted(out)
