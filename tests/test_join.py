"""The join of our records and Lambda's reports: counts, billed durations, unfinished calls."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferobs.analyze.columns import INVOCATIONS, REPORTS, conform, empty
from inferobs.analyze.join import JOINED, join

END = 1_756_728_000_000_000_000  # 2025-09-01, Unix epoch ns


def relation(
    db: duckdb.DuckDBPyConnection, rows: list[dict[str, object]], kind: str
) -> duckdb.DuckDBPyRelation:
    if not rows:
        return empty(db, kind)
    columns = {name: [row.get(name) for row in rows] for name in {k for r in rows for k in r}}
    return conform(db.from_arrow(pa.table(columns)), kind)


def joined(
    ours: list[dict[str, object]],
    theirs: list[dict[str, object]],
    *,
    error_types: bool = True,
) -> list[dict[str, object]]:
    db = duckdb.connect()
    invocations = relation(db, ours, "invocations")
    reports = relation(db, theirs, "reports")
    if error_types and theirs:  # the parser's extra column, beside the report ones
        types = [row.get("error_type") for row in theirs]
        reports = db.from_arrow(
            reports.to_arrow_table().append_column("error_type", pa.array(types, pa.string()))
        )
    out = join(db, invocations, reports)
    assert out.columns == [*INVOCATIONS, *JOINED]
    return [dict(zip(out.columns, row, strict=True)) for row in out.fetchall()]


def record(id: str | None, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "source": "records.log",
        "line": 1,
        "id": id,
        "start": END - 50_000_000,
        "kind": "invocation",
        "status": "ok",
        "function": "predict",
        "platform": "aws_lambda",
        "duration_ms": 40.0,
        "cold_start": False,
        "sample_rate": 1.0,
    }
    return {**base, **fields}


def report(id: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "source": "export.log",
        "line": 1,
        "id": id,
        "end": END,
        "duration_ms": 41.5,
        "billed_ms": 42.0,
        "memory_mb": 1024,
        "max_memory_mb": 300,
    }
    return {**base, **fields}


def test_a_record_completed_by_its_report() -> None:
    (row,) = joined(
        [record("a", cold_start=True, init_ms=250.0, init_type="on-demand", memory_mb=1024)],
        [report("a", init_ms=262.31, billed_ms=304.0)],
    )
    assert row["reported"] is True
    assert row["billed_computed"] is False
    assert row["billed_ms"] == 304.0  # REPORT's, init already in it: never added again
    assert row["max_memory_mb"] == 300
    assert row["init_ms"] == 262.31  # the platform's figure
    assert (row["duration_ms"], row["kind"], row["status"]) == (40.0, "invocation", "ok")
    assert (row["source"], row["function"]) == ("records.log", "predict")


def test_a_timeout_report_completes_our_timeout_record() -> None:
    (row,) = joined(
        [record("t", kind="timeout", status="error", duration_ms=2950.0, error_stage="infer")],
        [report("t", duration_ms=3000.0, billed_ms=3000.0, max_memory_mb=700, status="timeout")],
    )
    assert (row["kind"], row["status"], row["error_stage"]) == ("timeout", "error", "infer")
    assert (row["billed_ms"], row["max_memory_mb"], row["reported"]) == (3000.0, 700, True)


def test_an_out_of_memory_kill_leaves_only_a_report() -> None:
    (row,) = joined(
        [],
        [
            report(
                "oom",
                function="predict",
                duration_ms=812.55,
                billed_ms=813.0,
                memory_mb=128,
                max_memory_mb=128,
                status="error",
                error_type="Runtime.OutOfMemory",
            )
        ],
    )
    assert (row["kind"], row["status"], row["error_type"]) == (
        "invocation",
        "error",
        "Runtime.OutOfMemory",
    )
    assert (row["duration_ms"], row["billed_ms"], row["memory_mb"]) == (812.55, 813.0, 128)
    assert row["start"] == END - 812_550_000
    assert (row["source"], row["function"], row["platform"]) == (
        "export.log",
        "predict",
        "aws_lambda",
    )
    assert (row["reported"], row["billed_computed"]) == (True, False)


@pytest.mark.parametrize(
    ("status", "memory", "expected"),
    [
        (None, 128, ("invocation", "error", "Runtime.OutOfMemory")),  # old runtime, memory full
        (None, 60, ("invocation", "error", "crash")),
        ("error", 60, ("invocation", "error", "crash")),
        ("failure", 60, ("invocation", "error", "crash")),
        ("timeout", 60, ("timeout", "error", None)),
        ("success", 60, ("invocation", "ok", None)),
    ],
)
def test_a_report_without_a_record_without_an_error_type(
    status: str | None, memory: int, expected: tuple[str, str, str | None]
) -> None:
    """Reports conformed to the report columns alone (no error type) still say what ended."""
    rows = joined(
        [], [report("x", memory_mb=128, max_memory_mb=memory, status=status)], error_types=False
    )
    assert [(r["kind"], r["status"], r["error_type"]) for r in rows] == [expected]


@pytest.mark.parametrize(
    ("fields", "billed"),
    [
        ({"duration_ms": 10.2}, 11.0),
        ({"duration_ms": 10.0}, 10.0),
        ({"duration_ms": 0.1 + 0.2}, 1.0),
        # on-demand cold start: init billed with the handler, rounded up together
        (
            {"duration_ms": 10.2, "cold_start": True, "init_ms": 100.5, "init_type": "on-demand"},
            111.0,
        ),
        ({"duration_ms": 10.2, "cold_start": True, "init_ms": 100.5}, 111.0),  # off-cloud
        # proactive init: nobody waited, not added
        ({"duration_ms": 10.2, "cold_start": False, "init_ms": 100.5}, 11.0),
        # provisioned concurrency and SnapStart: init not billed in the invocation
        (
            {
                "duration_ms": 10.2,
                "cold_start": False,
                "init_ms": 100.5,
                "init_type": "provisioned-concurrency",
            },
            11.0,
        ),
        (
            {"duration_ms": 10.2, "cold_start": True, "init_ms": 3.0, "init_type": "snap-start"},
            11.0,
        ),
    ],
)
def test_billed_duration_computed_without_a_report(
    fields: dict[str, object], billed: float
) -> None:
    (row,) = joined([record("a", **fields)], [])
    assert row["billed_ms"] == billed
    assert (row["billed_computed"], row["reported"], row["max_memory_mb"]) == (True, False, None)


def test_snapstart_restore_comes_from_the_report() -> None:
    (row,) = joined(
        [record("s", cold_start=True, init_type="snap-start", init_ms=3.0)],
        [report("s", restore_ms=500.795, billed_restore_ms=53.0, billed_ms=42.0)],
    )
    assert (row["restore_ms"], row["billed_restore_ms"], row["billed_ms"]) == (500.795, 53.0, 42.0)
    assert row["init_ms"] == 3.0  # ours: the report has no Init Duration for SnapStart


def test_the_same_report_read_twice_counts_once() -> None:
    twice = [report("a"), report("a", source="copy.log", line=9), report("b")]
    rows = joined([record("a")], twice)
    assert sorted(str(r["id"]) for r in rows) == ["a", "b"]


def test_a_retried_request_pairs_records_and_reports_in_order() -> None:
    """An asynchronous request retried keeps its id: each try has its own record and report."""
    rows = joined(
        [
            record("r", start=END - 10_000_000_000, duration_ms=10.0, line=1),
            record("r", start=END - 50_000_000, duration_ms=40.0, line=2),
        ],
        [
            report("r", end=END - 9_990_000_000, billed_ms=11.0, line=1),
            report("r", end=END, billed_ms=41.0, line=2),
        ],
    )
    assert sorted((r["duration_ms"], r["billed_ms"]) for r in rows) == [(10.0, 11.0), (40.0, 41.0)]


def test_nothing_in_gives_nothing_out_with_every_column() -> None:
    db = duckdb.connect()
    out = join(db, empty(db, "invocations"), empty(db, "reports"))
    assert out.columns == [*INVOCATIONS, *JOINED]
    assert dict(zip(out.columns, out.types, strict=True)) == {
        name: duckdb.sqltype(kind) for name, kind in {**INVOCATIONS, **JOINED}.items()
    }
    assert out.fetchall() == []
    assert set(REPORTS) >= {"billed_ms", "max_memory_mb", "restore_ms", "billed_restore_ms"}


# --- generated: every kind of case at once, each as constructed ------------


@dataclass
class Case:
    """One invocation as the generator built it, and what the join must make of it."""

    shape: str  # both | ours | theirs | anonymous (ours, no request id)
    duration_us: int
    init_us: int | None
    init_type: str | None
    cold_start: bool
    status: str | None  # the report's
    error_type: str | None  # the report's
    memory_mb: int
    max_memory_mb: int
    billed_ms: int  # the report's
    copies: int  # extra copies of the report, from other files


cases = st.builds(
    Case,
    shape=st.sampled_from(["both", "ours", "theirs", "anonymous"]),
    duration_us=st.integers(1, 900_000_000),
    init_us=st.none() | st.integers(1, 10_000_000),
    init_type=st.sampled_from([None, "on-demand", "provisioned-concurrency", "snap-start"]),
    cold_start=st.booleans(),
    status=st.sampled_from([None, "success", "timeout", "error", "failure"]),
    error_type=st.sampled_from([None, "Runtime.OutOfMemory", "Runtime.ExitError"]),
    memory_mb=st.sampled_from([128, 1024, 10240]),
    max_memory_mb=st.integers(30, 10240),
    billed_ms=st.integers(1, 900_001),
    copies=st.integers(0, 2),
)


def expected_error(case: Case) -> tuple[str, str, str | None]:
    """(kind, status, error_type) of a report with no record of ours."""
    if case.status == "success":
        return "invocation", "ok", None
    kind = "timeout" if case.status == "timeout" else "invocation"
    if case.error_type is not None:
        return kind, "error", case.error_type
    if case.status == "timeout":
        return kind, "error", None
    if case.max_memory_mb >= case.memory_mb:
        return kind, "error", "Runtime.OutOfMemory"
    return kind, "error", "crash"


@settings(max_examples=60, deadline=None)
@given(st.lists(cases, max_size=40))
def test_generated_records_and_reports_join_as_constructed(generated: list[Case]) -> None:
    ours: list[dict[str, object]] = []
    theirs: list[dict[str, object]] = []
    for n, case in enumerate(generated):
        id = f"req-{n}"
        if case.shape in ("both", "ours", "anonymous"):
            ours.append(
                record(
                    None if case.shape == "anonymous" else id,
                    line=n + 1,
                    duration_ms=case.duration_us / 1000,
                    init_ms=None if case.init_us is None else case.init_us / 1000,
                    init_type=case.init_type,
                    cold_start=case.cold_start,
                )
            )
        if case.shape in ("both", "theirs"):
            for copy in range(1 + case.copies):
                theirs.append(
                    report(
                        id,
                        source=f"export{copy}.log",
                        line=n + 1,
                        duration_ms=case.duration_us / 1000 + 1.25,
                        billed_ms=float(case.billed_ms),
                        memory_mb=case.memory_mb,
                        max_memory_mb=case.max_memory_mb,
                        status=case.status,
                        error_type=case.error_type,
                    )
                )
    rows = joined(ours, theirs)
    assert len(rows) == len(generated)
    by_place = {(r["source"], r["line"]): r for r in rows}
    for n, case in enumerate(generated):
        place = ("export0.log" if case.shape == "theirs" else "records.log", n + 1)
        row = by_place[place]
        assert row["id"] == (None if case.shape == "anonymous" else f"req-{n}")
        assert row["reported"] is (case.shape in ("both", "theirs"))
        assert row["billed_computed"] is (case.shape in ("ours", "anonymous"))
        if case.shape in ("both", "theirs"):
            assert row["billed_ms"] == case.billed_ms
            assert row["max_memory_mb"] == case.max_memory_mb
        else:
            added = (
                case.init_us
                if case.cold_start
                and case.init_us is not None
                and case.init_type in (None, "on-demand")
                else 0
            )
            assert row["billed_ms"] == -(-(case.duration_us + added) // 1000)
            assert row["max_memory_mb"] is None
        if case.shape == "theirs":
            assert (row["kind"], row["status"], row["error_type"]) == expected_error(case)
            assert row["duration_ms"] == case.duration_us / 1000 + 1.25
        else:
            assert (row["kind"], row["status"], row["error_type"]) == ("invocation", "ok", None)
            assert row["duration_ms"] == case.duration_us / 1000
