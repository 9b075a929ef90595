"""`obs report --drift --format html`: a plot per arm and column, the rules' levels, no fetch.

The answer is the real one (`drift_answer`): windows counted by `DriftWindows`
as handlers count them, read as the analyzer reads them (a `WindowTable` on
`Frames`, with invocations that say how many observations they made), judged
by the shipped rules. The page is read back with ``html.parser``
(`tests.html_page`) and opened in headless chromium (`tests.browser`).
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from inferobs.analyze.columns import arrow_table
from inferobs.analyze.drift_html import render_drift_html
from inferobs.analyze.drift_render import drift_sections, write_drift
from inferobs.analyze.drift_report import drift_answer
from inferobs.analyze.frames import Frames
from inferobs.analyze.rules import load_rules
from inferobs.analyze.svg_plot import LEFT, PLOT_W, TOP
from inferobs.drift.baseline import Baseline
from inferobs.drift.counting import DriftWindows
from inferobs.drift.window_table import WindowTable

from .browser import count_colour, pixels, render
from .html_page import Page, Plot, content_security_policy, external_references, linear, shown

EVIL = '<script>alert("x")</script> & <b>co</b>'
SURROGATE = "m\udcff"  # valid in JSON, not in UTF-8
HOUR = 3600
START = 1_764_000_000 // HOUR * HOUR  # an hour boundary
SHIFTED_HOURS = (4, 5)  # x moves far in these hours of arm "api"
WARNED_HOUR = 2  # y moves a little in this hour of arm "api"
QUIET_HOUR = 3  # the other arm has no traffic in this hour
# the plots' colours (svg_plot's and drift_html's styles)
COLOURS = {
    "PSI": "#1f77b4",
    "Jensen-Shannon": "#9467bd",
    "alert level": "#d62728",
    "warn level": "#ff7f0e",
    "alert band": "#f8cfcb",
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reference(rng: np.random.Generator, features: list[str]) -> Baseline:
    n = 20_000
    frame: dict[str, Any] = {"label": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])}
    frame.update({name: rng.normal(size=n) for name in features})
    return Baseline.from_frame(frame, prediction="label", features=features, bins=10)


def windows(
    built: Baseline,
    rng: np.random.Generator,
    start: float,
    rows: int,
    shift: dict[str, float],
    **arm: str,
) -> list[dict[str, Any]]:
    """One instance's five-minute window somewhere in the hour from ``start``: ``rows``
    predictions and feature rows, each feature moved by ``shift`` standard deviations."""
    counter = DriftWindows(built, 300, clock=Clock(start + rng.uniform(0, 3299)))
    counter.observe_prediction(rng.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1]).tolist())
    names = list(built.features)
    values = {name: rng.normal(loc=shift.get(name, 0.0), size=rows) for name in names}
    counter.observe_features([{n: float(values[n][i]) for n in names} for i in range(rows)])
    return [{**record, **arm} for record in counter.take_closed(flush=True)]


def answer_of(
    built: Baseline, records: list[dict[str, Any]], period_s: float, invocations: list[Any]
) -> dict[str, Any]:
    """The drift answer as `obs report --drift` makes it, from these windows and invocations."""
    frames = Frames(duckdb.connect())
    frames.db.from_arrow(arrow_table(invocations, "invocations")).create_view("invocations")
    frames.windows = WindowTable.from_records(built, records)[0]
    return drift_answer(
        frames,
        built,
        baseline_path="models/baseline.json",
        period_s=period_s,
        rules=load_rules(),
        since_ns=None,
    )


@dataclass
class Report:
    answer: dict[str, Any]
    html: str
    page: Page


@pytest.fixture(scope="module")
def report() -> Report:
    """Six hours of two arms: "api" with x shifted far in its last two hours and y a
    little in one; the hostile-named arm unshifted, and quiet for an hour."""
    rng = np.random.default_rng(20261203)
    built = reference(rng, ["x", "y"])
    records = []
    for hour in range(6):
        at = START + hour * HOUR
        shift = {"x": 1.0} if hour in SHIFTED_HOURS else {}
        if hour == WARNED_HOUR:
            shift = {"y": 0.4}
        for _ in range(2):
            records += windows(built, rng, at, 1000, shift, function="api", model="ranker")
            if hour != QUIET_HOUR:
                records += windows(built, rng, at, 400, {}, function=EVIL, model=SURROGATE)
    made = [
        {"start": r["window_start"], "function": r["function"], "kind": "invocation"}
        | {"status": "ok", "duration_ms": 12.0, "drift_observations": r["observations"]}
        for r in records
    ]
    made[0]["drift_observations"] += 700  # a window that never arrived
    answer = answer_of(built, records, HOUR, made)
    stream = io.StringIO()
    write_drift(answer, "html", stream)  # as `obs report --drift --format html` writes it
    return Report(answer, stream.getvalue(), Page(stream.getvalue()))


def arms(report: Report) -> list[Any]:
    """The page's sections of arms (after the findings and the rules)."""
    return [s for s in report.page.sections if s.plots]


