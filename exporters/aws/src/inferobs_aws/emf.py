"""CloudWatch metrics from the record's own line, in the Embedded Metric Format.

CloudWatch Logs already ingests each invocation's JSON line; with an ``_aws``
member naming which of the line's members are metrics, it also extracts them
as CloudWatch metrics, with no API call on the handler's path and no second
line. This exporter is a *rider* (`inferobs.export.lines.Rider`): it gives
the line its members, and the line exporter writes one line as before.

What it adds to a line (names from `inferobs.export.metrics`, docs/metrics.md):
the counters (``invocations``, ``coldstarts``, ``errors``, ``timeouts``), one
``stage.<name>_ms`` per stage (a dimension takes one value per document, so
a stage is a metric of its own), ``input_bytes``; ``duration_ms``,
``init_ms`` and ``max_rss_mb`` are the record's own members, named as
metrics without being written twice. A drift window line gets each column's
``drift.psi.<column>``.

Dimensions are chosen from the record's fields of bounded cardinality
(``function``, ``model``, ... never request ids), checked when the exporter
is made, so a misconfiguration is an error at configure time, not metrics
lost later. A record without a dimension's field (no model set), or whose
value CloudWatch would refuse (not ASCII, empty, over 1,024 characters),
leaves that key out of its sets, so its metrics still arrive; a refused value
is counted as a fault. More than 100 metrics on a line are split into
directives of at most 100 each, in the same document; nothing is dropped
unless its name is longer than CloudWatch allows, and that is a fault.

The directive part of ``_aws`` depends only on which dimensions and metrics
a line has, so it is encoded once per such shape (with the names of the
members to add) and only the timestamp and the values are written per line.
"""

from __future__ import annotations

import os
import re
from json.encoder import encode_basestring_ascii as _quote

from inferobs.config import ConfigError
from inferobs.context import fault
from inferobs.export.lines import encode
from inferobs.export.metrics import invocation_points, window_points

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    # how a shape of line is written: the _aws member's start, what follows its timestamp
    # (a %-template for the values), which points fill it, and whether a dimension
    # value was refused
    _Shape = tuple[str, str, tuple[int, ...], bool]

__all__ = ["DIMENSION_FIELDS", "EMFExporter"]

# record fields a dimension may take: strings of bounded cardinality (no ids, no instances)
DIMENSION_FIELDS = (
    "function",
    "service",
    "version",
    "model",
    "model_version",
    "variant",
    "platform",
    "init_type",
)
MAX_METRICS = 100  # per directive (EMF specification)
MAX_DIMENSIONS = 30  # per dimension set
MAX_DIMENSION_VALUE = 1024
MAX_METRIC_NAME = 255  # CloudWatch's MetricName
MAX_NAMESPACE = 255
_NAMESPACE = re.compile(r"[A-Za-z0-9._#:/-]+")
_SHAPES_KEPT = 256  # directive encodings cached; more shapes than this start afresh

ENV_NAMESPACE = "INFEROBS_EMF_NAMESPACE"
ENV_DIMENSIONS = "INFEROBS_EMF_DIMENSIONS"
ENV_RESOLUTION = "INFEROBS_EMF_RESOLUTION"


