"""Lambda REPORT lines, text and JSON, as CloudWatch exports them, into report rows."""

from __future__ import annotations

import json

import pytest

from inferobs.analyze.columns import REPORTS
from inferobs.analyze.sources.lambda_report import REPORT_MARKERS, parse
from inferobs.read import Problem

STAMP = "2025-09-01T12:00:00.250Z"
STAMP_NS = 1_756_728_000_250_000_000  # the same instant, Unix epoch ns

COLD = (
    "REPORT RequestId: 8fc6f963-411b-58b5-8483-a32130c0f45d\tDuration: 201.67 ms\t"
    "Billed Duration: 683 ms\tMemory Size: 2048 MB\tMax Memory Used: 81 MB\t"
    "Init Duration: 480.25 ms\tXRAY TraceId: 1-61c86fa4-59b3c6d959653c527fd10966\t"
    "SegmentId: 107ea78a5750a811\tSampled: true\t"
)
WARM = (
    "REPORT RequestId: 0d1f2e3c-aaaa-bbbb-cccc-000000000001\tDuration: 12.04 ms\t"
    "Billed Duration: 13 ms\tMemory Size: 1024 MB\tMax Memory Used: 88 MB\t"
)
SNAP = (
    "REPORT RequestId: 5e1b-snap\tDuration: 147.16 ms\tBilled Duration: 148 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 91 MB\tRestore Duration: 500.80 ms\t"
    "Billed Restore Duration: 53 ms\t"
)
TIMEOUT = (
    "REPORT RequestId: t-1\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 64 MB\tStatus: timeout"
)
OOM = (
    "REPORT RequestId: oom-1\tDuration: 812.55 ms\tBilled Duration: 813 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\t"
    "Error Type: Runtime.OutOfMemory"
)


def event(record: dict[str, object], kind: str = "platform.report") -> str:
    return json.dumps({"time": STAMP, "type": kind, "record": record})


JSON_COLD = event(
    {
        "requestId": "j-cold",
        "metrics": {
            "durationMs": 693.92,
            "billedDurationMs": 1092,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 84,
            "initDurationMs": 397.68,
        },
        "status": "success",
    }
)
JSON_SNAP = event(
    {
        "requestId": "j-snap",
        "status": "success",
        "metrics": {
            "durationMs": 147.156,
            "billedDurationMs": 201,
            "memorySizeMB": 512,
            "maxMemoryUsedMB": 91,
            "restoreDurationMs": 500.795,
            "billedRestoreDurationMs": 53,
        },
    }
)
JSON_OOM = event(
    {
        "requestId": "j-oom",
        "metrics": {
            "durationMs": 12.5,
            "billedDurationMs": 13,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 128,
        },
        "status": "error",
        "errorType": "Runtime.OutOfMemory",
    }
)


def one(text: str, source: str = "export.log") -> dict[str, object]:
    problems: list[Problem] = []
    rows = parse([(7, text)], source, problems)
    assert problems == []
    assert len(rows) == 1
    return rows[0]


def test_markers_pick_every_report_form_and_no_other_platform_line() -> None:
    for line in (COLD, WARM, SNAP, TIMEOUT, OOM, JSON_COLD, JSON_SNAP, JSON_OOM):
        assert any(m in line for m in REPORT_MARKERS), line
    for line in (
        "START RequestId: 8fc6 Version: $LATEST",
        "END RequestId: 8fc6",
        event({"requestId": "x", "status": "success"}, "platform.runtimeDone"),
        event({"requestId": "x"}, "platform.start"),
    ):
        assert not any(m in line for m in REPORT_MARKERS), line


def test_text_cold_start_with_timestamp_prefix() -> None:
    row = one(f"{STAMP} {COLD}")
    assert row == {
        "source": "export.log",
        "line": 7,
        "id": "8fc6f963-411b-58b5-8483-a32130c0f45d",
        "end": STAMP_NS,
        "function": None,
        "duration_ms": 201.67,
        "billed_ms": 683.0,
        "memory_mb": 2048,
        "max_memory_mb": 81,
        "init_ms": 480.25,
        "restore_ms": None,
        "billed_restore_ms": None,
        "status": None,
        "error_type": None,
    }
    assert set(REPORTS) <= set(row)


