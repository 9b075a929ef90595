"""Counting predictions and features into a baseline's bins, per clock-aligned window.

This runs in the handler, so it is the standard library only and never
raises: a value that is missing (None, NaN, infinite) or unusable (text where
a number belongs, a vector of the wrong length) is counted in its own bucket,
so what the model was given stays visible instead of breaking it.

A row (or vector) of finite numbers, what JSON and ``ndarray.tolist()`` give,
is not binned value by value: it is appended to a block, and a full block is
binned a column at a time, by sorting the column and placing the bin edges in
it. A bisect per value costs about three times as much on CPython, and this is
what keeps a 10-class vector and 20 features within the handler's budget
(docs/benchmarks.md). Both give the same bin: a value ``x`` falls in bin ``i``
when ``edges[i-1] < x <= edges[i]`` (an integer in a row of floats is compared
exactly, which differs from rounding it first only past 2**53). A row with
anything else in it is counted value by value through the column's ``add``.
Blocks are binned before a window is exported, so a record never misses a
value.

Each column's counts are one list: its bins, then its extra buckets

- numeric: bins..., ``missing``, ``invalid``;
- categorical: categories..., ``__other__``, ``missing``;
- class scores: per class ``scores`` (numeric lists), the argmax ``label``
  (a categorical list), and ``invalid`` vectors.

Windows are aligned to the clock (a 5-minute window starts at :00, :05, ...)
so the windows of every instance line up and merge exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

from ..config import parse_window
from .baseline import Baseline, Categorical, ClassScores, Column, Numeric, label

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    # the columns of a row counted one value at a time: each led by its key in the
    # row (a name, or a place)
    _Plan = list[tuple[Any, Callable[[Any], None]]]

__all__ = ["DRIFT_EVENT", "DRIFT_SCHEMA", "DriftWindows", "parse_window"]

DRIFT_EVENT = "inferobs.drift_window"
DRIFT_SCHEMA = 1
# rows a block holds before it is binned: sorting 64 values and placing ten edges in
# them is the cheapest per value (larger blocks sort longer, smaller ones pay the
# edges' lookups more often)
BLOCK_ROWS = 64


class _Numeric:
    __slots__ = ("counts", "edges", "invalid", "missing")

    def __init__(self, spec: Numeric) -> None:
        self.edges = list(spec.edges)
        bins = len(self.edges) + 1
        self.counts = [0] * (bins + 2)
        self.missing, self.invalid = bins, bins + 1

    def add(self, value: Any) -> None:
        if value is None:
            self.counts[self.missing] += 1
            return
        try:
            x = float(value)
        except (TypeError, ValueError, OverflowError):  # text; an integer past float's range
            self.counts[self.invalid] += 1
            return
        if not math.isfinite(x):
            self.counts[self.missing] += 1
        else:
            self.counts[bisect_left(self.edges, x)] += 1

    def export(self) -> list[int]:
        return list(self.counts)


def _finite(values: Sequence[Any]) -> bool:
    """Whether every value is a finite number, checked in one pass in C.

    Their sum is a finite float only when they are numbers, at least one is a
    float, none is NaN or infinite (either makes the sum NaN or infinite), and
    no integer is too large for a float (the sum raises). A sum that overflows
    from finite values says no, and the row is counted value by value.
    """
    try:
        total = sum(values)
    except Exception:  # text, None, an integer past float's range, a hostile object
        return False
    return isinstance(total, float) and total - total == 0.0


class _Block:
    """Rows of finite numbers for some numeric columns, waiting to be binned."""

    __slots__ = ("columns", "limit", "values")

    def __init__(self, columns: list[_Numeric]) -> None:
        self.columns = columns
        self.values: list[Any] = []  # row after row
        self.limit = max(1, len(columns)) * BLOCK_ROWS

    def add(self, row: Sequence[Any]) -> None:
        """A row checked by `_finite`, one value per column, in order."""
        values = self.values
        values.extend(row)
        if len(values) >= self.limit:
            self.bin()

    def bin(self) -> None:
        """Count what is waiting into the columns' bins, a column at a time."""
        values, width = self.values, len(self.columns)
        if not values:
            return
        for place, column in enumerate(self.columns):
            ordered = sorted(values[place::width])
            counts, below = column.counts, 0
            for bin_index, edge in enumerate(column.edges):
                upto = bisect_right(ordered, edge)  # values <= edge: this bin and those below
                counts[bin_index] += upto - below
                below = upto
            counts[len(column.edges)] += len(ordered) - below
        values.clear()


class _Categorical:
    __slots__ = ("counts", "index", "missing", "other")

    def __init__(self, spec: Categorical) -> None:
        self.index = {name: n for n, name in enumerate(spec.categories)}
        self.other = len(spec.categories)
        self.missing = self.other + 1
        self.counts = [0] * (self.other + 2)

    def add(self, value: Any) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.counts[self.missing] += 1
        else:
            self.counts[self.index.get(label(value), self.other)] += 1

    def export(self) -> list[int]:
        return list(self.counts)


