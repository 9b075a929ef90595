"""`obs report` output: a rich table for people, JSON for programs, Markdown for pages.

A report is a list of sections, each a title and rows of plain data; the
operations summary is the first, and ``--costs`` and ``--drift`` will add
their own sections the same way.

Names in a report are the user's text, and JSON allows text no stream can
write (a lone surrogate, as in ``"B\\udcff"``): the table and Markdown show
what their stream's encoding cannot hold as backslash escapes (`encodable`);
JSON output escapes it the JSON way, so it stays valid JSON in plain ASCII.
"""

from __future__ import annotations

import json

from .summary import PERCENTILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

    from .figures import GroupFigures
    from .summary import GroupSummary

    # a group's figures, reduced record by record or in DuckDB
    Group = GroupSummary | GroupFigures

__all__ = [
    "FORMATS",
    "Section",
    "counted",
    "encodable",
    "operations_section",
    "render_report",
    "stages_section",
]

FORMATS = ("table", "json", "markdown")
_QS = "/".join(f"p{q}" for q in PERCENTILES)
_NAME_COLUMNS = ("function", "model", "model version", "variant")  # a group's key


class Section:
    """One part of a report: a title, column headers, rows, and the data behind them."""

    __slots__ = ("columns", "data", "rows", "title")

    def __init__(
        self, title: str, columns: list[str], rows: list[list[str]], data: list[dict[str, Any]]
    ) -> None:
        self.title = title
        self.columns = columns
        self.rows = rows
        self.data = data


def encodable(text: str, encoding: str | None) -> str:
    """``text`` as a stream in ``encoding`` (UTF-8 if None) can write it, whatever it holds.

    What the encoding cannot hold, lone surrogates above all (valid in JSON,
    never in UTF-8), becomes a backslash escape (``\\udcff``) instead of an
    error halfway through the output or a raw byte that is not UTF-8.
    """
    encoding = encoding or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def counted(number: int, noun: str) -> str:
    """``1 record``, ``2,048 records``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _spread(values: dict[str, float | None]) -> str:
    return " / ".join(_ms(values[f"p{q}"]) for q in PERCENTILES)


def operations_section(groups: Sequence[Group]) -> Section:
    """Counts, rates and latency percentiles per function, model, model version and variant."""
    columns = [
        *_NAME_COLUMNS,
        "requests",
        "errors",
        "timeouts",
        "cold starts",
        "warm-ups",
        f"duration ms {_QS}",
        f"cold init ms {_QS}",
        "line bytes",
    ]
    rows = []
    data = []
    for group in groups:
        summary = group.as_dict()
        data.append(summary)
        rows.append(
            [
                *_names(group),
                str(group.invocations),
                f"{group.errors} ({_rate(group.error_rate)})",
                str(group.timeouts),
                f"{group.cold_starts} ({_rate(group.cold_start_rate)})",
                str(group.warmups),
                _spread(summary["duration_ms"]),  # type: ignore[arg-type]
                _spread(summary["cold_init_ms"]),  # type: ignore[arg-type]
                _ms(summary["line_bytes_p50"]),  # type: ignore[arg-type]
            ]
        )
    return Section("Operations", columns, rows, data)


def stages_section(groups: Sequence[Group]) -> Section:
    """Per-stage latency percentiles for each group, in the order the stages ran."""
    columns = [*_NAME_COLUMNS, "stage", *(f"ms p{q}" for q in PERCENTILES)]
    rows = []
    data: list[dict[str, Any]] = []
    for group in groups:
        stages = group.as_dict()["stages_ms"]
        assert isinstance(stages, dict)
        for name, values in stages.items():
            data.append(
                {
                    "function": group.function,
                    "model": group.model,
                    "model_version": group.model_version,
                    "variant": group.variant,
                    "stage": name,
                    **values,
                }
            )
            rows.append([*_names(group), name, *(_ms(values[f"p{q}"]) for q in PERCENTILES)])
    return Section("Stages", columns, rows, data)


def _names(group: Group) -> list[str]:
    """The group's key as cells, in `_NAME_COLUMNS`' order."""
    return [name or "-" for name in group.key]


def render_report(sections: list[Section], output_format: str, stream: TextIO) -> None:
    """Write the report to ``stream`` in one of `FORMATS`."""
    encoding = getattr(stream, "encoding", None)
    if output_format == "json":
        stream.write(json.dumps({s.title.lower(): s.data for s in sections}, indent=2) + "\n")
    elif output_format == "markdown":
        for section in sections:
            stream.write(f"## {section.title}\n\n")
            stream.write("| " + " | ".join(section.columns) + " |\n")
            stream.write("|" + "---|" * len(section.columns) + "\n")
            for row in section.rows:
                cells = (encodable(cell, encoding).replace("|", "\\|") for cell in row)
                stream.write("| " + " | ".join(cells) + " |\n")
            stream.write("\n")
    elif output_format == "table":
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        # a terminal sets the width; piped output gets room instead of folded words
        console = Console(file=stream, width=None if stream.isatty() else 200)
        for section in sections:
            table = Table(title=section.title, show_lines=False)
            for column in section.columns:
                table.add_column(escape(column), overflow="fold")
            for row in section.rows:  # names are the user's: never read as markup
                table.add_row(*(escape(encodable(cell, encoding)) for cell in row))
            console.print(table)
    else:
        raise ValueError(f"format {output_format!r}: expected one of {', '.join(FORMATS)}")
