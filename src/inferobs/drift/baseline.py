"""What a model's live inputs and predictions are compared with: bins, and what filled them.

A baseline is built once from training or validation data and shipped with
the model. Each instance counts what it sees into these bins; the analyzer
merges the counts of every instance and window before comparing them with the
baseline's proportions, so the bins are the contract between the two: a
window counted against one baseline is only ever compared with that baseline
(`Baseline.hash`).

- numeric columns: quantile edges, right-closed bins, the first and last
  open-ended; each bin keeps the reference's mean within it (the value a
  distance such as Wasserstein gives the bin) and the column its summary;
- categorical columns and class labels: the reference's categories and
  frequencies, and an "other" bucket for what the reference never had;
- classifier probability vectors: score bins per class, and the distribution
  of the argmax label.

Stored as JSON with a schema version and the hash of the data it came from;
never pickled. A baseline that is malformed, or newer than this reader, is a
`BaselineError` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..record import check_schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BASELINE_SCHEMA",
    "Baseline",
    "BaselineError",
    "Categorical",
    "ClassScores",
    "Numeric",
]

BASELINE_SCHEMA = 1
OTHER = "__other__"  # the bucket of categories the reference never had
# an integer column with at most this many distinct values is taken as labels
_MOST_LABELS = 20


class BaselineError(ValueError):
    """A baseline that cannot be built or read; the message names the field."""


@dataclass(frozen=True)
class Numeric:
    """Right-closed bins between ``edges``; the first and last are open-ended."""

    edges: tuple[float, ...]  # len(bins) - 1 inner edges, increasing
    proportions: tuple[float, ...]  # of the reference's finite values, per bin
    values: tuple[float, ...]  # the reference's mean within each bin
    count: int
    mean: float
    std: float
    minimum: float
    maximum: float
    missing: float  # share of the reference that was NaN, infinite or None

    kind = "numeric"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "proportions": list(self.proportions),
            "values": list(self.values),
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Numeric:
        edges = _numbers(data, "edges", where)
        proportions = _numbers(data, "proportions", where)
        values = _numbers(data, "values", where)
        if any(b <= a for a, b in pairwise(edges)):
            raise BaselineError(f"{where}.edges: not increasing")
        if len(proportions) != len(edges) + 1 or len(values) != len(proportions):
            raise BaselineError(
                f"{where}: {len(edges)} edges need {len(edges) + 1} proportions and values, "
                f"not {len(proportions)} and {len(values)}"
            )
        _check_shares(proportions, f"{where}.proportions")
        return cls(
            edges=tuple(edges),
            proportions=tuple(proportions),
            values=tuple(values),
            count=int(_number(data, "count", where)),
            mean=_number(data, "mean", where),
            std=_number(data, "std", where),
            minimum=_number(data, "min", where),
            maximum=_number(data, "max", where),
            missing=_number(data, "missing", where),
        )

    @classmethod
    def build(cls, values: npt.NDArray[Any], bins: int) -> Numeric:
        import numpy as np

        numbers = np.asarray(values, dtype=np.float64)
        finite = numbers[np.isfinite(numbers)]
        if not len(finite):
            raise BaselineError("no finite value to bin")
        quantiles = np.quantile(finite, np.arange(1, bins) / bins)
        edges = np.unique(quantiles)  # ties (a value most rows share) merge bins
        index = np.searchsorted(edges, finite, side="left")
        counts = np.bincount(index, minlength=len(edges) + 1)
        sums = np.bincount(index, weights=finite, minlength=len(edges) + 1)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        return cls(
            edges=tuple(float(e) for e in edges),
            proportions=tuple(float(c) for c in counts / len(finite)),
            values=tuple(float(m) for m in means),
            count=len(numbers),
            mean=float(finite.mean()),
            std=float(finite.std()),
            minimum=float(finite.min()),
            maximum=float(finite.max()),
            missing=float(1 - len(finite) / len(numbers)),
        )


@dataclass(frozen=True)
class Categorical:
    """The reference's categories, and the share of each; unseen ones count as ``OTHER``."""

    categories: tuple[str, ...]
    proportions: tuple[float, ...]  # one per category, then OTHER's (0 in the reference)
    count: int

    kind = "categorical"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "proportions": list(self.proportions),
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Categorical:
        categories = data.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise BaselineError(f"{where}.categories: expected a list of strings")
        if len(set(categories)) != len(categories):
            raise BaselineError(f"{where}.categories: a category is listed twice")
        proportions = _numbers(data, "proportions", where)
        if len(proportions) != len(categories) + 1:
            raise BaselineError(
                f"{where}.proportions: expected {len(categories) + 1} (the categories, then "
                f"{OTHER}), not {len(proportions)}"
            )
        _check_shares(proportions, f"{where}.proportions")
        return cls(tuple(categories), tuple(proportions), int(_number(data, "count", where)))

    @classmethod
    def build(cls, values: Sequence[Any]) -> Categorical:
        seen: dict[str, int] = {}
        for value in values:
            key = label(value)
            seen[key] = seen.get(key, 0) + 1
        if not seen:
            raise BaselineError("no value to count")
        total = sum(seen.values())
        categories = tuple(sorted(seen))
        shares = (*(seen[c] / total for c in categories), 0.0)
        return cls(categories, shares, total)


