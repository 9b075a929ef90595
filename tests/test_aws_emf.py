"""CloudWatch EMF on the record's line: the specification's structure and limits, one line
per invocation, dimensions checked at configure time, and the real runtime's lines."""

from __future__ import annotations

import io
import json
from importlib.metadata import entry_points
from typing import Any

import jsonschema
import pytest

import inferobs as obs
from inferobs import export
from inferobs.context import faults_seen
from inferobs.local.lambda_process import LocalLambda
from inferobs.read import read
from inferobs_aws.emf import EMFExporter

from .conftest import LAMBDA_CODE

METRIC: dict[str, Any] = {
    "type": "object",
    "required": ["Name"],
    "additionalProperties": False,
    "properties": {
        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
        "Unit": {
            "type": "string",
            "pattern": "^(Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Count|"
            "Percent|None)$",
        },
        "StorageResolution": {"enum": [1, 60]},
    },
}
# The EMF specification's structure, as its JSON schema states it (CloudWatch user guide,
# "Specification: Embedded metric format"); the limits the schema cannot say are
# checked in `assert_emf`.
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "additionalProperties": False,
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "additionalProperties": False,
                        "properties": {
                            "Namespace": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 1024,
                            },
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {"type": "array", "maxItems": 100, "items": METRIC},
                        },
                    },
                },
            },
        }
    },
}


def assert_emf(document: dict[str, Any]) -> list[str]:
    """Check one document against the specification; the metric names it declares."""
    jsonschema.validate(document, EMF_SCHEMA)
    names = []
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:  # a dimension's target: a root string member
                value = document[key]
                assert isinstance(value, str) and 0 < len(value) <= 1024 and value.isascii()
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]  # a metric's target: a root number member
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            names.append(metric["Name"])
    assert len(names) == len(set(names))
    return names


