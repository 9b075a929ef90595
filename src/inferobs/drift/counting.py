"""Counting predictions and features into a baseline's bins, per clock-aligned window.

This runs in the handler, once per observation, so it is the standard
library only (bisect into the bins: O(log bins) a value, nothing allocated for
a scalar or a dict row) and never raises: a value that is missing (None, NaN,
infinite) or unusable (text where a number belongs, a vector of the wrong
length) is counted in its own bucket, so what the model was given stays
visible instead of breaking it. A finite Python float, what JSON and
``ndarray.tolist()`` give, is binned in the loop over the row itself, without
a call per value: that keeps a 10-class vector and 20 features within the
handler's budget (docs/benchmarks.md); anything else goes through the column's
``add``, which gives the same bin.

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
from bisect import bisect_left

from ..config import parse_window
from .baseline import Baseline, Categorical, ClassScores, Column, Numeric, label

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    # a feature column as a row is counted: its counts, its edges (None unless numeric),
    # its add; and in a plan, led by its key in the row (a name, or a place)
    _Column = tuple[list[int], list[float] | None, Callable[[Any], None]]
    _Plan = list[tuple[Any, list[int], list[float] | None, Callable[[Any], None]]]

__all__ = ["DRIFT_EVENT", "DRIFT_SCHEMA", "DriftWindows", "parse_window"]

DRIFT_EVENT = "inferobs.drift_window"
DRIFT_SCHEMA = 1


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
    __slots__ = ("bins", "invalid", "label", "label_of", "scores", "width")

    def __init__(self, spec: ClassScores) -> None:
        self.width = len(spec.classes)
        self.scores = [_Numeric(s) for s in spec.scores]
        self.label = _Categorical(spec.label)
        # per class: its score's counts, edges and missing bucket; the label's bucket
        self.bins = [(s.counts, s.edges, s.missing) for s in self.scores]
        self.label_of = [self.label.index.get(label(c), self.label.other) for c in spec.classes]
        self.invalid = 0

    def add(self, vector: Any) -> None:
        try:
            values = list(map(float, vector))
        except (TypeError, ValueError, OverflowError):
            self.invalid += 1
            return
        if len(values) != self.width:
            self.invalid += 1
            return
        finite = True
        for (counts, edges, missing), x in zip(self.bins, values, strict=True):
            if x - x == 0.0:  # finite: infinities and NaN give NaN
                counts[bisect_left(edges, x)] += 1
            else:
                counts[missing] += 1
                finite = False
        label_counts = self.label.counts
        if finite:
            label_counts[self.label_of[values.index(max(values))]] += 1
        else:
            label_counts[self.label.missing] += 1

    def export(self) -> dict[str, Any]:
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
    """One window's counters, made when its first observation comes."""

    __slots__ = ("by_index", "by_name", "features", "index", "observations", "prediction")

    def __init__(self, baseline: Baseline, index: int) -> None:
        self.index = index
        self.prediction = _counter(baseline.prediction[1])
        self.features = {name: _counter(spec) for name, spec in baseline.features.items()}
        columns = [_column(counter) for counter in self.features.values()]
        # the same columns, looked up in a dict row by name and in a list row by place
        self.by_name: _Plan = [(name, *c) for name, c in zip(self.features, columns, strict=True)]
        self.by_index: _Plan = [(n, *c) for n, c in enumerate(columns)]
        self.observations = 0


def _plain(value: Any) -> Any:
    """A numpy array, pandas Series or DataFrame as lists (a frame as its rows); else as is."""
    if value.__class__ is list:
        return value
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # a DataFrame: its rows
        return value.to_numpy().tolist()
    return value.tolist() if hasattr(value, "tolist") else value


def _vector(value: Any) -> bool:
    """Whether an item of a batch is itself a row or vector (a list, a tuple, an array)."""
    return isinstance(value, (list, tuple)) or (
        hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1
    )


def _column(counter: _Numeric | _Categorical | _ClassScores) -> _Column:
    if isinstance(counter, _Numeric):
        return counter.counts, counter.edges, counter.add
    return [], None, counter.add  # counted by its add only


def _count_row(get: Callable[[Any], Any], plan: _Plan) -> None:
    """One row's values (``get`` of each column's key) into their columns."""
    for key, counts, edges, add in plan:
        value = get(key)
        if edges is not None and value.__class__ is float and value - value == 0.0:
            counts[bisect_left(edges, value)] += 1  # a finite float: _Numeric.add, inline
        else:
            add(value)


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

    def _window(self) -> _Window:
        index = int(self._clock() // self.window_s)
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

    def observe_prediction(self, prediction: Any) -> int:
        """Count one prediction, or a batch of them; how many were counted."""
        window = self._window()
        counter = window.prediction
        one = self._vectors and prediction.__class__ is list and prediction
        if one and not _vector(prediction[0]):
            counter.add(prediction)  # one probability vector: no batch to unpack
            window.observations += 1
            return 1
        rows = self._prediction_rows(prediction)
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

    def observe_features(self, features: Any) -> int:
        """Count one row (a dict, a pandas row, a 1-D array in the baseline's feature
        order) or a batch (a DataFrame, a 2-D array, a list of rows); how many rows."""
        window = self._window()
        if features.__class__ is dict:  # one row, by name: straight to its columns
            _count_row(features.get, window.by_name)
            window.observations += 1
            return 1
        rows = self._feature_rows(features)
        width = len(self._names)
        for row in rows:
            if isinstance(row, dict):
                _count_row(row.get, window.by_name)
            else:
                values = row if isinstance(row, (list, tuple)) else [row]
                if len(values) != width:
                    values = [None] * width  # no column lines up: all missing
                _count_row(values.__getitem__, window.by_index)
        window.observations += len(rows)
        return len(rows)

    def _feature_rows(self, features: Any) -> list[Any]:
        if isinstance(features, dict):
            return [features]
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