def arm_of(report: Report, function: str) -> int:
    """The place of ``function``'s arm among the answer's groups (and the page's arms)."""
    functions = [group["function"] for group in report.answer["groups"]]
    return functions.index(function)


def plot_of(report: Report, arm: int, column: str) -> Plot:
    group = report.answer["groups"][arm]
    m = [entry["column"] for entry in group["columns"]].index(column)
    plots: list[Plot] = [p for p in arms(report)[arm].plots if p.ident == f"a{arm}c{m}"]
    (plot,) = plots
    return plot


def drawn(plot: Plot, kind: str) -> list[str]:
    """The paths of class ``kind`` within the plot's box (not the legend's keys above it)."""
    return [p["d"] for p in plot.paths if p.get("class") == kind and points(p["d"])[0][1] >= TOP]


def points(d: str) -> list[tuple[float, float]]:
    """The vertices of a path drawn with M (then implicit lines), H, V, h, v and Z."""
    out: list[tuple[float, float]] = []
    x = y = 0.0
    for command, args in re.findall(r"([MHVhvZ])([^MHVhvZ]*)", d):
        numbers = [float(n) for n in args.split()]
        if command == "M":
            for x, y in zip(numbers[::2], numbers[1::2], strict=True):
                out.append((x, y))
            continue
        for number in numbers:
            x = {"H": number, "h": x + number}.get(command, x)
            y = {"V": number, "v": y + number}.get(command, y)
            out.append((x, y))
    return out


def test_the_answer_carries_the_rules_it_was_judged_by(report: Report) -> None:
    rules = json.loads(json.dumps(report.answer))["rules"]
    assert rules == [
        {
            "name": rule.name,
            "metric": rule.metric,
            "alert": rule.alert,
            "warn": rule.warn,
            "window_s": rule.window_s,
            "min_samples": rule.min_samples,
            "columns": list(rule.columns),
        }
        for rule in load_rules()
    ]