def lines_of(handler: Any, *events: Any, **settings: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    exporters = settings.pop("exporters", ["aws.emf"])
    obs.configure(exporters=exporters, **settings)
    from inferobs.lifecycle import _exporters

    for exporter in _exporters.get(obs.config.current()):
        if isinstance(exporter, export.lines.LineExporter):
            exporter._stream = stream
    if isinstance(handler, _Staged):
        handler = fresh()
    for event in events:
        try:
            handler(event, None)
        except RuntimeError:
            pass
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _staged(event: Any, context: Any) -> str:
    for name in event.get("stages", ["preprocess", "inference", "postprocess"]):
        with obs.stage(name):
            pass
    obs.observe_input(b"x" * 2048)
    if event.get("fail"):
        raise RuntimeError("bad input")
    return "ok"


class _Staged:
    """The handler, in an environment of its own each time it is taken: its first call
    is a cold start whatever ran before in this process."""

    def __call__(self, event: Any, context: Any) -> Any:
        raise AssertionError("use lines_of, which takes a fresh one")


def fresh() -> Any:
    return obs.instrument(
        _staged, model="sentiment", model_version="7", runtime=obs.Runtime(environ={})
    )


staged = _Staged()


def test_each_invocation_is_one_line_whose_metrics_the_specification_accepts() -> None:
    lines = lines_of(staged, {}, {}, {"fail": True}, exporters=["stdout", "aws.emf"])
    assert len(lines) == 3  # stdout and aws.emf together still write one line each
    first, second, failed = lines
    names = assert_emf(first)
    assert names == [
        "invocations",
        "duration_ms",
        "coldstarts",
        "errors",
        "timeouts",
        "stage.preprocess_ms",
        "stage.inference_ms",
        "stage.postprocess_ms",
        "input_bytes",
        "max_rss_mb",
    ]
    assert first["coldstarts"] == 1 and second["coldstarts"] == 0
    assert first["stage.inference_ms"] == first["stages"]["inference"]
    assert first["input_bytes"] == 2048
    assert first["_aws"]["Timestamp"] == first["start"] // 1_000_000
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "inferobs"
    assert directive["Dimensions"] == [["model"]]  # off-cloud there is no function name
    assert_emf(failed)
    assert (failed["errors"], failed["timeouts"]) == (1, 0)


def test_the_store_keeps_the_record_without_the_metric_members(tmp_path: Any) -> None:
    (line,) = lines_of(staged, {}, exporters=["aws.emf", "store"], store_path=str(tmp_path))
    from inferobs.lifecycle import _exporters

    for exporter in _exporters.exporters:
        getattr(exporter, "flush", lambda: None)()
    (stored,) = read([str(tmp_path)]).records
    assert "_aws" in line and "_aws" not in stored and "coldstarts" not in stored
    assert stored.to_dict() == {k: v for k, v in line.items() if k in stored}


def test_over_a_hundred_metrics_are_split_into_directives_none_dropped() -> None:
    stages = [f"s{n}" for n in range(150)]
    (line,) = lines_of(staged, {"stages": stages})
    names = assert_emf(line)
    directives = line["_aws"]["CloudWatchMetrics"]
    assert [len(d["Metrics"]) for d in directives] == [100, len(names) - 100]
    assert {f"stage.{s}_ms" for s in stages} <= set(names)


def test_high_resolution_and_chosen_dimension_sets() -> None:
    emf = EMFExporter(
        namespace="ml/prod", dimensions=[["model", "model_version"], ["model"]], resolution=1
    )
    (line,) = lines_of(staged, {}, exporters=[emf])
    assert_emf(line)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ml/prod"
    assert directive["Dimensions"] == [["model", "model_version"], ["model"]]
    assert all(metric["StorageResolution"] == 1 for metric in directive["Metrics"])


def test_a_dimension_value_cloudwatch_refuses_is_left_out_and_counted() -> None:
    @obs.instrument(model="modèle")  # not ASCII: CloudWatch refuses it as a dimension
    def handler(event: Any, context: Any) -> None:
        return None

    (line,) = lines_of(handler, {})
    assert_emf(line)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert faults_seen()["emf_dimension"] >= 1  # said on stderr, once


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("INFEROBS_EMF_DIMENSIONS", "function,id", "'id' cannot be a dimension"),
        ("INFEROBS_EMF_DIMENSIONS", "function,,model", "INFEROBS_EMF_DIMENSIONS"),
        ("INFEROBS_EMF_DIMENSIONS", "model,model", "names a field twice"),
        ("INFEROBS_EMF_NAMESPACE", "AWS/Lambda", "namespace"),
        ("INFEROBS_EMF_NAMESPACE", "", "namespace"),
        ("INFEROBS_EMF_RESOLUTION", "5", "resolution"),
        ("INFEROBS_EMF_RESOLUTION", "fast", "INFEROBS_EMF_RESOLUTION"),
    ],
)
def test_a_misconfiguration_is_an_error_at_configure_time(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(obs.ConfigError, match=named):
        obs.configure(exporters=["aws.emf"])


def test_our_names_resolve_without_scanning_installed_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_scan(**kwargs: Any) -> Any:
        raise AssertionError("the entry-point scan ran for one of our own exporters")

    monkeypatch.setattr("importlib.metadata.entry_points", no_scan)
    (line,) = export.resolve(["aws.emf"])
    assert isinstance(line, export.lines.LineExporter)
    assert [type(r).__name__ for r in line.riders] == ["EMFExporter"]
    # and the distribution registers them for tools that do scan
    registered = {p.name: p.value for p in entry_points(group=export.ENTRY_POINT_GROUP)}
    assert registered["aws.emf"] == "inferobs_aws.emf:EMFExporter"
    assert registered["aws.xray"] == "inferobs_aws.xray:XRayExporter"


def test_an_exporter_whose_package_is_missing_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(export.OURS, "gcp", ("inferobs_not_here.monitoring:X", "inferobs-gcp"))
    with pytest.raises(obs.ConfigError, match="pip install inferobs-gcp"):
        obs.configure(exporters=["gcp"])


def test_a_drift_window_line_carries_each_columns_instance_psi() -> None:
    emf = EMFExporter()
    window = {
        "event": "inferobs.drift_window",
        "function": "scorer",
        "model": "m",
        "window_start": 1_800_000_000_000_000_000,
        "instance_psi": {"age": 0.31, "worst texture": 0.02},
    }
    stream = io.StringIO()
    export.lines.LineExporter(stream, riders=(emf,)).export_window(window)
    line = json.loads(stream.getvalue())
    assert assert_emf(line) == ["drift.psi.age", "drift.psi.worst texture"]
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["function", "model"]]
    assert line["_aws"]["Timestamp"] == 1_800_000_000_000


def test_a_failing_rider_never_costs_the_line() -> None:
    class Broken(EMFExporter):
        def line_members(self, record: Any) -> str:
            raise ValueError("broken")

    (line,) = lines_of(staged, {}, exporters=[Broken()])
    assert line["event"] == "inferobs.invocation" and "_aws" not in line