def test_text_warm_without_prefix_has_no_end_and_no_init() -> None:
    row = one(WARM)
    assert row["end"] is None
    assert row["init_ms"] is None
    assert (row["duration_ms"], row["billed_ms"], row["max_memory_mb"]) == (12.04, 13.0, 88)


def test_text_fields_separated_by_spaces_and_crlf() -> None:
    """Copies out of the console turn the tabs into spaces; Windows tools add CR."""
    row = one(f"{STAMP} " + COLD.replace("\t", " ") + "\r\n")
    assert (row["init_ms"], row["billed_ms"], row["end"]) == (480.25, 683.0, STAMP_NS)


def test_text_snapstart_restore_fields_are_not_read_as_durations() -> None:
    row = one(SNAP)
    assert row["duration_ms"] == 147.16
    assert row["billed_ms"] == 148.0
    assert row["restore_ms"] == 500.80
    assert row["billed_restore_ms"] == 53.0
    assert row["init_ms"] is None


def test_text_timeout_and_out_of_memory_status() -> None:
    assert one(TIMEOUT)["status"] == "timeout"
    row = one(OOM)
    assert (row["status"], row["error_type"]) == ("error", "Runtime.OutOfMemory")


def test_function_is_filled_when_the_caller_knows_it() -> None:
    rows = parse([(1, WARM)], "s", [], function="predict")
    assert rows[0]["function"] == "predict"


def test_json_report_with_init() -> None:
    row = one(JSON_COLD)
    assert row["id"] == "j-cold"
    assert row["end"] == STAMP_NS
    assert (row["duration_ms"], row["billed_ms"], row["init_ms"]) == (693.92, 1092.0, 397.68)
    assert (row["memory_mb"], row["max_memory_mb"], row["status"]) == (128, 84, "success")


def test_json_report_snapstart_and_error_type() -> None:
    snap = one(JSON_SNAP)
    assert (snap["restore_ms"], snap["billed_restore_ms"], snap["init_ms"]) == (500.795, 53.0, None)
    oom = one(JSON_OOM)
    assert (oom["status"], oom["error_type"]) == ("error", "Runtime.OutOfMemory")


def test_json_report_after_an_export_timestamp_and_without_time() -> None:
    data = json.loads(JSON_COLD)
    del data["time"]
    row = one(f"2025-09-01T12:00:01.000Z {json.dumps(data)}")
    assert row["end"] == STAMP_NS + 750_000_000


def test_other_platform_events_are_skipped_without_a_problem() -> None:
    problems: list[Problem] = []
    runtime_done = event({"requestId": "x", "status": "success"}, "platform.runtimeDone")
    rows = parse(
        [(1, runtime_done + ' "platform.report"'), (2, '{"msg": "see \\"platform.report\\""}')],
        "s",
        problems,
    )
    assert rows == []
    assert problems == []


def test_json_report_beside_other_json_on_the_line() -> None:
    row = one('{"level": "INFO"} ' + JSON_SNAP)
    assert row["id"] == "j-snap"


@pytest.mark.parametrize("full", [f"{STAMP} {COLD}", SNAP, OOM, TIMEOUT])
def test_every_cut_of_a_text_line_is_a_problem_or_a_true_row(full: str) -> None:
    """A line cut anywhere (the end of an export) never crashes nor gives a wrong figure.

    Cut at a field boundary, it is a whole report without its later optional
    fields: every figure it has is the full line's. (An error type, the last
    field, cut short reads as a shorter name: nothing in the line tells.)
    """
    whole = one(full)
    start = full.index("REPORT RequestId:") + len("REPORT RequestId:")
    for cut in range(start, len(full)):
        problems: list[Problem] = []
        rows = parse([(7, full[:cut])], "export.log", problems)
        assert len(rows) + len(problems) == 1, full[:cut]
        if problems:
            assert problems[0].location == "export.log:7"
            continue
        for name, value in rows[0].items():
            if value is not None and name not in ("id", "error_type"):
                assert value == whole[name], (full[:cut], name)
        # words end anywhere: a word cut short cannot be told from a whole one
        for name in ("id", "error_type"):
            assert str(whole[name]).startswith(str(rows[0][name] or ""))


