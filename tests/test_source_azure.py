"""The Azure Functions traces, 2021 invocations and 2019 minute counts, real and constructed."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from inferobs.analyze.sources import detect
from inferobs.analyze.sources.azure import (
    ORIGIN_2019_NS,
    ORIGIN_2021_NS,
    AzureInvocations2021,
    AzureMinutes2019,
)
from inferobs.analyze.sources.table import InvocationTable
from inferobs.read import Problem

TRACES = Path("/work/shared/data/traces")
SLICE_2021 = (
    TRACES
    / "azure-functions-2021-slice/AzureFunctionsInvocationTraceForTwoWeeksJan2021_first998.csv"
)
DAY_2019 = TRACES / "azure-functions-2019-one-function"
NS = 10**9
MINUTE = 60 * NS
real = pytest.mark.skipif(not TRACES.is_dir(), reason="the shared traces are not here")


def copied(source: Path, folder: Path) -> Path:
    """A copy of a shared trace file: tests never write beside the originals."""
    target = folder / source.name
    shutil.copyfile(source, target)
    return target


def test_2021_rows_exactly(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("app,func,end_timestamp,duration\na1,f1,10.5,0.5\na2,f1,3.25,1.25\n")
    problems: list[Problem] = []
    frames = AzureInvocations2021(str(path)).load(duckdb.connect(), problems)
    rows = (
        frames["invocations"]
        .project("line, start, duration_ms, function, kind, status, cold_start, platform")
        .order("line")
        .fetchall()
    )
    assert rows == [
        (2, ORIGIN_2021_NS + 10 * NS, 500.0, "a1/f1", "invocation", "ok", None, "azure_functions"),
        (3, ORIGIN_2021_NS + 2 * NS, 1250.0, "a2/f1", "invocation", "ok", None, "azure_functions"),
    ]
    assert problems == []


def test_2021_bad_rows_are_reported_and_left_out(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "app,func,end_timestamp,duration\na,f,1,0.5\na,f,soon,0.5\n,f,1,0.5\na,f,1,-1\n"
    )
    problems: list[Problem] = []
    frames = AzureInvocations2021(str(path)).load(duckdb.connect(), problems)
    assert frames["invocations"].project("line").fetchall() == [(2,)]
    assert [str(p) for p in problems] == [
        f"{path}:3: left out: end_timestamp is not a number",
        f"{path}:4: left out: no app or func",
        f"{path}:5: left out: duration is not a duration",
    ]


@real
def test_2021_real_slice(tmp_path: Path) -> None:
    path = copied(SLICE_2021, tmp_path)
    assert isinstance(detect(str(path)), AzureInvocations2021)
    problems: list[Problem] = []
    frames = AzureInvocations2021(str(path)).load(duckdb.connect(), problems)
    counted = frames["invocations"].aggregate(
        "count(*), count(DISTINCT function), min(start) >= "
        f"{ORIGIN_2021_NS}, max(start) < {ORIGIN_2021_NS + 2 * 3600 * NS}, "
        "count(cold_start), min(duration_ms) >= 0"
    )
    # the README: 998 rows, 49 functions, about 1.8 hours; no cold-start flag
    assert counted.fetchall() == [(998, 49, True, True, 0, True)]
    assert problems == []


def test_2019_minutes_with_durations_beside(tmp_path: Path) -> None:
    minutes = ",".join(str(m) for m in range(1, 1441))
    counts = ["0"] * 1440
    counts[0], counts[1], counts[1439] = "5", "7", "2"
    (tmp_path / "invocations.csv").write_text(
        f"HashOwner,HashApp,HashFunction,Trigger,{minutes}\n"
        f"o,a,f,http,{','.join(counts)}\n"
        f"o,a,g,timer,{','.join(['0'] * 1439 + ['1'])}\n"
    )
    (tmp_path / "durations.csv").write_text(
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,"
        "percentile_Average_0,percentile_Average_1,percentile_Average_25,"
        "percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n"
        "o,a,f,4,14,1.0,900.0,2,2,3,4,5,11,453\n"
    )
    problems: list[Problem] = []
    path = str(tmp_path / "invocations.csv")
    frames = AzureMinutes2019(path).load(duckdb.connect(), problems)
    rows = frames["minutes"].order("function, minute").fetchall()
    figures = (4.0, 4.0, 11.0, 453.0)
    assert rows == [
        (path, "a/f", ORIGIN_2019_NS, 5, *figures),
        (path, "a/f", ORIGIN_2019_NS + MINUTE, 7, *figures),
        (path, "a/f", ORIGIN_2019_NS + 1439 * MINUTE, 2, *figures),
        (path, "a/g", ORIGIN_2019_NS + 1439 * MINUTE, 1, None, None, None, None),
    ]
    assert problems == []


def test_2019_without_durations_and_with_a_bad_count(tmp_path: Path) -> None:
    path = tmp_path / "invocations_per_function_md.anon.d03.csv"
    counts = ["1"] * 1440
    counts[9] = "many"
    minutes = ",".join(str(m) for m in range(1, 1441))
    path.write_text(
        f"HashOwner,HashApp,HashFunction,Trigger,{minutes}\no,a,f,http,{','.join(counts)}\n"
    )
    problems: list[Problem] = []
    frames = AzureMinutes2019(str(path)).load(duckdb.connect(), problems)
    day_three = ORIGIN_2019_NS + 2 * 86_400 * NS
    counted = frames["minutes"].aggregate(
        "count(*), sum(invocations), min(minute), count(duration_avg_ms)"
    )
    assert counted.fetchall() == [(1439, 1439, day_three, 0)]
    assert [str(p) for p in problems] == [f"{path}:2: left out: minute 10 is not a count"]


def test_2019_durations_file_given_by_path(tmp_path: Path) -> None:
    (tmp_path / "day").mkdir()
    path = tmp_path / "day" / "counts.csv"
    path.write_text("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,3,0\n")
    durations = tmp_path / "d.csv"
    durations.write_text(
        "HashOwner,HashApp,HashFunction,Average,percentile_Average_50,"
        "percentile_Average_99,percentile_Average_100\no,a,f,1.5,1,9,20\n"
    )
    frames = AzureMinutes2019(str(path), durations=str(durations)).load(duckdb.connect(), [])
    assert frames["minutes"].project(
        "minute, invocations, duration_avg_ms, duration_p50_ms, duration_p99_ms, duration_max_ms"
    ).fetchall() == [(ORIGIN_2019_NS, 3, 1.5, 1.0, 9.0, 20.0)]


def test_2019_a_durations_file_without_the_figures_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "invocations.csv"
    path.write_text("HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,3\n")
    (tmp_path / "durations.csv").write_text("HashOwner,HashApp,HashFunction,Average\no,a,f,2\n")
    problems: list[Problem] = []
    frames = AzureMinutes2019(str(path)).load(duckdb.connect(), problems)
    assert frames["minutes"].project("invocations, duration_avg_ms").fetchall() == [(3, None)]
    assert problems[0].location == str(tmp_path / "durations.csv")
    assert "percentile_average_50" in problems[0].message


@real
def test_2019_real_day(tmp_path: Path) -> None:
    path = copied(DAY_2019 / "invocations.csv", tmp_path)
    copied(DAY_2019 / "durations.csv", tmp_path)
    copied(DAY_2019 / "memory.csv", tmp_path)
    assert isinstance(detect(str(path)), AzureMinutes2019)
    problems: list[Problem] = []
    frames = AzureMinutes2019(str(path)).load(duckdb.connect(), problems)
    counted = frames["minutes"].aggregate(
        "count(*), count(DISTINCT function), min(invocations) >= 7500, "
        "any_value(duration_avg_ms), any_value(duration_p50_ms), "
        "any_value(duration_p99_ms), any_value(duration_max_ms)"
    )
    # one busy function, every minute of the day; durations.csv: 4, 4, 11, 453 ms
    assert counted.fetchall() == [(1440, 1, True, 4.0, 4.0, 11.0, 453.0)]
    assert problems == []


@real
def test_detect_tells_the_trace_formats_apart(tmp_path: Path) -> None:
    for name in ("durations.csv", "memory.csv"):
        source = detect(str(copied(DAY_2019 / name, tmp_path)))
        assert not isinstance(source, (AzureMinutes2019, AzureInvocations2021, InvocationTable))
    llm = TRACES / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_code.csv"
    # a timestamp but no duration: not a table of invocations
    assert not isinstance(detect(str(copied(llm, tmp_path))), InvocationTable)


def test_detect_gzip_2021(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "trace.csv.gz"
    path.write_bytes(gzip.compress(b"app,func,end_timestamp,duration\na,f,2,1\n"))
    source = detect(str(path))
    assert isinstance(source, AzureInvocations2021)
    frames = source.load(duckdb.connect(), [])
    assert frames["invocations"].project("start").fetchall() == [(ORIGIN_2021_NS + NS,)]


def test_2019_a_row_cut_short_is_left_out_and_named(tmp_path: Path) -> None:
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    minutes = ",".join(str(m) for m in range(1, 1441))
    path.write_text(
        f"HashOwner,HashApp,HashFunction,Trigger,{minutes}\n"
        f"o,a,f,http,{','.join(['2'] * 1440)}\n"
        f"o,a,g,http,{','.join(['3'] * 100)}\n"  # an export cut off mid-line
    )
    problems: list[Problem] = []
    frames = AzureMinutes2019(str(path)).load(duckdb.connect(), problems)
    totals = frames["minutes"].aggregate("function, sum(invocations)").order("function")
    assert totals.fetchall() == [("a/f", 2880)]
    assert str(problems[0]) == f"{path}:3: left out: a row of 104 columns under a header of 1444"


def test_2019_minute_columns_in_any_order_are_read_by_name(tmp_path: Path) -> None:
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    order = list(range(1440, 0, -1))  # a re-export that reversed the columns
    path.write_text(
        "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, order)) + "\n"
        "o,a,f,http," + ",".join(str(m % 7) for m in order) + "\n"
    )
    problems: list[Problem] = []
    frames = AzureMinutes2019(str(path)).load(duckdb.connect(), problems)
    rows = frames["minutes"].project("minute, invocations").order("minute").fetchall()
    assert rows[:3] == [
        (ORIGIN_2019_NS, 1),
        (ORIGIN_2019_NS + MINUTE, 2),
        (ORIGIN_2019_NS + 2 * MINUTE, 3),
    ]
    assert problems == []
