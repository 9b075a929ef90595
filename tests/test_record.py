"""The record: JSON round trip, compact form, clear errors, documented fields."""

from __future__ import annotations

import os

import pytest

from inferobs.record import FIELDS, SCHEMA_VERSION, Invocation, RecordError

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "log-schema.md")


def full() -> Invocation:
    return Invocation(
        kind="timeout",
        id="r1",
        trace_id="1-abc",
        platform="aws_lambda",
        service="s",
        function="f",
        version="3",
        instance_id="i:1",
        model="m",
        model_version="v",
        variant="B",
        sample_rate=0.5,
        start=1_700_000_000_000_000_000,
        duration_ms=12.5,
        memory_mb=512,
        max_rss_mb=80.5,
        cold_start=True,
        init_type="on-demand",
        init_ms=310.2,
        stages={"preprocess": 1.0, "inference": 9.0, "inference/forward": 8.0},
        unstaged_ms=2.5,
        stage_starts={"preprocess": 0.2, "inference": 2.0},
        input={"kind": "ndarray", "shape": [1, 20], "dtype": "float32"},
        status="error",
        error_type="Timeout",
        error_stage="inference",
        drift_observations=3,
        tags={"tier": "gold"},
        http={"method": "POST", "route": "/predict/{model}", "status_code": 200},
        sdk_faults=2,
    )


def test_json_round_trip_keeps_every_field() -> None:
    record = full()
    assert list(record.to_dict()) == list(FIELDS)
    assert Invocation.from_json(record.to_json()) == record


def test_empty_fields_are_left_out_and_read_as_their_defaults() -> None:
    record = Invocation(start=1, duration_ms=0.5, cold_start=False, tags={}, model=None)
    assert (record.cold_start, record.tags, record.model, record.sample_rate) == (
        False,
        {},
        None,
        1.0,
    )
    record.model = "m"
    record.sdk_faults = 0
    assert record.model == "m" and "sdk_faults" not in record
    record.model = None
    assert record.to_dict() == {
        "schema": SCHEMA_VERSION,
        "event": "inferobs.invocation",
        "kind": "invocation",
        "start": 1,
        "duration_ms": 0.5,
        "status": "ok",
    }
    assert Invocation.from_dict(record.to_dict()) == record


def test_unknown_fields_such_as_exporter_metadata_are_ignored() -> None:
    data = full().to_dict() | {"_aws": {"CloudWatchMetrics": []}, "newer_field": 1}
    assert Invocation.from_dict(data) == full()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event": "other"}, "event='other': not an inferobs.invocation record"),
        ({"schema": SCHEMA_VERSION + 1}, "written by a newer inferobs"),
        ({"duration_ms": "fast"}, "duration_ms='fast': expected a number"),
        ({"cold_start": "yes"}, "cold_start='yes': expected true or false"),
        ({"memory_mb": True}, "memory_mb=True: expected an integer"),
        ({"kind": "ping"}, "kind='ping': expected one of invocation, warmup, timeout"),
        ({"stages": {"a": "1"}}, "stages.a='1': expected milliseconds"),
        ({"start": None}, "start: required field is missing"),
        ({"duration_ms": float("inf")}, "duration_ms=Infinity: expected a finite number"),
        ({"stages": {"a": float("nan")}}, "stages.a=NaN: expected a finite number"),
    ],
)
def test_bad_records_name_the_field(change: dict[str, object], message: str) -> None:
    data = full().to_dict() | change
    with pytest.raises(RecordError) as caught:
        Invocation.from_dict(data)
    assert message in str(caught.value)


def test_a_line_that_is_not_json_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="not a JSON line"):
        Invocation.from_json("{not json")


def test_a_line_with_nan_or_infinity_is_a_record_error_naming_where() -> None:
    line = full().to_json().replace('"tier":"gold"', '"tier":"gold","score":-Infinity')
    with pytest.raises(RecordError, match=r"^tags.score=-Infinity: expected a finite number"):
        Invocation.from_json(line)
    with pytest.raises(RecordError, match=r"^duration_ms=NaN: expected a finite number"):
        Invocation.from_json(full().to_json().replace('"duration_ms":12.5', '"duration_ms":NaN'))
    assert Invocation.from_json(full().to_json().encode()) == full()  # bytes read as before


def test_every_field_is_documented_in_the_log_schema() -> None:
    with open(DOCS, encoding="utf-8") as handle:
        text = handle.read()
    for name in FIELDS:
        assert f"| `{name}` |" in text, name


def test_unknown_field_names_are_refused() -> None:
    with pytest.raises(RecordError, match="unknown field"):
        Invocation(start=1, duration_ms=1.0, colds_start=True)


def test_the_fast_line_encoder_writes_what_the_json_module_writes() -> None:
    import json

    record = full()
    record.tags = {"text": 'naïve \n "quoted"', "n": 3, "x": 0.1}
    assert record.to_json() == json.dumps(record, separators=(",", ":"))
    assert "\n" not in record.to_json()
