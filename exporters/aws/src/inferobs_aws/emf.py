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
a line has, so it is encoded once per such shape and reused.
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
        self._shapes: dict[tuple[Any, ...], str] = {}

    @classmethod
    def check(cls) -> None:
        """Check the settings in the environment (at configure time, before any request)."""
        cls()

    def line_members(self, record: Mapping[str, Any]) -> str:
        return self._members(record, invocation_points(record), record["start"])

    def window_members(self, window: Mapping[str, Any]) -> str:
        return self._members(window, window_points(window), window["window_start"])

    def _members(
        self, line: Mapping[str, Any], points: list[tuple[str, str, float]], start_ns: int
    ) -> str:
        if not points:
            return ""
        sets = self._sets_for(line)
        names = tuple((name, unit) for name, unit, _ in points)
        key = (sets, names)
        directives = self._shapes.get(key)
        if directives is None:
            directives = self._directives(sets, names)
            if len(self._shapes) >= _SHAPES_KEPT:
                self._shapes.clear()
            self._shapes[key] = directives
        if not directives:
            return ""
        parts = [f'"_aws":{{"Timestamp":{start_ns // 1_000_000},"CloudWatchMetrics":{directives}}}']
        for name, _, value in points:
            if name not in line and len(name) <= MAX_METRIC_NAME:
                parts.append(f"{_quote(name)}:{value!r}")
        return ",".join(parts)

    def _sets_for(self, line: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
        """The configured sets, keeping the keys this line has a usable value for."""
        out: list[tuple[str, ...]] = []
        for dimension_set in self.dimensions:
            kept = tuple(key for key in dimension_set if _usable(key, line.get(key)))
            if kept not in out:
                out.append(kept)
        return tuple(out)

    def _directives(
        self, sets: tuple[tuple[str, ...], ...], names: tuple[tuple[str, str], ...]
    ) -> str:
        definitions = []
        for name, unit in names:
            if len(name) > MAX_METRIC_NAME:
                fault("emf_metric", f"a metric name is over {MAX_METRIC_NAME} characters: not sent")
                continue
            definition: dict[str, Any] = {"Name": name, "Unit": unit}
            if self.resolution == 1:
                definition["StorageResolution"] = 1
            definitions.append(definition)
        directives = [
            {
                "Namespace": self.namespace,
                "Dimensions": [list(s) for s in sets],
                "Metrics": definitions[at : at + MAX_METRICS],
            }
            for at in range(0, len(definitions), MAX_METRICS)
        ]
        return encode(directives) if directives else ""  # type: ignore[arg-type]


def _usable(key: str, value: object) -> bool:
    if value is None:
        return False
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_DIMENSION_VALUE
        and value.isascii()
        and value.isprintable()
        and not value.isspace()
    ):
        return True
    fault("emf_dimension", f"a {key} value CloudWatch refuses as a dimension: left out")
    return False


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
