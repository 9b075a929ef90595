"""Counting predictions and features into a baseline's bins, per clock-aligned window.

This runs in the handler, once per observation, so it is the standard
library only (bisect into the bins: O(log bins) a value, nothing allocated for
a scalar or a dict row) and never raises: a value that is missing (None, NaN,
infinite) or unusable (text where a number belongs, a vector of the wrong
length) is counted in its own bucket, so what the model was given stays
visible instead of breaking it.

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

from .baseline import Baseline, Categorical, ClassScores, Column, Numeric, label

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["DRIFT_EVENT", "DRIFT_SCHEMA", "DriftWindows", "parse_window"]

DRIFT_EVENT = "inferobs.drift_window"
DRIFT_SCHEMA = 1
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_window(text: str) -> float:
    """``30s``, ``5m``, ``1h`` as seconds; ValueError naming the text otherwise."""
    spec = str(text).strip().lower()
    try:
        amount, unit = float(spec[:-1]), _UNITS[spec[-1:]]
    except (ValueError, KeyError):
        raise ValueError(f"{text!r}: expected a window such as 30s, 5m or 1h") from None
    seconds = amount * unit
    if not math.isfinite(seconds) or seconds < 1 or seconds > 86_400:
        raise ValueError(f"{text!r}: a window is 1 second to 24 hours")
    return seconds


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
        except (TypeError, ValueError):
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
    __slots__ = ("classes", "invalid", "label", "scores", "width")

    def __init__(self, spec: ClassScores) -> None:
        self.classes = spec.classes
        self.width = len(spec.classes)
        self.scores = [_Numeric(s) for s in spec.scores]
        self.label = _Categorical(spec.label)
        self.invalid = 0

    def add(self, vector: Any) -> None:
        try:
            values = [float(v) for v in vector]
        except (TypeError, ValueError):
            self.invalid += 1
            return
        if len(values) != self.width:
            self.invalid += 1
            return
        for counter, value in zip(self.scores, values, strict=True):
            counter.add(value)
        if all(math.isfinite(v) for v in values):
            self.label.add(self.classes[values.index(max(values))])
        else:
            self.label.add(None)

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

    __slots__ = ("features", "index", "observations", "prediction")

    def __init__(self, baseline: Baseline, index: int) -> None:
        self.index = index
        self.prediction = _counter(baseline.prediction[1])
        self.features = {name: _counter(spec) for name, spec in baseline.features.items()}
        self.observations = 0


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
        self._names = list(baseline.features)
        self._open: _Window | None = None
        self._closed: list[dict[str, Any]] = []

    def _window(self) -> _Window:
        index = int(self._clock() // self.window_s)
        self._roll(index)
        if self._open is None:
            self._open = _Window(self.baseline, index)
        return self._open

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
        rows = self._prediction_rows(prediction)
        for row in rows:
            counter.add(row)
        window.observations += len(rows)
        return len(rows)

    def _prediction_rows(self, prediction: Any) -> list[Any]:
        value = prediction.tolist() if hasattr(prediction, "tolist") else prediction
        if isinstance(self._kind, ClassScores):
            # a vector is one prediction; a list of vectors, a batch
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
                return list(value)
            return [value]
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]

    def observe_features(self, features: Any) -> int:
        """Count one row (a dict, a pandas row, a 1-D array in the baseline's feature
        order) or a batch (a DataFrame, a 2-D array, a list of rows); how many rows."""
        window = self._window()
        rows = self._feature_rows(features)
        counters = window.features
        for row in rows:
            if isinstance(row, dict):
                for name in self._names:
                    counters[name].add(row.get(name))
            else:
                values = list(row) if isinstance(row, (list, tuple)) else [row]
                if len(values) != len(self._names):
                    values = [None] * len(self._names)  # no column lines up: all missing
                for name, value in zip(self._names, values, strict=True):
                    counters[name].add(value)
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
        value = features.tolist() if hasattr(features, "tolist") else features
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, dict)):
            return list(value)
        return [value]

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
