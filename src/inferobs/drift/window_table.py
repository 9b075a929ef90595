"""Drift windows as arrays: one row of counts per window, in the baseline's order.

Every source hands the analyzer its windows in this form (the store straight
from its stored arrays, log files from their records), so merging a month of
windows from many instances is a few numpy operations, not a loop over
records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .baseline import Baseline
from .layout import Segment, row, segments

__all__ = ["GROUP", "WindowTable"]

# windows merge only within one function, model, model version and variant
GROUP = ("function", "model", "model_version", "variant")
Group = tuple[str | None, ...]


@dataclass
class WindowTable:
    """Windows counted against one baseline.

    ``counts[i]`` is window ``i``'s counts in `layout.segments` order;
    ``group[i]`` indexes ``groups`` (the window's function, model, model
    version and variant). ``other`` counts windows left out because they were
    counted against another baseline; ``ids`` are the windows' ``window_id``
    (None for a window written without one, or for all when no source had any).
    """

    baseline: Baseline
    start_ns: npt.NDArray[np.int64]
    end_ns: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    groups: list[Group]
    instance: list[str | None]
    observations: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    other: int = 0
    ids: list[str | None] | None = None  # each window's window_id, where written with one

    def __len__(self) -> int:
        return len(self.start_ns)

    @property
    def layout(self) -> list[Segment]:
        return segments(self.baseline)

    @classmethod
    def empty(cls, baseline: Baseline) -> WindowTable:
        return cls.from_records(baseline, [])[0]

    @classmethod
    def from_records(
        cls, baseline: Baseline, records: list[dict[str, Any]]
    ) -> tuple[WindowTable, list[tuple[int, str]]]:
        """The windows of ``records`` (dicts as `DriftWindows` writes them) and, for each
        record that could not be used, its index and why."""
        layout = segments(baseline)
        wanted = baseline.hash
        starts, ends, groups, instances, observations, rows = [], [], [], [], [], []
        ids: list[str | None] = []
        index: dict[Group, int] = {}
        problems: list[tuple[int, str]] = []
        other = 0
        for n, record in enumerate(records):
            if record.get("baseline_hash") != wanted:
                other += 1
                continue
            try:
                counts = row(record, layout)
                start, end = int(record["window_start"]), int(record["window_end"])
                seen = int(record.get("observations", 0))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append((n, str(exc) if isinstance(exc, ValueError) else "a window field"))
                continue
            key = tuple(_text(record.get(field)) for field in GROUP)
            starts.append(start)
            ends.append(end)
            groups.append(index.setdefault(key, len(index)))
            instances.append(_text(record.get("instance_id")))
            identity = record.get("window_id")
            ids.append(identity if isinstance(identity, str) else None)
            observations.append(seen)
            rows.append(counts)
        width = layout[-1].stop
        table = cls(
            baseline,
            np.array(starts, dtype=np.int64),
            np.array(ends, dtype=np.int64),
            np.array(groups, dtype=np.int64),
            list(index),
            instances,
            np.array(observations, dtype=np.int64),
            np.array(rows, dtype=np.int64).reshape(len(rows), width),
            other,
            ids if any(i is not None for i in ids) else None,
        )
        return table, problems

    def take(self, rows: npt.NDArray[Any]) -> WindowTable:
        """The windows at ``rows`` (indexes or a mask), in that order."""
        picked = np.arange(len(self))[rows]
        return WindowTable(
            self.baseline,
            self.start_ns[picked],
            self.end_ns[picked],
            self.group[picked],
            self.groups,
            [self.instance[i] for i in picked.tolist()],
            self.observations[picked],
            self.counts[picked],
            self.other,
            None if self.ids is None else [self.ids[i] for i in picked.tolist()],
        )

    def within(self, since_ns: int | None = None, function: str | None = None) -> WindowTable:
        """The windows ending after ``since_ns``, of ``function`` only when given."""
        keep = np.ones(len(self), dtype=bool)
        if since_ns is not None:
            keep &= self.end_ns > since_ns
        if function is not None:
            wanted = [n for n, group in enumerate(self.groups) if group[0] == function]
            keep &= np.isin(self.group, wanted)
        return self if keep.all() else self.take(keep)

    @classmethod
    def concat(cls, baseline: Baseline, tables: list[WindowTable]) -> WindowTable:
        """One table of several sources' windows, their groups matched by value."""
        if not tables:
            return cls.empty(baseline)
        if len(tables) == 1:  # one source, the usual case: no copy of its matrix
            return tables[0]
        index: dict[Group, int] = {}
        remapped = []
        for table in tables:
            mapping = np.array(
                [index.setdefault(g, len(index)) for g in table.groups], dtype=np.int64
            )
            remapped.append(mapping[table.group] if len(table.groups) else table.group)
        return cls(
            baseline,
            np.concatenate([t.start_ns for t in tables]),
            np.concatenate([t.end_ns for t in tables]),
            np.concatenate(remapped),
            list(index),
            [i for t in tables for i in t.instance],
            np.concatenate([t.observations for t in tables]),
            np.concatenate([t.counts for t in tables]),
            sum(t.other for t in tables),
            None
            if all(t.ids is None for t in tables)
            else [i for t in tables for i in (t.ids or [None] * len(t))],
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
