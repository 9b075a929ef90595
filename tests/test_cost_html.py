"""`obs report --costs --format html`: one page, three plots a function, nothing fetched.

The answer comes the real way (records written as JSON lines, read by ``obs
report``); the page is read with ``html.parser`` and opened in a real
headless browser (`tests.browser`), whose network log must show no request.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inferobs.analyze.cost_html import render_html
from inferobs.cli import main
from inferobs.export.lines import encode
from inferobs.record import Invocation

from .browser import count_colour, pixels, render
from .html_page import Page, content_security_policy, external_references, linear, shown

EVIL = 'evil <script>alert("x")</script> & <b>co</b>'
SURROGATE = "B\udcff"  # valid in JSON, not in UTF-8
POLICIES = ("--policy", "on-demand", "--policy", "provisioned:2")
# the plots' colours (cost_html's style): concurrency, provisioned level, cost, cold starts, mark
COLOURS = {"c1": "#1f77b4", "c2": "#d62728", "c3": "#2ca02c", "c4": "#9467bd", "m": "#ff7f0e"}


def write_records(path: Path) -> None:
    """Three functions, each with enough requests over more than an hour to be decided."""
    draw = random.Random(20261203)
    with path.open("w") as out:
        for name, count, gap_s in (("api", 3000, 2.0), (EVIL, 900, 6.0), (SURROGATE, 400, 12.0)):
            at = 1_764_000_000 * 10**9
            for i in range(count):
                at += int(draw.expovariate(1 / gap_s) * 1e9)
                cold = i % 50 == 0
                record = Invocation(
                    start=at,
                    duration_ms=round(draw.uniform(50, 3000), 3),
                    function=name,
                    memory_mb=1024,
                    cold_start=cold,
                    init_ms=800.0 if cold else None,
                )
                out.write(encode(record) + "\n")


def costs(source: Path, output_format: str, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["report", "--costs", "--format", output_format, "--source", str(source), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@dataclass
class Reports:
    source: Path
    html: str  # the search's options
    answer: dict[str, Any]
    priced_html: str  # exactly on-demand and provisioned:2
    priced: dict[str, Any]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    source = tmp_path_factory.mktemp("cost-html") / "records.jsonl"
    write_records(source)
    return Reports(
        source,
        costs(source, "html"),
        json.loads(costs(source, "json")),
        costs(source, "html", *POLICIES),
        json.loads(costs(source, "json", *POLICIES)),
    )


def test_each_function_has_its_recommendation_options_and_three_plots(reports: Reports) -> None:
    for html, answer in ((reports.html, reports.answer), (reports.priced_html, reports.priced)):
        page = Page(html)
        assert len(page.sections) == len(answer["functions"]) == 3
        for section, entry in zip(page.sections, answer["functions"], strict=True):
            name = shown(entry["function"])
            assert name in section.heading
            text = "".join(section.text)
            cells = {chunk.removesuffix(" (current)") for chunk in section.text}
            advice = entry["recommendation"]
            assert advice["reason"].removeprefix(f"{advice['policy']} is ") in text
            if advice["policy"] is not None:
                assert f"Recommended: {advice['policy']}," in text
            for option in entry["options"]:
                if not option["policy"].startswith("always-on:"):  # one size a family shown
                    assert option["policy"] in cells
            assert [plot.title for plot in section.plots] == [
                f"Concurrency over time: {name}",
                f"Monthly cost against N: {name}",
                f"Cold-start rate against N: {name}",
            ]


def test_the_page_refers_to_nothing_outside_itself(reports: Reports) -> None:
    for html in (reports.html, reports.priced_html):
        page = Page(html)
        assert external_references(page, html) == []
        assert "default-src 'none'" in content_security_policy(page)


def test_function_names_are_text_on_the_page_never_markup(reports: Reports) -> None:
    html = reports.html
    assert "<script" not in html and "<b>co" not in html
    page = Page(html)
    assert any(EVIL in section.heading for section in page.sections)
    assert any(EVIL in plot.title for section in page.sections for plot in section.plots)
    # a name no encoding can write comes out as its escape, on a page any stream can carry
    assert html.isascii()
    assert any("B\\udcff" in section.heading for section in page.sections)


def test_the_provisioned_level_is_drawn_where_it_is_against_concurrency(reports: Reports) -> None:
    page = Page(reports.priced_html)
    for section, entry in zip(page.sections, reports.priced["functions"], strict=True):
        concurrency, cost, cold = section.plots
        level = [p["d"] for p in concurrency.paths if p.get("class") == "l c2" and "H" in p["d"]]
        legend = [text for _, text in concurrency.texts]
        assert any(label.startswith("provisioned:2") for label in legend)
        start, slope = linear(concurrency.texts)
        y = float(level[0].split()[1].split("H")[0])  # "M<x> <y>H<x>": held all day
        assert math.isclose(y, start + 2 * slope, abs_tol=0.3)
        policy = entry["recommendation"]["policy"]
        n = {"on-demand": 0, "provisioned:2": 2}[policy]
        for plot, key in ((cost, "monthly_usd"), (cold, "cold_start_rate")):
            marks = [text for _, text in plot.texts if text.startswith("recommended:")]
            assert marks == [
                f"recommended: {'on-demand' if n == 0 else 'N = 2'}, "
                + (
                    f"${entry['sweep'][key][n]:,.2f}"
                    if key == "monthly_usd"
                    else f"{entry['sweep'][key][n]:.2%}"
                )
            ]


def _steps(d: str) -> list[int]:
    """The values of a step path drawn in data units (``M0 v`` then ``h..v..`` moves)."""
    values = [int(d.split()[1].split("h", maxsplit=1)[0])]
    for delta in re.findall(r"v(-?\d+)", d):
        values.append(values[-1] + int(delta))
    return values


def test_long_series_are_thinned_and_fifty_functions_stay_a_small_page(reports: Reports) -> None:
    draw = random.Random(5)
    answer = copy.deepcopy(reports.answer)
    template = answer["functions"][0]
    functions = []
    for number in range(50):
        entry = copy.deepcopy(template)
        entry["function"] = f"fn-{number:02d}"
        peaks = [
            max(0, int(250 + 200 * math.sin(i / 90) + draw.randint(-40, 40))) for i in range(1441)
        ]
        peaks[777] = 997  # one burst: thinning must keep it
        entry["sweep"]["concurrency"]["peak"] = peaks
        top = 5000
        entry["sweep"]["n"] = list(range(top + 1))
        entry["sweep"]["monthly_usd"] = [900 + (n - 1500) ** 2 / 2e4 for n in range(top + 1)]
        entry["sweep"]["cold_start_rate"] = [0.05 * (1 - n / top) ** 3 for n in range(top + 1)]
        functions.append(entry)
    answer["functions"] = functions
    html = render_html(answer)
    assert len(html) < 400_000, len(html)
    page = Page(html)
    for section in page.sections:
        concurrency, cost, cold = section.plots
        (line,) = [p["d"] for p in concurrency.paths if "transform" in p]
        values = _steps(line)
        assert max(values) == 997
        assert len(values) <= 420  # no more than the plot's pixels across
        for plot in (cost, cold):
            (curve,) = [
                p["d"]
                for p in plot.paths
                if p.get("class") in ("l c3", "l c4") and "h" not in p["d"]
            ]
            assert len(curve.split()) // 2 <= 1500


def test_a_real_browser_renders_the_page_and_requests_nothing(
    reports: Reports, tmp_path: Path
) -> None:
    page = tmp_path / "costs.html"
    page.write_text(reports.priced_html)
    seen = render(page, tmp_path / "browser", size=(1400, 1100))
    assert seen.requests == []
    dom = Page(seen.dom)
    assert [len(section.plots) for section in dom.sections] == [3, 3, 3]
    for section, entry in zip(dom.sections, reports.priced["functions"], strict=True):
        assert f"Recommended: {entry['recommendation']['policy']}," in "".join(section.text)
    image = pixels(seen.screenshot)
    assert image.shape == (1100, 1400, 3)
    # the first function's three plots are on screen, each line in its colour
    for kind, colour in COLOURS.items():
        assert count_colour(image, colour) > 40, kind


def test_the_browser_watch_sees_a_page_that_does_fetch(tmp_path: Path) -> None:
    """The check above could pass by seeing nothing: here a page that fetches is caught."""
    page = tmp_path / "fetches.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.invalid/s.css">'
        '</head><body><img src="http://example.invalid/a.png"></body></html>'
    )
    seen = render(page, tmp_path / "browser", size=(400, 300))
    assert "http://example.invalid/a.png" in seen.requests
    assert "https://example.invalid/s.css" in seen.requests