class _ClassScores:
    __slots__ = ("block", "invalid", "label", "label_of", "scores", "width")

    def __init__(self, spec: ClassScores) -> None:
        self.width = len(spec.classes)
        self.scores = [_Numeric(s) for s in spec.scores]
        self.block = _Block(self.scores)
        self.label = _Categorical(spec.label)
        # per class, the label's bucket
        self.label_of = [self.label.index.get(label(c), self.label.other) for c in spec.classes]
        self.invalid = 0

    def add(self, vector: Any) -> None:
        label_counts = self.label.counts
        if vector.__class__ is list and len(vector) == self.width and _finite(vector):
            self.block.add(vector)  # numbers already: no copy converted to float
            label_counts[self.label_of[vector.index(max(vector))]] += 1
            return
        try:
            values = list(map(float, vector))
        except (TypeError, ValueError, OverflowError):
            self.invalid += 1
            return
        if len(values) != self.width:
            self.invalid += 1
            return
        if _finite(values):
            self.block.add(values)
            label_counts[self.label_of[values.index(max(values))]] += 1
            return
        for score, x in zip(self.scores, values, strict=True):
            score.add(x)  # a non-finite score is missing
        label_counts[self.label.missing] += 1

    def export(self) -> dict[str, Any]:
        self.block.bin()
        return {
            "scores": [s.export() for s in self.scores],
            "label": self.label.export(),
            "invalid": self.invalid,
        }


def _counter(spec: Column) -> _Numeric | _Categorical | _ClassScores:
    if isinstance(spec, Numeric):
        return _Numeric(spec)
    if isinstance(spec, Categorical):
        return _Categorical(spec)
    return _ClassScores(spec)


class _Window:
    """One window's counters, made when its first observation comes.

    The numeric feature columns take rows of finite numbers in a block; the
    others (and rows with anything else in them) are counted value by value.
    """

    __slots__ = (
        "block",
        "features",
        "index",
        "numeric_names",
        "numeric_places",
        "observations",
        "other_by_index",
        "other_by_name",
        "prediction",
        "scalars",
        "slow_by_index",
        "slow_by_name",
    )

    def __init__(self, baseline: Baseline, index: int) -> None:
        self.index = index
        self.prediction = _counter(baseline.prediction[1])
        # numeric predictions, a batch of finite numbers at a time
        self.scalars = _Block([self.prediction]) if isinstance(self.prediction, _Numeric) else None
        self.features = {name: _counter(spec) for name, spec in baseline.features.items()}
        numeric = {n: c for n, c in self.features.items() if isinstance(c, _Numeric)}
        self.block = _Block(list(numeric.values()))
        places = {name: n for n, name in enumerate(self.features)}
        self.numeric_names = list(numeric)
        self.numeric_places = [places[name] for name in numeric]
        # each column looked up in a dict row by name and in a list row by place: the
        # non-numeric ones, and all of them for a row that is not all finite numbers
        self.other_by_name: _Plan = [
            (name, c.add) for name, c in self.features.items() if name not in numeric
        ]
        self.other_by_index: _Plan = [(places[name], add) for name, add in self.other_by_name]
        self.slow_by_name: _Plan = [(name, c.add) for name, c in numeric.items()]
        self.slow_by_index: _Plan = [(places[name], add) for name, add in self.slow_by_name]
        self.observations = 0

    def count_row(self, get: Callable[[Any], Any], by_name: bool) -> None:
        """One row's values (``get`` of each column's name, or place) into their columns."""
        values = list(map(get, self.numeric_names if by_name else self.numeric_places))
        if _finite(values):
            self.block.add(values)
        else:
            _count_values(get, self.slow_by_name if by_name else self.slow_by_index)
        _count_values(get, self.other_by_name if by_name else self.other_by_index)

    def bin(self) -> None:
        """Bin the blocks still waiting, before the counts are read (class scores bin
        their own on export)."""
        self.block.bin()
        if self.scalars is not None:
            self.scalars.bin()


def _count_values(get: Callable[[Any], Any], plan: _Plan) -> None:
    for key, add in plan:
        add(get(key))


def _plain(value: Any) -> Any:
    """A numpy array, pandas Series or DataFrame as lists (a frame as its rows); else as is.

    A numpy array is known by its type's name, not by probing its attributes:
    each failed probe costs an exception, and this is the handler's path.
    """
    if value.__class__ is list:
        return value
    if value.__class__.__name__ == "ndarray":
        return value.tolist()
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # a DataFrame: its rows
        return value.to_numpy().tolist()
    return value.tolist() if hasattr(value, "tolist") else value


def _flat(value: Any) -> Any:
    """A 1-D numpy array as a list (the common single row or vector); else as is."""
    if value.__class__.__name__ == "ndarray" and value.ndim == 1:
        return value.tolist()
    return value


def _vector(value: Any) -> bool:
    """Whether an item of a batch is itself a row or vector (a list, a tuple, an array)."""
    if value.__class__ is float:
        return False
    return isinstance(value, (list, tuple)) or (
        hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1
    )


