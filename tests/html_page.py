"""A report page read back for tests (costs, drift): per ``<h2>`` its text, cells and plots.

Read with the standard library's ``html.parser``, as any consumer would, so
a test asserts what the page says and draws, not how it was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Plot:
    title: str = ""
    ident: str = ""  # the figure's id, where it has one
    paths: list[dict[str, str]] = field(default_factory=list)
    texts: list[tuple[dict[str, str], str]] = field(default_factory=list)


@dataclass
class Section:
    heading: str = ""
    text: list[str] = field(default_factory=list)
    cells: list[tuple[dict[str, str], str]] = field(default_factory=list)  # (td's attrs, text)
    plots: list[Plot] = field(default_factory=list)


class Page(HTMLParser):
    """The page's tags, its text before the first ``<h2>``, and per ``<h2>`` its text,
    table cells and plots."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.style = ""
        self.preamble: list[str] = []
        self.sections: list[Section] = []
        self._in: list[str] = []
        self._plot: Plot | None = None
        self._figure = ""
        self._text: dict[str, str] = {}
        self._cell: dict[str, str] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        self._in.append(tag)
        if tag == "h2":
            self.sections.append(Section())
        elif tag == "figure":
            self._figure = values.get("id", "")
        elif tag == "svg" and self.sections:
            self._plot = Plot(ident=self._figure)
            self.sections[-1].plots.append(self._plot)
        elif tag == "path" and self._plot is not None:
            self._plot.paths.append(values)
        elif tag == "text":
            self._text = values
        elif tag == "td" and self.sections:
            self._cell = values
            self.sections[-1].cells.append((values, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            while self._in.pop() != tag:
                pass
        if tag == "svg":
            self._plot = None
        elif tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        where = self._in[-1] if self._in else ""
        if where == "style":
            self.style += data
        if not self.sections:
            if where not in ("style", "title"):
                self.preamble.append(data)
            return
        section = self.sections[-1]
        if self._cell is not None:
            attrs, before = section.cells[-1]
            section.cells[-1] = (attrs, before + data)
        if where == "h2":
            section.heading += data
        elif self._plot is not None and where == "title":
            self._plot.title += data
        elif self._plot is not None and where == "text":
            self._plot.texts.append((self._text, data))
        else:
            section.text.append(data)


def shown(name: str | None) -> str:
    """A name as the page shows it: a lone surrogate as its backslash escape."""
    return (name or "(unnamed)").encode("utf-8", "backslashreplace").decode("utf-8")


def linear(texts: list[tuple[dict[str, str], str]]) -> tuple[float, float]:
    """The y axis's mapping (y = a + b * value) from its tick labels (right-aligned, at x < 60)."""
    ticks = [
        (float(label.replace(",", "")), float(attrs["y"]) - 4)
        for attrs, label in texts
        if "y" in attrs and float(attrs.get("x", "999")) < 60 and re.fullmatch(r"[\d,.]+", label)
    ]
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    slope = (y1 - y0) / (v1 - v0)
    return y0 - slope * v0, slope


def external_references(page: Page, html: str) -> list[str]:
    """Everything in the page that could make the browser fetch: tags that load, links
    that leave the page, styles that import, any URL at all."""
    found = [
        tag
        for tag, _ in page.tags
        if tag in {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    ]
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "srcset", "action", "data"):
            if not attrs.get(key, "#").startswith("#"):
                found.append(f"{tag} {key}={attrs[key]}")
    if "url(" in page.style or "@import" in page.style:
        found.append("a style that fetches")
    found += re.findall(r"(?:https?:)?//\S*", html)
    return found


def content_security_policy(page: Page) -> str:
    """The page's policy, from its ``<meta http-equiv>``; empty where it has none."""
    policy = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    return policy[0] if policy else ""
