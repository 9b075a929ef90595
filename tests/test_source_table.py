"""Invocation tables from other tools: every format, the aliases, the units, and bad rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from inferobs.analyze.sources import detect
from inferobs.analyze.sources.table import InvocationTable
from inferobs.read import Problem
from inferobs.record import Invocation

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
NS = 10**9
COLUMNS = "line, id, start, duration_ms, memory_mb, cold_start, init_ms, function, kind, status"

CSV = (
    "request_id,timestamp,duration_ms,memory_mb,cold_start,init_ms,function_name\n"
    f"a,{T0},12.5,1024,true,250,predict\n"
    f"b,{T0 + 1},3,1024,false,,predict\n"
)
EXPECTED = [
    (2, "a", T0 * NS, 12.5, 1024, True, 250.0, "predict", "invocation", "ok"),
    (3, "b", (T0 + 1) * NS, 3.0, 1024, False, None, "predict", "invocation", "ok"),
]


def load(path: Path) -> tuple[list[tuple[Any, ...]], list[Problem]]:
    problems: list[Problem] = []
    db = duckdb.connect()
    frames = InvocationTable(str(path)).load(db, problems)
    if "invocations" not in frames:
        return [], problems
    rows = frames["invocations"].project(COLUMNS).order("line").fetchall()
    return rows, problems


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


ROWS = [
    {
        "request_id": "a",
        "timestamp": T0,
        "duration_ms": 12.5,
        "memory_mb": 1024,
        "cold_start": True,
        "init_ms": 250,
        "function_name": "predict",
    },
    {
        "request_id": "b",
        "timestamp": T0 + 1,
        "duration_ms": 3,
        "memory_mb": 1024,
        "cold_start": False,
        "init_ms": None,
        "function_name": "predict",
    },
]


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_csv_plain_and_gzip(tmp_path: Path, name: str) -> None:
    rows, problems = load(write(tmp_path / name, CSV))
    assert rows == EXPECTED
    assert problems == []


def test_tsv(tmp_path: Path) -> None:
    rows, problems = load(write(tmp_path / "t.tsv", CSV.replace(",", "\t")))
    assert rows == EXPECTED
    assert problems == []


@pytest.mark.parametrize("name", ["t.jsonl", "t.ndjson", "t.jsonl.gz"])
def test_json_lines(tmp_path: Path, name: str) -> None:
    rows, problems = load(write(tmp_path / name, jsonl(ROWS)))
    # the line of a JSON Lines file is the record's line
    assert rows == [(row[0] - 1, *row[1:]) for row in EXPECTED]
    assert problems == []


def test_json_array(tmp_path: Path) -> None:
    rows, problems = load(write(tmp_path / "t.json", json.dumps(ROWS)))
    assert rows == [(row[0] - 1, *row[1:]) for row in EXPECTED]
    assert problems == []


def test_parquet_with_native_types(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    duckdb.connect().execute(
        "COPY (SELECT * FROM (VALUES "
        "('a', TIMESTAMP '2023-11-14 22:13:20', 12.5, 1024, true, 250.0, 'predict'), "
        "('b', TIMESTAMP '2023-11-14 22:13:21', 3.0, 1024, false, NULL, 'predict')) "
        "v(request_id, start_time, latency_ms, memory, cold, init_duration, service)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    rows, problems = load(path)
    # the row of a Parquet file counts from 1
    assert rows == [(row[0] - 1, *row[1:]) for row in EXPECTED]
    assert problems == []


def test_aliases_in_any_case_and_spacing(tmp_path: Path) -> None:
    text = (
        "AWS Request ID,@Timestamp,Latency-MS,Memory Size,Is Cold Start,Init Duration,Func\n"
        f"a,{T0},12.5,1024,yes,250,predict\n"
    )
    rows, problems = load(write(tmp_path / "t.csv", text))
    assert rows == [EXPECTED[0]]
    assert problems == []


def test_units_of_start_by_magnitude_and_iso_text(tmp_path: Path) -> None:
    text = (
        "ts,duration\n"
        f"{T0},1\n"  # seconds
        f"{T0 * 1000},1\n"  # milliseconds
        f"{T0 * 10**6},1\n"  # microseconds
        f"{T0 * NS},1\n"  # nanoseconds
        f"{T0}.5,1\n"  # fractional seconds
        "2023-11-14T22:13:20Z,1\n"
        "2023-11-15T00:13:20+02:00,1\n"
        "2023-11-14 22:13:20,1\n"  # no offset: UTC
        "2023-11-14T22:13:20.250,1\n"
    )
    rows, problems = load(write(tmp_path / "t.csv", text))
    assert [row[2] for row in rows] == [T0 * NS] * 4 + [
        T0 * NS + NS // 2,
        T0 * NS,
        T0 * NS,
        T0 * NS,
        T0 * NS + NS // 4,
    ]
    assert problems == []


def test_naive_text_is_utc_whatever_the_session_zone(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "ts,duration\n2023-11-14 22:13:20,1\n")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'America/New_York'")
    problems: list[Problem] = []
    rows = InvocationTable(str(path)).load(db, problems)["invocations"].project("start")
    assert rows.fetchall() == [(T0 * NS,)]


@pytest.mark.parametrize(
    ("column", "value", "ms"),
    [
        ("duration", "12.5", 12.5),
        ("duration_ms", "12.5", 12.5),
        ("duration_s", "1.5", 1500.0),
        ("duration_sec", "1.5", 1500.0),
        ("Duration_Seconds", "1.5", 1500.0),
    ],
)
def test_duration_units_by_name(tmp_path: Path, column: str, value: str, ms: float) -> None:
    rows, _ = load(write(tmp_path / "t.csv", f"start,{column}\n{T0},{value}\n"))
    assert [row[3] for row in rows] == [ms]


def test_billed_duration_is_not_a_duration(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", f"start,billed_duration_ms\n{T0},100\n")
    assert not InvocationTable.claims(str(path), path.read_bytes())
    rows, problems = load(path)
    assert rows == []
    assert "no duration_ms" in problems[0].message


def test_status_and_kind(tmp_path: Path) -> None:
    text = (
        "start,duration,status,kind\n"
        f"{T0},1,success,\n"
        f"{T0},1,FAILED,timeout\n"
        f"{T0},1,200,warmup\n"
        f"{T0},1,503,\n"
        f"{T0},1,,\n"
    )
    rows, problems = load(write(tmp_path / "t.csv", text))
    assert [(row[8], row[9]) for row in rows] == [
        ("invocation", "ok"),
        ("timeout", "error"),
        ("warmup", "ok"),
        ("invocation", "error"),
        ("invocation", "ok"),
    ]
    assert problems == []


def test_bad_rows_are_reported_with_their_line_and_left_out(tmp_path: Path) -> None:
    text = (
        "start,duration_ms,memory_mb,cold_start\n"
        f"{T0},1,128,true\n"
        f"yesterday,1,128,true\n"
        f"{T0},-3,128,true\n"
        f"{T0},1,lots,true\n"
        f"{T0},1,128,maybe\n"
        f",1,128,true\n"
        f"{T0},nan,128,true\n"
        f"{T0},2,,\n"
    )
    rows, problems = load(write(tmp_path / "t.csv", text))
    assert [row[0] for row in rows] == [2, 9]
    path = str(tmp_path / "t.csv")
    assert [p.location for p in problems] == [f"{path}:{n}" for n in range(3, 9)]
    assert [p.message for p in problems] == [
        "left out: start (start) is not a time",
        "left out: duration_ms (duration_ms) is not a duration",
        "left out: memory_mb (memory_mb) is not a number",
        "left out: cold_start (cold_start) is not true or false",
        "left out: no start (start)",
        "left out: duration_ms (duration_ms) is not a duration",
    ]


def test_bad_rows_beyond_the_first_twenty_are_counted(tmp_path: Path) -> None:
    text = "start,duration\n" + "".join(f"{T0},x\n" for _ in range(25)) + f"{T0},1\n"
    rows, problems = load(write(tmp_path / "t.csv", text))
    assert len(rows) == 1
    assert len(problems) == 21
    assert problems[-1].location == str(tmp_path / "t.csv")
    assert problems[-1].message.startswith("5 more rows left out")


def test_a_line_that_is_not_json_is_reported(tmp_path: Path) -> None:
    text = jsonl(ROWS[:1]) + "not json\n" + jsonl(ROWS[1:])
    rows, problems = load(write(tmp_path / "t.jsonl", text))
    assert [row[1] for row in rows] == ["a", "b"]
    assert [str(p) for p in problems] == [f"{tmp_path / 't.jsonl'}:2: left out: not a JSON object"]


def test_a_file_without_start_or_duration_names_what_it_has(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "when,took\n1,2\n")
    rows, problems = load(path)
    assert rows == []
    [problem] = problems
    assert problem.location == str(path)
    assert "no start and no duration_ms column" in problem.message
    assert "it has: when, took" in problem.message
    assert "start_time" in problem.message and "latency_ms" in problem.message


def test_a_broken_parquet_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    rows, problems = load(path)
    assert rows == []
    assert problems[0].location == str(path)


def test_detect_claims_tables_by_extension_and_columns(tmp_path: Path) -> None:
    table = write(tmp_path / "t.csv", CSV)
    assert isinstance(detect(str(table)), InvocationTable)
    gz = write(tmp_path / "t.jsonl.gz", jsonl(ROWS))
    assert isinstance(detect(str(gz)), InvocationTable)
    # a CSV without a start and a duration is no table of invocations
    other = write(tmp_path / "o.csv", "a,b\n1,2\n")
    assert not isinstance(detect(str(other)), InvocationTable)
    # a table under another extension is not claimed
    text = write(tmp_path / "t.txt", CSV)
    assert not InvocationTable.claims(str(text), text.read_bytes())


def test_our_own_json_lines_are_not_claimed(tmp_path: Path) -> None:
    record = Invocation(id="r1", start=T0 * NS, duration_ms=1.0)
    path = write(tmp_path / "ours.jsonl", json.dumps(record.to_dict()) + "\n")
    assert not InvocationTable.claims(str(path), path.read_bytes())
    assert not isinstance(detect(str(path)), InvocationTable)