class EMFExporter:
    """Adds CloudWatch Embedded Metric Format members to every record's line.

    ``namespace`` (default ``inferobs``), ``dimensions`` (dimension sets, each
    a list of record fields; default ``[["function", "model"]]``) and
    ``resolution`` (60, or 1 for high-resolution metrics) come from the
    arguments, else from ``INFEROBS_EMF_NAMESPACE``,
    ``INFEROBS_EMF_DIMENSIONS`` (sets separated by ``;``, fields by ``,``:
    ``function,model;function``) and ``INFEROBS_EMF_RESOLUTION``.
    """

    def __init__(
        self,
        namespace: str | None = None,
        dimensions: Sequence[Sequence[str]] | None = None,
        resolution: int | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.namespace = _check_namespace(
            namespace if namespace is not None else env.get(ENV_NAMESPACE, "inferobs")
        )
        if dimensions is None:
            text = env.get(ENV_DIMENSIONS)
            dimensions = _parse_dimensions(text) if text is not None else [["function", "model"]]
        self.dimensions = _check_dimensions(dimensions)
        if resolution is None:
            resolution = _parse_resolution(env.get(ENV_RESOLUTION, "60"))
        if resolution not in (1, 60):
            raise ConfigError(f"EMF resolution={resolution!r}: expected 60, or 1 (high resolution)")
        self.resolution = resolution
        self._keys = tuple(dict.fromkeys(key for keys in self.dimensions for key in keys))
        self._shapes: dict[tuple[Any, ...], _Shape] = {}

    @classmethod
    def check(cls) -> None:
        """Check the settings in the environment (at configure time, before any request)."""
        cls()

    def line_members(self, record: Mapping[str, Any]) -> str:
        kind = record.get("kind")
        if kind == "warmup":
            return ""  # nobody's request: no metrics (`invocation_points` gives none)
        stages = record.get("stages") or {}
        summary = record.get("input")
        size = summary.get("nbytes") if summary else None
        sized = size.__class__ is int
        key = (
            tuple(map(record.get, self._keys)),
            tuple(stages),
            "init_ms" in record,
            "max_rss_mb" in record,
            sized,
        )
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._new_shape(key, record, invocation_points(record))
        head, template, _, refused = shape
        if refused:
            fault("emf_dimension", "a dimension value CloudWatch refuses was left out")
        # the values of the members the line lacks, in the table's order: coldstarts,
        # errors, timeouts, the stages, input_bytes (tests hold this to invocation_points)
        values = (
            1 if record.get("cold_start") else 0,
            1 if record.get("status") == "error" else 0,
            1 if kind == "timeout" else 0,
            *stages.values(),
        )
        if sized:
            values += (size,)
        return f"{head}{record['start'] // 1_000_000}{template % values}"

    def window_members(self, window: Mapping[str, Any]) -> str:
        points = window_points(window)
        if not points:
            return ""
        key = (tuple(map(window.get, self._keys)), tuple(p[0] for p in points))
        return self._write(key, window, points, window["window_start"])

    def _write(
        self,
        key: tuple[Any, ...],
        line: Mapping[str, Any],
        points: list[tuple[str, str, float]],
        start_ns: int,
    ) -> str:
        """The members for a line of ``key``'s shape: the ``_aws`` member, encoded once
        per shape but for its timestamp, then the values the line does not hold yet."""
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._new_shape(key, line, points)
        head, template, places, refused = shape
        if refused:
            fault("emf_dimension", "a dimension value CloudWatch refuses was left out")
        if not head:
            return ""
        values = tuple([points[place][2] for place in places])
        return f"{head}{start_ns // 1_000_000}{template % values}"

    def _new_shape(
        self, key: tuple[Any, ...], line: Mapping[str, Any], points: list[tuple[str, str, float]]
    ) -> _Shape:
        shape = self._shape(line, points)
        if len(self._shapes) >= _SHAPES_KEPT:
            self._shapes.clear()
        self._shapes[key] = shape
        return shape

    def _shape(self, line: Mapping[str, Any], points: list[tuple[str, str, float]]) -> _Shape:
        sets = []
        refused = False
        for dimension_set in self.dimensions:
            kept = []
            for key in dimension_set:
                value = line.get(key)
                if value is None:
                    continue
                if _usable(value):
                    kept.append(key)
                else:
                    refused = True
            if kept not in sets:
                sets.append(kept)
        definitions = []
        places = []
        members = []
        for place, (name, unit, _) in enumerate(points):
            if len(name) > MAX_METRIC_NAME:
                fault("emf_metric", f"a metric name is over {MAX_METRIC_NAME} characters: not sent")
                continue
            definition: dict[str, Any] = {"Name": name, "Unit": unit}
            if self.resolution == 1:
                definition["StorageResolution"] = 1
            definitions.append(definition)
            if name == "invocations":  # always 1: written into the template
                members.append(f",{_quote(name)}:1")
            elif name not in line:  # duration_ms and the like are the line's own members
                places.append(place)
                members.append(f",{_quote(name).replace('%', '%%')}:%r")
        if not definitions:
            return "", "", (), refused
        directives = [
            {
                "Namespace": self.namespace,
                "Dimensions": sets,
                "Metrics": definitions[at : at + MAX_METRICS],
            }
            for at in range(0, len(definitions), MAX_METRICS)
        ]
        template = ',"CloudWatchMetrics":' + encode(directives).replace("%", "%%") + "}"  # type: ignore[arg-type]
        return '"_aws":{"Timestamp":', template + "".join(members), tuple(places), refused


def _usable(value: object) -> bool:
    """Whether CloudWatch takes ``value`` as a dimension value."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_DIMENSION_VALUE
        and value.isascii()
        and value.isprintable()
        and not value.isspace()
    )


def _check_namespace(namespace: object) -> str:
    if (
        not isinstance(namespace, str)
        or not 0 < len(namespace) <= MAX_NAMESPACE
        or not _NAMESPACE.fullmatch(namespace)
        or namespace.startswith(("AWS/", ":"))
    ):
        raise ConfigError(
            f"EMF namespace={namespace!r}: expected 1-{MAX_NAMESPACE} characters of "
            "A-Z a-z 0-9 . _ # : / -, not starting with AWS/ (reserved) or ':'"
        )
    return namespace


def _parse_dimensions(text: str) -> list[list[str]]:
    sets = [[key.strip() for key in part.split(",")] for part in text.split(";")]
    if any(not key for dimension_set in sets for key in dimension_set):
        raise ConfigError(
            f"{ENV_DIMENSIONS}={text!r}: expected dimension sets separated by ';', "
            "fields by ',' (function,model;function)"
        )
    return sets


def _check_dimensions(dimensions: Iterable[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    sets = []
    for dimension_set in dimensions:
        if isinstance(dimension_set, str):
            raise ConfigError(f"EMF dimensions: {dimension_set!r} is a set's name, not a set")
        keys = tuple(dimension_set)
        for key in keys:
            if key not in DIMENSION_FIELDS:
                raise ConfigError(
                    f"EMF dimensions: {key!r} cannot be a dimension; expected one of "
                    f"{', '.join(DIMENSION_FIELDS)} (ids and instances would make a "
                    "metric per request or environment)"
                )
        if len(set(keys)) != len(keys):
            raise ConfigError(f"EMF dimensions: {list(keys)} names a field twice")
        if len(keys) > MAX_DIMENSIONS:
            raise ConfigError(f"EMF dimensions: a set holds at most {MAX_DIMENSIONS} fields")
        sets.append(keys)
    if not sets:
        raise ConfigError("EMF dimensions: expected at least one dimension set")
    return tuple(sets)


def _parse_resolution(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"{ENV_RESOLUTION}={text!r}: expected 60, or 1 (high resolution)"
        ) from None
