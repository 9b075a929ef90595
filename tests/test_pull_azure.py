"""`obs pull azure`: azure-monitor-query and azure-monitor-querymetrics against an HTTP
server on 127.0.0.1 (tests/azure_peer.py), into the store.

``DefaultAzureCredential`` would sign in with Entra ID (and probe the instance
metadata service), which is not on loopback: the tests hand the clients a
credential that gives the peer's token instead (`StaticToken`), and the peer
refuses any request without it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import inferobs.pull.azure
from inferobs.cli import main
from inferobs.export.lines import encode
from inferobs.read import read
from inferobs.record import Invocation

from .azure_peer import RESOURCE, TOKEN, WORKSPACE, AzurePeer, StaticToken, azure_peer
from .helpers import stored

SECOND_NS = 1_000_000_000


@pytest.fixture(scope="module")
def peer() -> Iterator[AzurePeer]:
    with azure_peer() as started:
        yield started


@pytest.fixture(autouse=True)
def azure_env(monkeypatch: pytest.MonkeyPatch, peer: AzurePeer) -> None:
    monkeypatch.setenv("INFEROBS_AZURE_LOGS_ENDPOINT", peer.url)
    monkeypatch.setenv("INFEROBS_AZURE_METRICS_ENDPOINT", peer.url)
    monkeypatch.setattr(inferobs.pull.azure, "_default_credential", StaticToken)
    peer.faults.clear()
    peer.requests.clear()


def serve(peer: AzurePeer, app: str, count: int, start_ns: int, every_ns: int) -> list[int]:
    """``count`` of our lines in the app's traces, as the Python worker's stdout lands;
    their starts."""
    starts = []
    for index in range(count):
        start = start_ns + index * every_ns + 789
        starts.append(start)
        line = encode(
            Invocation(
                id=f"{app}-{index}",
                start=start,
                duration_ms=31.0,
                function=app,
                platform="azure_functions",
                cold_start=index == 0,
                init_ms=1500.0 if index == 0 else None,
            ).to_dict()
        )
        at = datetime.fromtimestamp((start + 31_000_000) / 1e9, tz=timezone.utc)
        peer.rows.append((at, app, "AppTraces", line))
    return starts


def pull(store: Path, *arguments: str) -> Any:
    result = CliRunner().invoke(
        main,
        ["pull", "azure", "--store", str(store), "--workspace", WORKSPACE, *arguments],
        catch_exceptions=False,
    )
    assert TOKEN not in result.output
    return result


def test_lines_and_platform_metrics_come_back_and_a_plan_s_missing_metrics_are_named(
    peer: AzurePeer, tmp_path: Path
) -> None:
    now = time.time_ns()
    starts = serve(peer, "scorer-app", 300, now - 3600 * SECOND_NS, 5 * SECOND_NS)
    moment = datetime.fromtimestamp(now / 1e9, tz=timezone.utc)
    peer.rows.append((moment - timedelta(minutes=3), "scorer-app", "AppTraces", "Executing 'f'"))
    peer.rows.append(
        (
            moment - timedelta(minutes=2),
            "other-app",
            "AppTraces",
            encode(Invocation(id="x", start=now - 10**11, duration_ms=1.0).to_dict()),
        )
    )
    peer.metrics["FunctionExecutionCount"] = [(moment - timedelta(minutes=30), 12.0)]
    peer.metrics["FunctionExecutionUnits"] = [(moment - timedelta(minutes=30), 51200.0)]

    result = pull(
        tmp_path,
        "--function",
        "scorer-app",
        "--since",
        "2h",
        "--resource-id",
        RESOURCE,
        "--region",
        "eastus",
    )

    assert result.exit_code == 0, result.output
    assert "Log Analytics: 300 log events, 300 records" in result.output
    assert "Azure Monitor metrics: 2 metric points" in result.output
    assert "the function app has no metric OnDemandFunctionExecutionCount" in result.output
    records = read([str(tmp_path)]).records
    assert [r.start for r in records] == starts  # the line is text: to the nanosecond
    assert stored(tmp_path, "SELECT metric, statistic, value FROM metric_points ORDER BY 1") == [
        ("FunctionExecutionCount", "Total", 12.0),
        ("FunctionExecutionUnits", "Total", 51200.0),
    ]
    assert TOKEN.encode() not in (tmp_path / "records.db").read_bytes()
    (route, body, _) = peer.requests[0]
    assert route == "query" and 'AppRoleName =~ "scorer-app"' in body["query"]


def test_a_full_stretch_is_halved_and_nothing_on_a_border_counts_twice(
    peer: AzurePeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inferobs.pull.azure, "_ROWS", 100)
    now = time.time_ns()
    serve(peer, "dense", 1000, now - 1800 * SECOND_NS, SECOND_NS)

    result = pull(tmp_path, "--function", "dense", "--since", "1h")

    assert result.exit_code == 0, result.output
    ids = [r.id for r in read([str(tmp_path)]).records]
    assert len(ids) == len(set(ids)) == 1000
    queries = [body for route, body, _ in peer.requests if route == "query"]
    assert len(queries) > 10  # stretches of at most 100 rows


def test_throttling_is_retried_and_a_refused_token_stops_the_pull_which_then_resumes(
    peer: AzurePeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inferobs.pull.azure, "_ROWS", 100)
    now = time.time_ns()
    serve(peer, "flaky", 600, now - 3000 * SECOND_NS, 4 * SECOND_NS)
    peer.fail("query", 429)  # Retry-After: 1, then answered
    peer.fail("query", 401, after=3)

    result = pull(tmp_path, "--function", "flaky", "--since", "1h")

    assert result.exit_code == 1
    assert "the Azure credentials were refused (401): sign in again (az login)" in result.output
    kept = stored(tmp_path, "SELECT count(*) FROM invocations")[0][0]
    assert 0 < kept < 600 and f"the {kept} records" in result.output
    rerun = pull(tmp_path, "--function", "flaky", "--since", "1h")
    assert rerun.exit_code == 0, rerun.output
    ids = [r.id for r in read([str(tmp_path)]).records]
    assert len(ids) == len(set(ids)) == 600


def test_what_our_exporters_wrote_pulled_back_gives_the_figures_of_the_embedded_store(
    peer: AzurePeer, tmp_path: Path
) -> None:
    from inferobs.demo import BASELINE_FILE, run_demo

    local, pulled = tmp_path / "local", tmp_path / "pulled"
    run_demo(str(local), minutes=8 * 60, bursts_per_hour=40)
    reading = read([str(local)])
    for made in reading.records:
        end = made.start + int(made.duration_ms * 1e6)
        at = datetime.fromtimestamp(end / 1e9, tz=timezone.utc)
        peer.rows.append((at, "demo-app", "AppTraces", encode(made.to_dict())))
    for window in reading.windows:
        at = datetime.fromtimestamp(min(window["window_end"], time.time_ns()) / 1e9, timezone.utc)
        peer.rows.append((at, "demo-app", "FunctionAppLogs", encode(window)))

    summary = inferobs.pull.azure.pull(
        "demo-app",
        str(pulled),
        time.time_ns() - 9 * 3600 * SECOND_NS,
        time.time_ns(),
        workspace=WORKSPACE,
        credential=StaticToken(),
    )

    assert summary.counts.records == len(reading.records)
    runner = CliRunner()
    costs = ["report", "--costs", "--format", "json", "--provider", "aws"]
    here = json.loads(runner.invoke(main, [*costs, "--source", str(local)]).stdout)
    there = json.loads(runner.invoke(main, [*costs, "--source", str(pulled)]).stdout)
    assert here == there and there["functions"][0]["requests"] == len(reading.records)
    drift = ["report", "--drift", "--baseline", str(local / BASELINE_FILE), "--format", "json"]
    here_drift = runner.invoke(main, [*drift, "--source", str(local)])
    there_drift = runner.invoke(main, [*drift, "--source", str(pulled)])
    assert here_drift.exit_code == there_drift.exit_code == 3
    assert json.loads(here_drift.stdout) == json.loads(there_drift.stdout)