class DriftWindows:
    """Counts for the current window; closed windows come out as records, oldest first."""

    def __init__(
        self,
        baseline: Baseline,
        window_s: float,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.baseline = baseline
        self.hash = baseline.hash
        self.window_s = window_s
        self._clock = clock or time.time
        self._kind = baseline.prediction[1]
        self._vectors = isinstance(self._kind, ClassScores)  # a prediction is a vector
        self._names = list(baseline.features)
        self._open: _Window | None = None
        self._closed: list[dict[str, Any]] = []
        self.retired = False  # its owner dropped it: count elsewhere (`Monitor` sets it)

    def _window(self, at_s: float | None) -> _Window:
        index = int((self._clock() if at_s is None else at_s) // self.window_s)
        window = self._open
        if window is None or window.index != index:
            self._roll(index)
            window = self._open = _Window(self.baseline, index)
        return window

    def _roll(self, index: int) -> None:
        """Close the open window if the clock has left it."""
        window = self._open
        if window is not None and window.index != index:
            if window.observations:
                self._closed.append(self._record(window))
            self._open = None

    def observe_prediction(self, prediction: Any, at_s: float | None = None) -> int:
        """Count one prediction, or a batch of them, into the window of ``at_s`` (the
        clock's now by default); how many were counted."""
        window = self._window(at_s)
        counter = window.prediction
        prediction = _flat(prediction)
        one = self._vectors and prediction.__class__ is list and prediction
        if one and prediction[0].__class__ is float:
            counter.add(prediction)  # one probability vector: no batch to unpack
            window.observations += 1
            return 1
        rows = self._prediction_rows(prediction)
        if window.scalars is not None and _finite(rows):
            window.scalars.add(rows)
        else:
            for row in rows:
                counter.add(row)
        window.observations += len(rows)
        return len(rows)

    def _prediction_rows(self, prediction: Any) -> list[Any]:
        value = _plain(prediction)
        if self._vectors:
            # a vector is one prediction; a list of vectors (arrays too), a batch
            if isinstance(value, (list, tuple)) and value and _vector(value[0]):
                return [_plain(v) for v in value]
            return [value]
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]

    def observe_features(self, features: Any, at_s: float | None = None) -> int:
        """Count one row (a dict, a pandas row, a 1-D array in the baseline's feature
        order) or a batch (a DataFrame, a 2-D array, a list of rows) into the window
        of ``at_s``; how many rows."""
        window = self._window(at_s)
        if features.__class__ is dict:  # one row, by name: straight to its columns
            window.count_row(features.get, True)
            window.observations += 1
            return 1
        features = _flat(features)
        width = len(self._names)
        if features.__class__ is list and len(features) == width and features[0].__class__ is float:
            window.count_row(features.__getitem__, False)  # one row, in the baseline's order
            window.observations += 1
            return 1
        rows = self._feature_rows(features)
        for row in rows:
            if isinstance(row, dict):
                window.count_row(row.get, True)
            else:
                values = row if isinstance(row, (list, tuple)) else [row]
                if len(values) != width:
                    values = [None] * width  # no column lines up: all missing
                window.count_row(values.__getitem__, False)
        window.observations += len(rows)
        return len(rows)

    def _feature_rows(self, features: Any) -> list[Any]:
        if isinstance(features, dict):
            return [features]
        if features.__class__ is not list and features.__class__.__name__ != "ndarray":
            to_dict = getattr(features, "to_dict", None)
            if to_dict is not None and hasattr(features, "columns"):  # a pandas DataFrame
                records: list[Any] = to_dict("records")
                return records
            if to_dict is not None:  # a pandas Series: one row
                return [to_dict()]
        value = _plain(features)
        if (
            isinstance(value, (list, tuple))
            and value
            and (_vector(value[0]) or isinstance(value[0], dict))
        ):
            return [_plain(v) for v in value]
        return [value]

    @property
    def idle(self) -> bool:
        """No open window and none closed waiting to be taken: nothing held."""
        return self._open is None and not self._closed

    def take_closed(self, *, flush: bool = False) -> list[dict[str, Any]]:
        """The windows closed so far (and, with ``flush``, the open one), as records."""
        self._roll(int(self._clock() // self.window_s))
        if flush and self._open is not None:
            if self._open.observations:
                self._closed.append(self._record(self._open))
            self._open = None
        closed, self._closed = self._closed, []
        return closed

    def _record(self, window: _Window) -> dict[str, Any]:
        start_ns = int(window.index * self.window_s * 1e9)
        name = self.baseline.prediction[0]
        window.bin()
        return {
            "event": DRIFT_EVENT,
            "schema": DRIFT_SCHEMA,
            "window_start": start_ns,
            "window_end": start_ns + int(self.window_s * 1e9),
            "baseline_hash": self.hash,
            "observations": window.observations,
            "prediction": {name: window.prediction.export()},
            "features": {key: counter.export() for key, counter in window.features.items()},
        }
