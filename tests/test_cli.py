"""The `obs` command: version, report (checked against hand-computed figures), tail."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import inferobs
from inferobs.cli import main, parse_since
from inferobs.export.store import StoreExporter, connect
from inferobs.read import read
from inferobs.record import Invocation

SECOND = 1_000_000_000


def records() -> list[Invocation]:
    """A small history whose figures are worked out by hand in the tests."""
    out = []
    for n in range(1, 11):  # ten requests of function f, version 1: 1 .. 10 ms
        out.append(
            Invocation(
                start=n * SECOND,
                duration_ms=float(n),
                function="f",
                model_version="1",
                status="error" if n in (3, 7) else "ok",
                error_type="E" if n in (3, 7) else None,
                cold_start=n in (1, 6),
                init_ms={1: 100.0, 6: 300.0}.get(n),
                stages={"inference": n - 0.5},
            )
        )
    out.append(
        Invocation(
            start=11 * SECOND,
            duration_ms=900.0,
            function="f",
            model_version="1",
            kind="timeout",
            status="error",
            stages={"preprocess": 1.0},
        )
    )
    out.append(
        Invocation(
            start=12 * SECOND,
            duration_ms=50.0,
            function="f",
            model_version="1",
            kind="warmup",
            init_ms=200.0,
        )
    )
    # the shadow: its lines carry detail with different probabilities
    for n, rate, stage in ((1, 0.5, 1.0), (2, 0.5, None), (3, 1.0, 3.0), (4, 1.0, 5.0)):
        out.append(
            Invocation(
                start=(20 + n) * SECOND,
                duration_ms=float(n),
                function="f",
                model_version="1",
                variant="shadow",
                sample_rate=rate,
                stages=None if stage is None else {"inference": stage},
            )
        )
    return out


def write_lines(path: Path) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records()))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.output.strip() == f"inferobs {inferobs.__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 1
    assert "No such command 'frobnicate'" in result.output


def test_report_figures_match_the_hand_computed_ones(tmp_path: Path) -> None:
    result = invoke(
        "report", "--source", str(write_lines(tmp_path / "lines.jsonl")), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    main_group, shadow = json.loads(result.output)["operations"]
    names = ("function", "model", "model_version", "variant")
    assert tuple(main_group[name] for name in names) == ("f", None, "1", None)
    assert main_group["invocations"] == 11  # ten requests and the timeout; not the warm-up
    assert main_group["errors"] == 3  # two errors and the timeout
    assert main_group["error_rate"] == 3 / 11
    assert main_group["timeouts"] == 1
    assert main_group["cold_starts"] == 2 and main_group["cold_start_rate"] == 2 / 11
    assert main_group["warmups"] == 1
    # nearest rank over 1..10 ms (the timeout's cut-short 900 ms is left out)
    assert main_group["duration_ms"] == {"p50": 5.0, "p95": 10.0, "p99": 10.0}
    # the inits requests waited for (100, 300); not the warm-up's 200
    assert main_group["cold_init_ms"] == {"p50": 100.0, "p95": 300.0, "p99": 300.0}
    assert main_group["stages_ms"] == {"inference": {"p50": 4.5, "p95": 9.5, "p99": 9.5}}
    assert shadow["variant"] == "shadow" and shadow["invocations"] == 4
    # 1.0 stands for two requests (rate 1/2), 3.0 and 5.0 for one each: half the
    # weight is at 1.0 (unweighted, the median would be 3.0)
    assert shadow["stages_ms"] == {"inference": {"p50": 1.0, "p95": 5.0, "p99": 5.0}}


def test_report_formats_and_filters(tmp_path: Path) -> None:
    source = str(write_lines(tmp_path / "lines.jsonl"))
    table = invoke("report", "--source", source)
    assert "Operations" in table.output and "shadow" in table.output
    markdown = invoke("report", "--source", source, "--format", "markdown")
    assert markdown.output.startswith("## Operations\n\n| function | model | model version |")
    late = json.loads(
        invoke(
            "report", "--source", source, "--format", "json", "--since", "1970-01-01T00:00:22Z"
        ).output
    )["operations"]
    assert [g["invocations"] for g in late] == [3]
    none = json.loads(
        invoke("report", "--source", source, "--format", "json", "--function", "other").output
    )
    assert none == {"operations": [], "stages": []}


def test_report_on_the_store_and_on_bad_sources(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path / "store"))
    for record in records():
        store.export(record)
    store.flush()
    from_store = json.loads(
        invoke("report", "--source", str(tmp_path / "store"), "--format", "json").output
    )
    from_lines = json.loads(
        invoke(
            "report", "--source", str(write_lines(tmp_path / "l.jsonl")), "--format", "json"
        ).output
    )
    assert from_store == from_lines
    foreign = tmp_path / "app.log"
    foreign.write_text("just a log line\n")
    result = CliRunner().invoke(main, ["report", "--source", str(foreign)])
    assert result.exit_code == 1
    assert f"{foreign}: holds no inferobs records" in result.output
    corrupt = tmp_path / "mixed.jsonl"
    corrupt.write_text(records()[0].to_json() + "\n" + '{"event":"inferobs.invocation"}\n')
    mixed = CliRunner().invoke(main, ["report", "--source", str(corrupt), "--format", "json"])
    assert mixed.exit_code == 0
    assert f"warning: {corrupt}:2: schema=None" in mixed.stderr
    assert json.loads(mixed.stdout)["operations"][0]["invocations"] == 1


def test_since_accepts_durations_and_times() -> None:
    now = 10_000 * SECOND
    assert parse_since("30m", now) == now - 1800 * SECOND
    assert parse_since("2h", now) == now - 7200 * SECOND
    assert parse_since("1970-01-01T00:00:10Z", now) == 10 * SECOND


def test_tail_shows_the_latest_records(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path))
    for record in records():
        store.export(record)
    store.flush()
    result = invoke("tail", "--source", str(tmp_path), "--no-follow", "-n", "3")
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert all(" f 1/shadow ok " in line for line in lines)


def test_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "obs")
    out = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("inferobs ")


def test_the_demo_runs_end_to_end_and_reports(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--store", str(store), "--minutes", "480", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (group,) = report["operations"]
    assert group["function"] == "demo-classifier" and group["invocations"] > 20
    assert group["cold_starts"] >= 1 and group["cold_init_ms"]["p50"] > 50  # imports + weights
    assert [s["stage"] for s in report["stages"]] == ["preprocess", "inference", "postprocess"]
    # and it ends with the cost answer: every option priced, one recommended or why not
    (costs,) = report["costs"]["functions"]
    assert costs["function"] == "demo-classifier" and costs["requests"] == group["invocations"]
    assert costs["current"]["policy"] == "on-demand" and costs["current"]["cost_usd"] > 0
    assert report["costs"]["slo"]["max_cold_start_rate"] == 0.01
    assert costs["recommendation"]["reason"]
    assert "cold starts" in result.stderr
    records = read([str(store)]).records
    assert len(records) == group["invocations"]
    assert all(
        r.input == {"kind": "ndarray", "shape": [32, 30], "dtype": "float64", "nbytes": 7680}
        for r in records
        if r.status == "ok"
    )
    # and with the drift answer: the demo's shift alerts on the feature it moved only
    drift = report["drift"]
    assert drift["windows"] > 0 and 0 < drift["coverage"]["share"] <= 1
    alerted = {f["subject"] for f in drift["findings"] if f["level"] == "alert"}
    assert "worst texture" in alerted
    assert alerted.isdisjoint({"mean radius", "mean texture", "worst smoothness"})


def test_tail_follows_records_written_while_it_runs(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path), batch_size=1)
    store.export(records()[0])
    script = os.path.join(os.path.dirname(sys.executable), "obs")
    follower = subprocess.Popen(
        [script, "tail", "--source", str(tmp_path), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert follower.stdout is not None
        assert " f 1 " in follower.stdout.readline()  # what was there
        store.export(records()[-1])  # written while it follows
        assert " f 1/shadow ok " in follower.stdout.readline()
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_names_are_shown_as_written_not_read_as_markup(tmp_path: Path) -> None:
    lines = tmp_path / "odd.jsonl"
    odd = Invocation(
        start=1, duration_ms=1.0, service="svc", model_version="v[base]", stages={"post[/]": 1.0}
    )
    lines.write_text(odd.to_json() + "\n")
    result = invoke("report", "--source", str(lines))
    assert result.exit_code == 0
    assert "v[base]" in result.output and "post[/]" in result.output
    by_service = json.loads(
        invoke("report", "--source", str(lines), "--format", "json", "--function", "svc").output
    )
    assert [g["function"] for g in by_service["operations"]] == ["svc"]


def test_the_demo_replaces_only_its_own_store_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(
        main, ["demo", "--store", str(tmp_path), "--minutes", "1", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
    report = json.loads(result.stdout)  # a minute may bring no request: still a report
    assert set(report) == {"operations", "stages", "costs", "drift"}


def test_report_warns_of_records_that_never_reached_the_store(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path))
    for record in records():
        store.export(record)
    assert store.flush()
    connection = sqlite3.connect(tmp_path / "records.db")
    with connection:  # what a writer leaves after dropping records it could not store
        connection.execute("INSERT INTO meta (key, value) VALUES ('dropped', '14')")
    connection.close()
    result = CliRunner().invoke(main, ["report", "--source", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0
    assert (
        f"warning: {tmp_path / 'records.db'}: 14 records never reached this store: "
        "its writers dropped them while it could not be written"
    ) in result.stderr.splitlines()
    json.loads(result.stdout)  # the report itself is still whole


def demo_rows(store: Path) -> int:
    connection = sqlite3.connect(store / "records.db")
    try:
        (rows,) = connection.execute("SELECT count(*) FROM invocations").fetchone()
    finally:
        connection.close()
    return int(rows)


def test_the_demo_replaces_its_own_store_and_takes_an_empty_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    connect(str(empty)).close()  # a store, with no rows in it
    for _ in range(2):  # the second run replaces what the first wrote
        result = CliRunner().invoke(
            main, ["demo", "--store", str(empty), "--minutes", "120", "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        (group,) = json.loads(result.stdout)["operations"]
        assert demo_rows(empty) == group["invocations"]


def test_the_demo_takes_over_a_store_an_older_demo_wrote(tmp_path: Path) -> None:
    """Stores the demo wrote before it marked them hold only its own function's records."""
    store = StoreExporter(str(tmp_path))
    store.export(Invocation(start=SECOND, duration_ms=1.0, function="demo-classifier"))
    assert store.flush()
    result = CliRunner().invoke(
        main, ["demo", "--store", str(tmp_path), "--minutes", "60", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