@pytest.mark.timeout(60)
def test_the_real_runtimes_error_and_timeout_lines_carry_their_metrics() -> None:
    env = {
        "INFEROBS_EXPORTERS": "aws.emf",
        "INFEROBS_EMF_DIMENSIONS": "function,model;function",
        "INFEROBS_TIMEOUT_MARGIN_MS": "200",
    }
    with LocalLambda(
        "handlers.slow", code_dir=LAMBDA_CODE, function_name="emf-fn", timeout_s=1.0, env=env
    ) as fn:
        fn.invoke({"sleep_s": 0})
        fn.invoke({"sleep_s": 5})  # killed at the deadline: the timeout line is the record
        ok, timeout = fn.wait_for_records(2)
    for line in (ok, timeout):
        assert_emf(line)
        assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
            ["function", "model"],
            ["function"],
        ]
        assert line["function"] == "emf-fn"
    assert (ok["coldstarts"], ok["errors"], ok["timeouts"]) == (1, 0, 0)
    assert (timeout["errors"], timeout["timeouts"]) == (1, 1)
    assert "stage.preprocess_ms" in timeout and "stage.inference_ms" not in timeout
    with LocalLambda(
        "handlers.raises", code_dir=LAMBDA_CODE, function_name="emf-fn", env=env
    ) as fn:
        fn.invoke({})
        (failed,) = fn.wait_for_records(1)
    assert_emf(failed)
    assert failed["errors"] == 1 and failed["error_type"] == "ModelError"


BASE = {"schema": 1, "event": "inferobs.invocation", "start": 1_800_000_000_123_456_789}


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "invocation", "status": "ok", "duration_ms": 3.5},
        {
            "kind": "invocation",
            "status": "ok",
            "duration_ms": 9.25,
            "cold_start": True,
            "init_ms": 812.5,
            "stages": {"preprocess": 0.5, "inference": 7.0, "inference/forward": 6.5},
            "input": {"kind": "ndarray", "shape": [2, 3], "nbytes": 48},
            "max_rss_mb": 210.4,
            "function": "scorer",
            "model": "m",
        },
        {"kind": "invocation", "status": "error", "duration_ms": 1.0, "error_type": "KeyError"},
        {"kind": "timeout", "status": "error", "duration_ms": 2900.0, "stages": {"a": 1.0}},
        {"kind": "invocation", "status": "ok", "duration_ms": 1.0, "input": {"nbytes": True}},
        {"kind": "warmup", "status": "ok", "duration_ms": 0.2},
    ],
)
def test_the_line_carries_exactly_the_metric_tables_points(fields: dict[str, Any]) -> None:
    """The EMF writer is specialised for speed; what it writes must be the table's."""
    from inferobs.export.metrics import invocation_points

    record = {**BASE, **fields}
    stream = io.StringIO()
    export.lines.LineExporter(stream, riders=(EMFExporter(),)).export(record)
    line = json.loads(stream.getvalue())
    points = invocation_points(record)
    if not points:
        assert "_aws" not in line
        return
    assert assert_emf(line) == [name for name, _, _ in points]
    assert {name: line[name] for name, _, _ in points} == {n: v for n, _, v in points}
    units = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {name: unit for name, unit, _ in points}


def test_the_documented_metric_table_is_the_one_exporters_use() -> None:
    from pathlib import Path

    from inferobs.export.metrics import METRICS

    text = (Path(__file__).parent.parent / "docs" / "exporters.md").read_text(encoding="utf-8")
    for metric in METRICS:
        otel = f"`{metric.otel}`" if metric.otel else "-"
        row = f"| `{metric.name}` | {metric.unit} | {otel} | {metric.description} |"
        assert row in text, row


def test_every_point_a_record_gives_is_a_row_of_the_table() -> None:
    """`invocation_points` and `window_points` write names and units of their own; each
    must be one the table (and so the docs) describes."""
    from inferobs.export.metrics import METRICS, invocation_points, window_points

    exact = {(m.name, m.unit) for m in METRICS if "<" not in m.name}
    prefixed = {(m.name.split("<")[0], m.unit) for m in METRICS if "<" in m.name}
    record = {
        **BASE,
        "kind": "timeout",
        "status": "error",
        "duration_ms": 3.0,
        "init_ms": 1.0,
        "stages": {"inference": 1.0},
        "input": {"nbytes": 8},
        "max_rss_mb": 9.0,
    }
    points = invocation_points(record) + window_points({"instance_psi": {"age": 0.1}})
    assert len(points) == 10
    for name, unit, _ in points:
        assert (name, unit) in exact or any(
            name.startswith(prefix) and unit == u for prefix, u in prefixed
        ), name
