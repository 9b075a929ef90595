"""A drift window's counts as one flat row of integers, and back.

The analyzer merges windows by adding rows of a matrix, and the embedded store
keeps a window's counts as one array, so the nested counts of a window record
(`inferobs.drift.counting`) need one flat order. Two are used:

- the **record's own order** (`flatten`, `shape`, `unflatten`): every list of
  counts in the order the record holds them, with a `shape` that says how to
  put them back; what the store keeps beside each array, so a stored window is
  read back as the record that was written, with no baseline at hand;
- the **baseline's order** (`segments`, `row`): the prediction, then the
  features in the baseline's order, each column's counts where `segments` says;
  what the analyzer's matrix holds, whatever order a record's keys came in (a
  log service may sort them).

Standard library only: the store exporter flattens on the handler's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from .baseline import Baseline, Categorical, ClassScores, Numeric

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Segment", "flatten", "row", "segments", "shape", "unflatten", "width"]


def flatten(counts: Any, out: list[int] | None = None) -> list[int]:
    """Every count in ``counts`` (nested dicts and lists of integers), in its own order."""
    out = [] if out is None else out
    if isinstance(counts, dict):
        for value in counts.values():
            flatten(value, out)
    elif isinstance(counts, list) and counts and isinstance(counts[0], (list, dict)):
        for value in counts:
            flatten(value, out)
    elif isinstance(counts, list):
        out.extend(int(c) for c in counts)
    else:
        out.append(int(counts))
    return out


def shape(counts: Any) -> Any:
    """``counts`` with each list of integers replaced by its length and each lone count by None."""
    if isinstance(counts, dict):
        return {key: shape(value) for key, value in counts.items()}
    if isinstance(counts, list) and counts and isinstance(counts[0], (list, dict)):
        return [shape(value) for value in counts]
    if isinstance(counts, list):
        return len(counts)
    return None


def unflatten(form: Any, flat: list[int], at: int = 0) -> tuple[Any, int]:
    """The nested counts `shape` described, from ``flat`` at ``at``; and where they end."""
    if isinstance(form, dict):
        out: dict[str, Any] = {}
        for key, value in form.items():
            out[key], at = unflatten(value, flat, at)
        return out, at
    if isinstance(form, list):
        items = []
        for value in form:
            item, at = unflatten(value, flat, at)
            items.append(item)
        return items, at
    if form is None:
        return flat[at], at + 1
    if not isinstance(form, int) or form < 0 or at + form > len(flat):
        raise ValueError("the counts do not fit their shape")
    return flat[at : at + form], at + form


@dataclass(frozen=True)
class Segment:
    """Where one statistic's column sits in a baseline-ordered row.

    ``column`` is the name statistics are reported under: a feature's name,
    the prediction's, or ``<prediction>.<class>`` for one class's scores.
    ``spec`` is None for the count of class vectors that could not be read.
    """

    column: str
    spec: Numeric | Categorical | None
    start: int
    stop: int
    path: tuple[str | int, ...]  # where the counts are in a window record


def segments(baseline: Baseline) -> list[Segment]:
    """Every column's place in a baseline-ordered row: the prediction first, then the features."""
    out: list[Segment] = []
    at = 0

    def add(column: str, spec: Numeric | Categorical | None, path: tuple[str | int, ...]) -> None:
        nonlocal at
        size = 1 if spec is None else _size(spec)
        out.append(Segment(column, spec, at, at + size, path))
        at += size

    name, prediction = baseline.prediction
    columns: list[tuple[str, Any, tuple[str | int, ...]]] = [
        (name, prediction, ("prediction", name))
    ]
    columns += [(key, spec, ("features", key)) for key, spec in baseline.features.items()]
    for column, spec, path in columns:
        if isinstance(spec, ClassScores):
            add(column, spec.label, (*path, "label"))
            for n, (cls, scores) in enumerate(zip(spec.classes, spec.scores, strict=True)):
                add(f"{column}.{cls}", scores, (*path, "scores", n))
            add(f"{column}.invalid", None, (*path, "invalid"))
        else:
            add(column, spec, path)
    return out


def width(baseline: Baseline) -> int:
    """How many counts a window against ``baseline`` holds."""
    return segments(baseline)[-1].stop


def row(record: dict[str, Any], layout: list[Segment]) -> list[int]:
    """A window record's counts in the baseline's order; ValueError naming what does not fit."""
    out: list[int] = []
    for segment in layout:
        value: Any = record
        for step in segment.path:
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                where = ".".join(str(s) for s in segment.path)
                raise ValueError(f"{where}: missing from the window") from None
        size = segment.stop - segment.start
        counts = [value] if segment.spec is None else value
        if not isinstance(counts, list) or len(counts) != size:
            where = ".".join(str(s) for s in segment.path)
            raise ValueError(f"{where}: expected {size} counts")
        try:
            out.extend(int(c) for c in counts)
        except (TypeError, ValueError):
            where = ".".join(str(s) for s in segment.path)
            raise ValueError(f"{where}: counts must be whole numbers") from None
    return out


def _size(spec: Numeric | Categorical) -> int:
    """Bins and extra buckets: numeric ``missing`` and ``invalid``; categorical
    ``__other__`` and ``missing``."""
    if isinstance(spec, Numeric):
        return len(spec.edges) + 3
    return len(spec.categories) + 2
