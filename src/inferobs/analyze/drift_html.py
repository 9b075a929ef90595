"""`obs report --drift --format html`: one page, a plot per arm and column, nothing fetched.

The page follows the cost page's rules (`svg_plot`): inline styles, SVG
drawn here with the standard library, no script, a policy that lets the
browser fetch nothing, user text escaped and the page in ASCII. It says what
the text form says (`drift_render.drift_sections`: the same tables, the same
closing lines) and adds, per arm and column, the statistic over time: PSI per
period against the warn and alert levels of the PSI rules that judge the
column, Jensen-Shannon beside it, and the periods any drift rule flagged
shaded in the colour of the level reached.

A month of five-minute periods is more points than a plot has pixels: the
periods are merged into at most one point per pixel across, each the highest
of those it merges (a spike is what a reader looks for), so twenty features
over 720 periods stay a page of a few hundred KB. Where no period was
measured (no traffic, or no values of that column) the line breaks.
"""

from __future__ import annotations

import math
from typing import Any

from .drift_render import drift_sections
from .rules import DRIFT_METRICS, Rule
from .svg_plot import (
    BOTTOM,
    LEFT,
    PLOT_W,
    RIGHT,
    TOP,
    Frame,
    H,
    W,
    axes,
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

__all__ = ["render_drift_html"]

_ARM = ("function", "model", "model_version", "variant")
_MOST_FEATURES = 40  # features named in the header; the tables and plots show every one
# a band narrower than this would vanish between pixels
_NARROWEST_BAND_PX = 1.5
_BANDS = (("alert", "fa"), ("warn", "fw"))  # a level, and the class of its bands
# What this page adds to the shared look: levels in words, and the shaded flagged periods
# (``fa``/``fw`` a band, or with ``l`` its key in the legend)
_STYLE = """.status{font-size:1.05em}td.alert,.status.alert,b.alert{color:#b3261e;font-weight:600}
td.warn,.status.warn,b.warn{color:#a34400;font-weight:600}.status.ok{color:#0b5d1e}
td a{color:inherit}.fa{fill:#f8cfcb}.fw{fill:#fde3c1}
.l.fa{stroke:#f8cfcb;stroke-width:8}.l.fw{stroke:#fde3c1;stroke-width:8}
"""


def render_drift_html(answer: dict[str, Any]) -> str:
    """The whole drift answer (schema ``inferobs.drift/1``) as one self-contained HTML page."""
    sections, lines = drift_sections(answer)
    columns, fired = sections[0], sections[1] if len(sections) > 1 else None
    more = lines[0] if lines[0].startswith("... and ") else None  # findings the table leaves out
    read, status = lines[1 if more else 0 : -1], lines[-1]
    level = "alert" if answer["alert"] else "warn" if answer["warn"] else "ok"
    arms = []  # (number, group, its rows of the table)
    rows = iter(columns.rows)
    for number, group in enumerate(answer["groups"]):
        own = [next(rows) for _ in group["columns"]]
        if own:
            arms.append((number, group, own))
    # each plot's id, by the arm and column as the tables write them
    anchors = {(row[0], row[1]): f"a{n}c{m}" for n, _, own in arms for m, row in enumerate(own)}
    body = [
        f"<h1>{text(columns.title)}</h1>",
        _header(answer, read),
        f'<p class="status {level}">{text(status)}</p>',
    ]
    if fired is not None:
        body.append(f"<h2>{text(fired.title)}</h2>")
        body.append(_findings(fired, anchors, answer.get("rules", [])))
        if more:
            body.append(f'<p class="meta">{text(more)}</p>')
    body.append(_rules(answer.get("rules", [])))
    if len(arms) > 1:
        links = ", ".join(f'<a href="#a{n}">{text(own[0][0])}</a>' for n, _, own in arms)
        body.append(f'<p class="meta">Arms: {links}.</p>')
    plots = _Plots(answer)
    for number, group, own in arms:
        body.append(_arm(number, group, own, columns.columns, plots))
    return page("inferobs: drift against the baseline", _STYLE, body)


def _key(entry: dict[str, Any], subject: str) -> tuple[Any, ...]:
    """An arm's column as findings and groups both name it."""
    return (*(entry.get(k) for k in _ARM), subject)


def _cell(value: str, level: str | None = None, href: str | None = None) -> str:
    """A cell of plain text, coloured by its level, linking within the page where given."""
    shown = text(value) if href is None else f'<a href="#{href}">{text(value)}</a>'
    return f'<td class="{level}">{shown}</td>' if level else f"<td>{shown}</td>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A table of ``head`` (plain text) and rows of cells already made (`_cell`)."""
    heading = "".join(f"<th>{text(column)}</th>" for column in head)
    lines = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><tr>{heading}</tr>{lines}</table>"


def _level(cell: str) -> str | None:
    """The class of a level as the text form writes it (ALERT, WARN, ok)."""
    return {"ALERT": "alert", "WARN": "warn"}.get(cell)


def _header(answer: dict[str, Any], read: list[str]) -> str:
    """What was compared with what: the baseline, the period, what was read, coverage."""
    baseline = answer["baseline"]
    features = [str(f) for f in baseline["features"]]
    named = ", ".join(features[:_MOST_FEATURES])
    if len(features) > _MOST_FEATURES:
        named += f" and {len(features) - _MOST_FEATURES} more"
    since = f", since {answer['since']}" if answer.get("since") else ""
    return (
        f'<p class="meta">Baseline {text(baseline["path"])} (hash {text(baseline["hash"])}): '
        f"prediction {text(baseline['prediction'])}; features {text(named) or 'none'}. "
        f"Statistics per period of {duration(float(answer['window_s']))}{text(since)}.<br>"
        + "<br>".join(text(line) for line in read)
        + "</p>"
    )


def _findings(
    fired: Section, anchors: dict[tuple[str, str], str], rules: list[dict[str, Any]]
) -> str:
    """The rules that fired as the text form lists them, a drift rule's column linking to
    its plot (an operations rule's subject is a function, never a column)."""
    drift = {rule["name"] for rule in rules if rule["metric"] in DRIFT_METRICS}
    at = {name: n for n, name in enumerate(fired.columns)}
    linked = {"rule", "subject", "arm"} <= at.keys()
    rows = []
    for row in fired.rows:
        link = None
        if linked and row[at["rule"]] in drift:
            link = anchors.get((row[at["arm"]], row[at["subject"]]))
        rows.append(
            [
                _cell(
                    cell,
                    _level(cell) if n == at.get("level") else None,
                    link if n == at.get("subject") else None,
                )
                for n, cell in enumerate(row)
            ]
        )
    return _table(fired.columns, rows)


def _rules(rules: list[dict[str, Any]]) -> str:
    """The rules the answer was judged by, so the lines drawn on the plots can be read."""
    if not rules:
        return ""
    rows = [
        [
            _cell(str(rule["name"])),
            _cell(str(rule["metric"])),
            _cell("-" if rule["warn"] is None else f"{rule['warn']:g}"),
            _cell(f"{rule['alert']:g}"),
            _cell(duration(float(rule["window_s"]))),
            _cell(f"{rule['min_samples']:,}"),
            _cell(", ".join(str(c) for c in rule["columns"])),
        ]
        for rule in rules
    ]
    head = ["rule", "metric", "warn at", "alert at", "per", "fewest samples", "columns"]
    return "<h2>Rules judged</h2>" + _table(head, rows)


def _arm(
    number: int, group: dict[str, Any], rows: list[list[str]], head: list[str], plots: _Plots
) -> str:
    """One arm: its heading, its columns' rows of the table, and a plot per column."""
    name = rows[0][0]  # the table's first cell names the arm
    cells = []
    for m, row in enumerate(rows):  # the column links to its plot; a level in its colour
        cells.append(
            [_cell(row[1], href=f"a{number}c{m}")] + [_cell(c, _level(c)) for c in row[2:]]
        )
    parts = [f'<h2 id="a{number}">{text(name)}</h2>', _table(head[1:], cells)]
    parts.append('<div class="plots">')
    for m, entry in enumerate(group["columns"]):
        parts.append(plots.column(f"a{number}c{m}", name, group, entry))
    parts.append("</div>")
    return "\n".join(parts)


class _Plots:
    """What every column's plot shares: the time axis, the period, the rules and findings."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.window_ns = max(1, round(float(answer["window_s"]) * 1e9))
        starts = [
            p["start_ns"] for g in answer["groups"] for e in g["columns"] for p in e["series"]
        ]
        self.start_ns = min(starts, default=0)
        self.end_ns = max(starts, default=0) + self.window_ns
        periods = max(1, math.ceil((self.end_ns - self.start_ns) / self.window_ns))
        self.merge = math.ceil(periods / PLOT_W)  # periods a point stands for
        self.psi_rules = [
            Rule(**{**rule, "columns": tuple(rule["columns"])})
            for rule in answer.get("rules", [])
            if rule["metric"] == "psi"
        ]
        judged_s = {rule["name"]: float(rule["window_s"]) for rule in answer.get("rules", [])}
        self.flagged: dict[tuple[Any, ...], list[tuple[int, int, str]]] = {}
        for finding in answer["findings"]:
            if finding["metric"] in DRIFT_METRICS:
                span_ns = round(judged_s.get(finding["rule"], answer["window_s"]) * 1e9)
                start = finding["start_ns"]
                self.flagged.setdefault(_key(finding, finding["subject"]), []).append(
                    (start, start + span_ns, finding["level"])
                )

    def column(self, ident: str, arm: str, group: dict[str, Any], entry: dict[str, Any]) -> str:
        """The plot of one arm's column: PSI and Jensen-Shannon per period, the PSI rules'
        levels, and the periods a rule flagged."""
        column = str(entry["column"])
        lines = {key: self._runs(entry["series"], key) for key in ("psi", "jensen_shannon")}
        levels = sorted(
            {
                (level, value)
                for rule in self.psi_rules
                if rule.covers(column)
                for level, value in (("warn", rule.warn), ("alert", rule.alert))
                if value is not None
            },
            key=lambda pair: pair[1],
        )
        values = [v for runs in lines.values() for run in runs for _, v in run]
        high = max(values + [value for _, value in levels] + [0.0])
        top, y_ticks = y_axis(high * 1.04 or 1.0, _plain)
        frame = Frame(self.start_ns / 1e9, self.end_ns / 1e9, top)
        x_ticks = time_ticks(self.start_ns / 1e9, self.end_ns / 1e9)
        body = axes(frame, x_ticks, y_ticks, "time (UTC)", "PSI, Jensen-Shannon")
        keys = [("c1", "PSI"), ("c4", "Jensen-Shannon")]
        bands = self._bands(frame, self.flagged.get(_key(group, column), []))
        for kind, d in bands.items():  # beneath the grid and the lines, alert over warn
            body.insert(0, f'<path class="{kind}" d="{d}"/>')
        for level, value in levels:
            kind = "c2" if level == "alert" else "c5"
            body.append(f'<path class="l {kind}" d="M{LEFT} {num(frame.y(value))}h{PLOT_W}"/>')
            keys.append((kind, f"{level} {value:g}"))
        for kind, key in (("c1", "psi"), ("c4", "jensen_shannon")):
            d = self._path(frame, lines[key])
            if d:
                body.append(f'<path class="l {kind}" d="{d}"/>')
        keys += [(kind, f"flagged: {level}") for level, kind in _BANDS if kind in bands]
        body += legend(keys)
        caption = (
            f"{column}: PSI and Jensen-Shannon per period of {duration(self.window_ns / 1e9)}"
            + (f", each point the highest of {self.merge} periods" if self.merge > 1 else "")
            + ("; dashed, the PSI rules' levels" if levels else "")
            + ("; shaded, the periods a drift rule flagged" if bands else "")
            + ("." if values else "; no period measured it.")
        )
        return figure(f"Drift of {column} over time: {arm}", body, caption, ident)

    def _runs(self, series: list[dict[str, Any]], key: str) -> list[list[tuple[float, float]]]:
        """(time in seconds, value) of each point drawn, the highest of the periods it merges,
        in runs of neighbours: a point with none measured before it starts a new run."""
        width = self.window_ns * self.merge
        highest: dict[int, float] = {}
        for point in series:
            value = point[key]
            if value is not None:
                slot = (point["start_ns"] - self.start_ns) // width
                highest[slot] = max(float(value), highest.get(slot, -math.inf))
        runs: list[list[tuple[float, float]]] = []
        last = None
        for slot in sorted(highest):
            first = self.start_ns + slot * width  # the last slot may hold fewer periods
            at = (first + min(first + width, self.end_ns)) / 2e9
            if last is None or slot != last + 1:
                runs.append([])
            runs[-1].append((at, highest[slot]))
            last = slot
        return runs

    @staticmethod
    def _path(frame: Frame, runs: list[list[tuple[float, float]]]) -> str:
        """One path of every run, each simplified to the points that move it; a run of one
        point is a short dash, or it would not show."""
        d = []
        for run in runs:
            points = [(frame.x(at), frame.y(value)) for at, value in run]
            if len(points) == 1:
                ((x, y),) = points
                d.append(f"M{num(x - 1.5)} {num(y)}h3")
                continue
            kept = simplified(points, set())
            d.append("M" + " ".join(f"{num(points[i][0])} {num(points[i][1])}" for i in kept))
        return "".join(d)

    @staticmethod
    def _bands(frame: Frame, spans: list[tuple[int, int, str]]) -> dict[str, str]:
        """Shaded bands (path data by class: ``fw`` warn, ``fa`` alert) over the flagged
        periods; those that touch on screen are one band. An alert outranks a warning
        where both flag a period, its band drawn over the other."""
        bottom = H - BOTTOM
        out = {}
        for level, kind in _BANDS:
            pixels = sorted(
                (
                    max(float(LEFT), frame.x(start / 1e9)),
                    min(float(W - RIGHT), frame.x(end / 1e9)),
                )
                for start, end, said in spans
                if said == level
            )
            merged: list[list[float]] = []
            for x0, end in pixels:
                x1 = max(end, x0 + _NARROWEST_BAND_PX)
                if merged and x0 <= merged[-1][1] + 0.5:
                    merged[-1][1] = max(merged[-1][1], x1)
                else:
                    merged.append([x0, x1])
            if merged:
                out[kind] = "".join(
                    f"M{num(x0)} {TOP}H{num(x1)}V{bottom}H{num(x0)}Z" for x0, x1 in merged
                )
        return out


def _plain(value: float, step: float) -> str:
    """A tick of a statistic: as many decimals as its step needs."""
    return f"{value:.{decimals(step)}f}"