def test_each_arm_and_column_has_its_row_and_a_plot_with_the_psi_levels(report: Report) -> None:
    sections = arms(report)
    assert len(sections) == len(report.answer["groups"]) == 2
    psi = next(rule for rule in report.answer["rules"] if rule["metric"] == "psi")
    for arm, (section, group) in enumerate(zip(sections, report.answer["groups"], strict=True)):
        assert section.heading == f"{shown(group['function'])} / {shown(group['model'])} / - / -"
        columns = [entry["column"] for entry in group["columns"]]
        assert columns == ["label", "x", "y"]
        assert [cell for _, cell in section.cells if cell in columns] == columns
        for entry in group["columns"]:
            plot = plot_of(report, arm, entry["column"])
            assert plot.title == f"Drift of {entry['column']} over time: {section.heading}"
            start, slope = linear(plot.texts)
            for kind, level in (("l c5", psi["warn"]), ("l c2", psi["alert"])):
                (line,) = drawn(plot, kind)
                y = float(line.split()[1].split("h")[0])  # "M<left> <y>h<width>": across
                assert math.isclose(y, start + level * slope, abs_tol=0.15)
            legend = {text for attrs, text in plot.texts if float(attrs.get("y", 99)) < 42}
            assert {"PSI", "Jensen-Shannon", "warn 0.1", "alert 0.25"} <= legend
            # the PSI line passes through each period's value, at the period's middle, and
            # breaks where the arm had no traffic
            (psi_line,) = drawn(plot, "l c1")
            vertices = points(psi_line)
            quiet = group["function"] == EVIL
            assert len(entry["series"]) == 5 if quiet else 6
            assert psi_line.count("M") == (2 if quiet else 1)
            for point in entry["series"]:
                hour = (point["start_ns"] // 10**9 - START) / HOUR
                middle = LEFT + (hour + 0.5) * PLOT_W / 6
                height = np.interp(middle, [x for x, _ in vertices], [y for _, y in vertices])
                assert math.isclose(height, start + point["psi"] * slope, abs_tol=0.3)
            assert drawn(plot, "l c4")  # Jensen-Shannon beside it


def batched(cells: list[Any], size: int) -> list[list[Any]]:
    """Cells of a table in rows of ``size``."""
    return [cells[n : n + size] for n in range(0, len(cells), size)]


def spans(d: str) -> list[tuple[float, float]]:
    """The left and right edges of each band of a path of bands ("M.. H.. V.. H.. Z")."""
    out = []
    for band in d.split("Z"):
        if band:
            xs = [x for x, _ in points(band)]
            out.append((min(xs), max(xs)))
    return out


def test_a_shifted_column_is_flagged_where_it_shifted_and_nowhere_else(report: Report) -> None:
    findings = report.answer["findings"]
    hours = [(f["start_ns"] // 10**9 - START) // HOUR for f in findings]
    api = arm_of(report, "api")
    flagged = {(f["function"], f["subject"], h) for f, h in zip(findings, hours, strict=True)}
    assert flagged == {("api", "x", h) for h in SHIFTED_HOURS} | {("api", "y", WARNED_HOUR)}
    # y moved a little: between the warn and alert levels of its rules
    assert {f["subject"] for f in findings if f["level"] == "warn"} == {"y"}
    assert all(f["subject"] == "x" for f in findings if f["level"] == "alert")
    assert hours == sorted(hours, reverse=True)  # newest first
    # the table says what the text form says, each level in its colour, a drift rule's
    # column linking to its plot
    (_, text_form), _ = drift_sections(report.answer)
    fired = report.page.sections[0]
    assert fired.heading == text_form.title
    assert [cell for _, cell in fired.cells] == [cell for row in text_form.rows for cell in row]
    level_at, subject_at, arm_at = (text_form.columns.index(c) for c in ("level", "subject", "arm"))
    cells_by_row = batched(fired.cells, len(text_form.columns))
    for row, cells in zip(text_form.rows, cells_by_row, strict=True):
        assert cells[level_at][0].get("class") == row[level_at].lower()
    links = [a["href"] for t, a in report.page.tags if t == "a" and a.get("href")]
    api_arm = ("api / ranker / - / -",)
    for column in ("x", "y"):
        rows = sum((r[arm_at], r[subject_at]) == (*api_arm, column) for r in text_form.rows)
        assert rows >= 2  # Jensen-Shannon and PSI
        plot = plot_of(report, api, column)
        assert links.count(f"#{plot.ident}") == rows + 1  # and from its row in the arm's table
    # the arm's rows: the level each column reached, in its colour
    row_levels = [(a.get("class"), cell) for a, cell in arms(report)[api].cells]
    assert [c for c in row_levels if c[1] in ("ALERT", "WARN", "ok")] == [
        (None, "ok"),
        ("alert", "ALERT"),
        ("warn", "WARN"),
    ]
    # each flagged hour is shaded on its column's plot in its level's colour, nothing else is
    hour_px = PLOT_W / 6
    for arm, group in enumerate(report.answer["groups"]):
        for entry in group["columns"]:
            plot = plot_of(report, arm, entry["column"])
            for level, kind in (("alert", "fa"), ("warn", "fw")):
                said = sorted(
                    {
                        h
                        for f, h in zip(findings, hours, strict=True)
                        if f["level"] == level
                        and (f["function"], f["subject"]) == (group["function"], entry["column"])
                    }
                )
                bands = [band for d in drawn(plot, kind) for band in spans(d)]
                expected = [(LEFT + h * hour_px, LEFT + (h + 1) * hour_px) for h in said]
                merged: list[tuple[float, float]] = []
                for left, right in expected:  # neighbouring hours are one band
                    if merged and math.isclose(merged[-1][1], left):
                        merged[-1] = (merged[-1][0], right)
                    else:
                        merged.append((left, right))
                assert len(bands) == len(merged)
                for (left, right), (x0, x1) in zip(bands, merged, strict=True):
                    assert math.isclose(left, x0, abs_tol=0.1)
                    assert math.isclose(right, x1, abs_tol=0.1)


def test_the_header_says_what_was_read_and_the_status(report: Report) -> None:
    said = "".join(report.page.preamble)
    answer = report.answer
    assert "Drift per 1h against models/baseline.json" in said
    assert answer["baseline"]["hash"] in said and "prediction label; features x, y" in said
    assert f"{answer['windows']:,} windows from {answer['instances']:,} instances" in said
    coverage = answer["coverage"]
    assert coverage is not None and coverage["share"] < 1
    assert f"Coverage: {coverage['share']:.1%} of the {coverage['made']:,}" in said
    status = [a for t, a in report.page.tags if "status" in a.get("class", "")]
    assert [a["class"] for a in status] == ["status alert"]
    assert "ALERT: an alert rule fired" in said


def test_the_page_refers_to_nothing_outside_itself(report: Report) -> None:
    assert report.html.isascii()
    assert external_references(report.page, report.html) == []
    assert "default-src 'none'" in content_security_policy(report.page)
    # every link within the page lands somewhere
    ids = {a["id"] for _, a in report.page.tags if "id" in a}
    links = {a["href"][1:] for t, a in report.page.tags if t == "a"}
    assert links and links <= ids


def test_hostile_names_are_text_on_the_page_never_markup(report: Report) -> None:
    html = report.html
    assert "<script" not in html and "<b>co" not in html
    heading = f"{EVIL} / m\\udcff / - / -"
    assert arms(report)[arm_of(report, EVIL)].heading == heading
    assert all(plot.title.endswith(heading) for plot in arms(report)[arm_of(report, EVIL)].plots)


def test_twenty_features_over_720_periods_stay_a_small_page_their_peaks_kept() -> None:
    rng = np.random.default_rng(7)
    features = [f"feature_{n:02d}" for n in range(20)]
    built = reference(rng, features)
    # real windows of a few kinds over 60 hours of five-minute periods; every feature
    # moves far for one hour (periods 504 to 515)
    calm = [windows(built, rng, 0, 300, {})[0] for _ in range(8)]
    spike = windows(built, rng, 0, 300, dict.fromkeys(features, 2.0))[0]
    moved = range(504, 516)
    records = []
    for n in range(720):
        record = spike if n in moved else calm[n % len(calm)]
        begin_ns = (START + n * 300) * 10**9
        records.append({**record, "window_start": begin_ns, "window_end": begin_ns + 300 * 10**9})
    records = [{**r, "function": "api", "instance_id": "i0"} for r in records]
    answer = answer_of(built, records, 300, [])
    html = render_drift_html(answer)
    assert len(html) < 400_000, len(html)
    page = Page(html)
    # more rules fired than the table shows: the text form's note follows it
    (_, text_form), lines = drift_sections(answer)
    assert lines[0].startswith("... and ")
    fired = page.sections[0]
    assert fired.heading == text_form.title and lines[0] in fired.text
    (arm,) = [s for s in page.sections if s.plots]
    assert len(arm.plots) == 21
    for plot, entry in zip(arm.plots, answer["groups"][0]["columns"], strict=True):
        (line,) = drawn(plot, "l c1")
        drawn_points = points(line)
        assert len(drawn_points) <= PLOT_W  # no more than the plot's pixels across
        start, slope = linear(plot.texts)
        highest = max(p["psi"] for p in entry["series"])
        assert math.isclose(min(y for _, y in drawn_points), start + highest * slope, abs_tol=0.15)
        if entry["column"] in features:  # the hour that moved, shaded
            (band,) = drawn(plot, "fa")
            ((left, right),) = spans(band)
            assert math.isclose(left, LEFT + moved[0] / 720 * PLOT_W, abs_tol=0.1)
            assert math.isclose(right, LEFT + (moved[-1] + 1) / 720 * PLOT_W, abs_tol=0.1)
        else:
            assert not drawn(plot, "fa")


def test_with_no_windows_the_page_says_how_to_count_them() -> None:
    built = reference(np.random.default_rng(3), ["x"])
    answer = answer_of(built, [], HOUR, [])
    page = Page(render_drift_html(answer))
    said = "".join(page.preamble)
    assert "0 windows from 0 instances" in said
    assert "obs.observe_prediction" in said
    assert not [s for s in page.sections if s.plots]


def test_a_real_browser_renders_the_page_and_requests_nothing(
    report: Report, tmp_path: Path
) -> None:
    page = tmp_path / "drift.html"
    page.write_text(report.html)
    seen = render(page, tmp_path / "browser", size=(1400, 2000))
    assert seen.requests == []
    dom = Page(seen.dom)
    assert [len(section.plots) for section in dom.sections if section.plots] == [3, 3]
    assert "ALERT: an alert rule fired" in "".join(dom.preamble)
    image = pixels(seen.screenshot)
    assert image.shape == (2000, 1400, 3)
    # the first arm's plots are on screen, each line and the shading in its colour
    for what, colour in COLOURS.items():
        assert count_colour(image, colour, tolerance=12) > 40, what