@dataclass(frozen=True)
class ClassScores:
    """A classifier's probability vector: each class's score bins, and the argmax label."""

    classes: tuple[str, ...]
    scores: tuple[Numeric, ...]
    label: Categorical

    kind = "probabilities"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "scores": [s.to_dict() for s in self.scores],
            "label": self.label.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> ClassScores:
        classes = data.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise BaselineError(f"{where}.classes: expected a list of at least two class names")
        scores = data.get("scores")
        if not isinstance(scores, list) or len(scores) != len(classes):
            raise BaselineError(f"{where}.scores: expected one score histogram per class")
        label_data = data.get("label")
        if not isinstance(label_data, Mapping):
            raise BaselineError(f"{where}.label: expected the argmax label's frequencies")
        return cls(
            tuple(str(c) for c in classes),
            tuple(
                Numeric.from_dict(_table(s, f"{where}.scores[{n}]"), f"{where}.scores[{n}]")
                for n, s in enumerate(scores)
            ),
            Categorical.from_dict(label_data, f"{where}.label"),
        )

    @classmethod
    def build(
        cls, vectors: npt.NDArray[Any], bins: int, classes: Sequence[str] | None
    ) -> ClassScores:
        import numpy as np

        matrix = np.asarray(vectors, dtype=np.float64)
        width = matrix.shape[1]
        names = tuple(classes) if classes else tuple(str(k) for k in range(width))
        if len(names) != width:
            raise BaselineError(f"{len(names)} class names for vectors of {width} scores")
        finite = np.isfinite(matrix).all(axis=1)
        labels = [names[k] for k in np.argmax(matrix[finite], axis=1)]
        return cls(
            names,
            tuple(Numeric.build(matrix[:, k], bins) for k in range(width)),
            Categorical.build(labels),
        )


Column = Numeric | Categorical | ClassScores
_KINDS: dict[str, Any] = {
    "numeric": Numeric,
    "categorical": Categorical,
    "probabilities": ClassScores,
}