def test_text_lines_cut_before_the_required_fields_are_problems() -> None:
    problems: list[Problem] = []
    candidates = [
        (10, "REPORT RequestId: abc"),
        (11, "REPORT RequestId: abc\tDuration: 12.3"),
        (12, "REPORT RequestId: abc\tDuration: 12.3 ms\tBilled Duration: 13 ms\tMemory Si"),
        (13, WARM.replace("Max Memory Used: 88 MB", "Max Memory Used: 88 M")),
        (14, TIMEOUT.replace("timeout", "tim")),
    ]
    assert parse(candidates, "export.log", problems) == []
    assert [p.location for p in problems] == [f"export.log:{n}" for n in range(10, 15)]
    assert "Duration" in problems[1].message


@pytest.mark.parametrize("full", [JSON_COLD, JSON_SNAP, JSON_OOM])
def test_every_cut_of_a_json_report_is_a_problem(full: str) -> None:
    line = f"{STAMP} {full}"
    first = line.index("{")
    for cut in range(first + 1, len(line)):
        problems: list[Problem] = []
        assert parse([(5, line[:cut])], "export.log", problems) == [], line[:cut]
        assert [p.location for p in problems] == ["export.log:5"]


def test_a_line_split_in_two_gives_one_problem_and_no_row() -> None:
    """The head of a split report is a cut candidate; its tail holds no marker."""
    at = COLD.index("Memory Size")
    head, tail = f"{STAMP} {COLD[:at]}", COLD[at:]
    candidates = [
        (n, text) for n, text in [(1, head), (2, tail)] if any(m in text for m in REPORT_MARKERS)
    ]
    problems: list[Problem] = []
    assert parse(candidates, "export.log", problems) == []
    assert [p.location for p in problems] == ["export.log:1"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (WARM.replace("12.04 ms", "fast ms"), "Duration"),
        (WARM.replace("1024 MB", "10.5 MB"), "Memory Size"),
        (WARM.replace("13 ms", "-13 ms"), "Billed Duration"),
        (WARM.replace("RequestId: 0d1f2e3c-aaaa-bbbb-cccc-000000000001", "RequestId: "), "Id"),
        (event({"metrics": {"durationMs": 1}}), "requestId"),
        (event({"requestId": "x"}), "metrics"),
        (event({"requestId": "x", "metrics": {"durationMs": True}}), "durationMs"),
        (
            event(
                {
                    "requestId": "x",
                    "metrics": {"durationMs": 1, "billedDurationMs": 1, "memorySizeMB": 128},
                }
            ),
            "maxMemoryUsedMB",
        ),
        (
            event(
                {
                    "requestId": "x",
                    "status": "weird",
                    "metrics": {
                        "durationMs": 1,
                        "billedDurationMs": 1,
                        "memorySizeMB": 128,
                        "maxMemoryUsedMB": 1,
                    },
                }
            ),
            "status",
        ),
    ],
)
def test_malformed_reports_are_problems_naming_what_is_wrong(text: str, says: str) -> None:
    problems: list[Problem] = []
    assert parse([(9, text)], "export.log", problems) == []
    assert len(problems) == 1
    assert problems[0].location == "export.log:9"
    assert says in problems[0].message


def test_good_lines_survive_bad_neighbours() -> None:
    problems: list[Problem] = []
    rows = parse([(1, WARM), (2, "REPORT RequestId: cut"), (3, JSON_OOM)], "f", problems)
    assert [r["line"] for r in rows] == [1, 3]
    assert [p.location for p in problems] == ["f:2"]