@dataclass(frozen=True)
class Baseline:
    """The prediction's and each chosen feature's reference distribution."""

    prediction: tuple[str, Column]
    features: dict[str, Column]
    source_hash: str  # of the data it was built from
    schema: int = BASELINE_SCHEMA

    @property
    def hash(self) -> str:
        """Of the bins themselves: windows counted against other bins never merge with these."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        name, column = self.prediction
        return {
            "schema": self.schema,
            "source_hash": self.source_hash,
            "prediction": {"name": name, **column.to_dict()},
            "features": {key: column.to_dict() for key, column in self.features.items()},
        }

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=1, allow_nan=False)
            out.write("\n")

    @classmethod
    def load(cls, path: str) -> Baseline:
        """Read a baseline file; `BaselineError` names the file and the field when it is wrong."""
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as exc:
            raise BaselineError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{path}: not a JSON baseline ({exc})") from None
        except RecursionError:
            raise BaselineError(f"{path}: not a JSON baseline (nested too deeply)") from None
        try:
            return cls.from_dict(data)
        except BaselineError as exc:
            raise BaselineError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Baseline:
        if not isinstance(data, Mapping):
            raise BaselineError("expected a JSON object")
        schema = check_schema(data.get("schema"), BASELINE_SCHEMA, BaselineError)
        source = data.get("source_hash")
        if not isinstance(source, str):
            raise BaselineError("source_hash: expected a string")
        prediction = _table(data.get("prediction"), "prediction")
        name = prediction.get("name")
        if not isinstance(name, str):
            raise BaselineError("prediction.name: expected the prediction column's name")
        features = _table(data.get("features", {}), "features")
        return cls(
            prediction=(name, _column(prediction, "prediction")),
            features={
                str(key): _column(_table(value, f"features.{key}"), f"features.{key}")
                for key, value in features.items()
            },
            source_hash=source,
            schema=schema,
        )

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        prediction: str,
        features: Sequence[str] = (),
        bins: int = 10,
        categorical: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        source_hash: str | None = None,
    ) -> Baseline:
        """Build from a pandas DataFrame, a pyarrow Table or a mapping of column arrays.

        A prediction column of equal-length vectors is a classifier's
        probabilities (``classes`` names them); columns of text, booleans or
        at most twenty distinct integers are categorical, and ``categorical``
        makes any other column so.
        """
        if not 2 <= bins <= 1000:
            raise BaselineError(f"bins={bins}: expected 2 to 1000")
        columns = _columns(frame)
        missing = [c for c in (prediction, *features) if c not in columns]
        if missing:
            raise BaselineError(
                f"no column {', '.join(repr(m) for m in missing)} "
                f"(the data has {', '.join(sorted(columns)) or 'none'})"
            )
        built: dict[str, Column] = {}
        for name in (prediction, *features):
            try:
                built[name] = _build(columns[name], bins, name in categorical, classes)
            except BaselineError as exc:
                raise BaselineError(f"column {name!r}: {exc}") from None
        return cls(
            prediction=(prediction, built[prediction]),
            features={name: built[name] for name in features},
            source_hash=source_hash or _hash_columns(columns, (prediction, *features)),
        )


def label(value: Any) -> str:
    """A category's name as a baseline keys it: text as is, anything else by its repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _build(values: Any, bins: int, categorical: bool, classes: Sequence[str] | None) -> Column:
    import numpy as np

    array = np.asarray(values, dtype=object) if _has_vectors(values) else np.asarray(values)
    if array.dtype == object and len(array) and _has_vectors(array):
        lengths = {len(v) for v in array if v is not None}
        if len(lengths) != 1:
            raise BaselineError(f"probability vectors of different lengths ({sorted(lengths)})")
        width = lengths.pop()
        matrix = np.array(
            [v if v is not None else [math.nan] * width for v in array], dtype=np.float64
        )
        return ClassScores.build(matrix, bins, classes)
    if array.ndim == 2:
        return ClassScores.build(array, bins, classes)
    if categorical or array.dtype.kind in "OUSb" or _few_integers(array):
        return Categorical.build([v for v in array.tolist() if v is not None])
    return Numeric.build(array, bins)


def _has_vectors(values: Any) -> bool:
    for value in values:
        if value is None:
            continue
        return isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) == 1
    return False


def _few_integers(array: npt.NDArray[Any]) -> bool:
    import numpy as np

    return array.dtype.kind in "iu" and len(np.unique(array)) <= _MOST_LABELS


def _columns(frame: Any) -> dict[str, Any]:
    """Column name -> values, for a pandas DataFrame, a pyarrow Table or a mapping."""
    if hasattr(frame, "column_names") and hasattr(frame, "column"):  # pyarrow
        return {name: frame.column(name).to_pylist() for name in frame.column_names}
    if (
        hasattr(frame, "columns")
        and hasattr(frame, "__getitem__")
        and not isinstance(frame, Mapping)
    ):
        return {str(name): frame[name].to_numpy() for name in frame.columns}  # pandas
    if isinstance(frame, Mapping):
        return {str(name): values for name, values in frame.items()}
    raise BaselineError(
        f"expected a pandas DataFrame, a pyarrow Table or a mapping of columns, "
        f"not {type(frame).__name__}"
    )


def _hash_columns(columns: Mapping[str, Any], names: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update(repr(list(columns[name])).encode())
    return digest.hexdigest()


def _column(data: Mapping[str, Any], where: str) -> Column:
    kind = data.get("kind")
    if kind not in _KINDS:
        raise BaselineError(f"{where}.kind={kind!r}: expected one of {', '.join(_KINDS)}")
    column: Column = _KINDS[kind].from_dict(data, where)
    return column


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BaselineError(f"{where}: expected a JSON object")
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BaselineError(f"{where}.{key}={value!r}: expected a finite number")
    return float(value)


def _numbers(data: Mapping[str, Any], key: str, where: str) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list):
        raise BaselineError(f"{where}.{key}: expected a list of numbers")
    out = []
    for n, value in enumerate(values):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise BaselineError(f"{where}.{key}[{n}]={value!r}: expected a finite number")
        out.append(float(value))
    return out


def _check_shares(shares: list[float], where: str) -> None:
    if any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise BaselineError(f"{where}: expected shares of 1 (non-negative, summing to 1)")
