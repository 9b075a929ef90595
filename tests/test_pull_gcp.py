"""`obs pull gcp`: the official Google clients against gRPC servers on 127.0.0.1
(tests/gcp_peer.py), into the store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner

from inferobs.cli import main
from inferobs.export.lines import encode
from inferobs.read import read
from inferobs.record import Invocation

from .gcp_peer import PROJECT, GcpPeer, entry_of, gcp_peer, series_of, utc
from .helpers import stored

SECOND_NS = 1_000_000_000


@pytest.fixture(scope="module")
def peer() -> Iterator[GcpPeer]:
    with gcp_peer() as started:
        yield started


@pytest.fixture(autouse=True)
def gcp_env(monkeypatch: pytest.MonkeyPatch, peer: GcpPeer) -> None:
    monkeypatch.setenv("INFEROBS_GCP_LOGGING_ENDPOINT", peer.address)
    monkeypatch.setenv("INFEROBS_GCP_MONITORING_ENDPOINT", peer.address)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    peer.faults.clear()
    peer.requests.clear()


def record(index: int, start_ns: int, service: str, **fields: Any) -> dict[str, Any]:
    """One of our records as its JSON line says it (what Cloud Run parses into a Struct)."""
    made = Invocation(
        id=f"{service}-{index}",
        start=start_ns,
        duration_ms=fields.pop("duration_ms", 25.5),
        function=service,
        platform="gcp_cloud_run",
        stages={"preprocess": 2.25, "inference": 20.0},
        stage_starts={"preprocess": 0.0, "inference": 2.25},
        **fields,
    )
    data: dict[str, Any] = json.loads(encode(made.to_dict()))
    return data


def serve(peer: GcpPeer, service: str, count: int, start_ns: int, every_ns: int) -> list[int]:
    """``count`` of our records in the peer's log, as Cloud Run keeps stdout; their starts."""
    starts = []
    for index in range(count):
        start = start_ns + index * every_ns + 123_456  # nanoseconds a double cannot carry
        starts.append(start)
        line = record(
            index, start, service, cold_start=index == 0, init_ms=700.0 if index == 0 else None
        )
        peer.entries.append(entry_of(line, utc(start + 30_000_000), service))
    peer.entries.sort(key=lambda entry: entry.timestamp)
    return starts


def pull(store: Path, *arguments: str) -> Any:
    return CliRunner().invoke(
        main, ["pull", "gcp", "--store", str(store), *arguments], catch_exceptions=False
    )


def test_records_come_back_from_their_struct_with_integers_and_starts_to_the_microsecond(
    peer: GcpPeer, tmp_path: Path
) -> None:
    now = time.time_ns()
    starts = serve(peer, "ranker", 2500, now - 3600 * SECOND_NS, SECOND_NS)
    # a line with a prefix Cloud Logging did not parse, and others' entries
    peer.entries.append(
        entry_of(
            "2026-12-03 10:00:00 " + encode(record(9999, now - 60 * SECOND_NS, "ranker")),
            utc(now - 59 * SECOND_NS),
            "ranker",
        )
    )
    peer.entries.append(
        entry_of({"message": "the app's own log"}, utc(now - 50 * SECOND_NS), "ranker")
    )
    peer.entries.append(
        entry_of(record(1, now - 40 * SECOND_NS, "other"), utc(now - 39 * SECOND_NS), "other")
    )
    peer.series["run.googleapis.com/request_count"] = [
        series_of(
            "run.googleapis.com/request_count", "ranker", [(utc(now - 3000 * SECOND_NS), 2600.0)]
        )
    ]

    result = pull(tmp_path, "--function", "ranker", "--since", "2h")

    assert result.exit_code == 0, result.output
    assert "Cloud Logging: 2,501 log events, 2,501 records" in result.output
    assert "Cloud Monitoring: 1 metric points" in result.output
    reading = read([str(tmp_path)])
    assert not reading.problems and len(reading.records) == 2501
    first = next(r for r in reading.records if r.id == "ranker-0")
    # a double carries a nanosecond time to 256 ns: read back to a microsecond within it
    assert first.start % 1000 == 0 and abs(first.start - starts[0]) < 1000
    assert first.schema == 1 and isinstance(first.schema, int)
    assert first.cold_start and first.init_ms == 700.0
    assert first.stages == {"preprocess": 2.25, "inference": 20.0}
    assert stored(tmp_path, "SELECT metric, statistic, period_s, value FROM metric_points") == [
        ("run.googleapis.com/request_count", "Sum", 60, 2600.0)
    ]
    costs = CliRunner().invoke(
        main, ["report", "--costs", "--source", str(tmp_path), "--format", "json"]
    )
    (priced,) = json.loads(costs.stdout)["functions"]
    assert priced["platform_count"] == {
        "service": "Cloud Monitoring",
        "metric": "run.googleapis.com/request_count",
        "invocations": 2600,
        "recorded_share": round(2501 / 2600, 4),
    }
    (filtered,) = [request for method, request in peer.requests if method == "ListTimeSeries"][:1]
    assert 'resource.labels.service_name = "ranker"' in filtered.filter
    assert filtered.aggregation.alignment_period.seconds == 60


def test_a_record_fetched_twice_counts_once_and_the_next_pull_reads_only_what_is_new(
    peer: GcpPeer, tmp_path: Path
) -> None:
    now = time.time_ns()
    serve(peer, "twice", 50, now - 180 * SECOND_NS, SECOND_NS)
    copy = next(e for e in peer.entries if e.json_payload and e.json_payload["id"] == "twice-3")
    peer.entries.append(copy)  # Cloud Logging delivered one line twice
    peer.entries.sort(key=lambda entry: entry.timestamp)
    assert pull(tmp_path, "--function", "twice", "--since", "1h").exit_code == 0
    serve(peer, "twice", 1, now + 1 * SECOND_NS - 120_000_000, SECOND_NS)  # one more, later
    peer.requests.clear()

    second = pull(tmp_path, "--function", "twice", "--since", "1h")

    assert second.exit_code == 0, second.output
    (logs,) = [request for method, request in peer.requests if method == "ListLogEntries"]
    assert 'timestamp >= "' in logs.filter
    ids = [r.id for r in read([str(tmp_path)]).records]
    assert len(ids) == len(set(ids)) == 50  # twice-0 again, counted once; twice-3 too
    assert "already stored" in second.output


def test_throttling_is_retried_and_a_failed_page_is_resumed(peer: GcpPeer, tmp_path: Path) -> None:
    now = time.time_ns()
    serve(peer, "paged", 3500, now - 3000 * SECOND_NS, 500_000_000)
    peer.fail("ListLogEntries", grpc.StatusCode.RESOURCE_EXHAUSTED, times=1)
    peer.fail("ListLogEntries", grpc.StatusCode.UNAUTHENTICATED, after=2)

    result = pull(tmp_path, "--function", "paged", "--since", "1h")

    assert result.exit_code == 1
    assert "the Google Cloud credentials were refused (UNAUTHENTICATED)" in result.output
    assert "the 2000 records" in result.output  # two pages of 1,000 kept
    peer.requests.clear()
    rerun = pull(tmp_path, "--function", "paged", "--since", "1h")
    assert rerun.exit_code == 0, rerun.output
    first = next(request for method, request in peer.requests if method == "ListLogEntries")
    assert first.page_token == "2000"  # from the page kept
    assert len({r.id for r in read([str(tmp_path)]).records}) == 3500


def test_what_our_exporters_wrote_pulled_back_gives_the_figures_of_the_embedded_store(
    peer: GcpPeer, tmp_path: Path
) -> None:
    from inferobs.demo import BASELINE_FILE, run_demo

    local, pulled = tmp_path / "local", tmp_path / "pulled"
    run_demo(str(local), minutes=8 * 60, bursts_per_hour=40)
    reading = read([str(local)])
    for made in reading.records:
        line = json.loads(encode(made.to_dict()))
        peer.entries.append(entry_of(line, utc(made.start + int(made.duration_ms * 1e6)), "demo"))
    for window in reading.windows:
        peer.entries.append(
            entry_of(window, utc(min(window["window_end"], time.time_ns())), "demo")
        )
    peer.entries.sort(key=lambda entry: entry.timestamp)

    # the demo's function is named as on Lambda: Cloud Run's service is "demo"
    result = pull(pulled, "--function", "demo", "--since", "9h")

    assert result.exit_code == 0, result.output
    runner = CliRunner()
    costs = ["report", "--costs", "--format", "json", "--provider", "aws"]
    here = json.loads(runner.invoke(main, [*costs, "--source", str(local)]).stdout)
    there = json.loads(runner.invoke(main, [*costs, "--source", str(pulled)]).stdout)
    assert there["functions"][0]["requests"] == len(reading.records)
    # the same answer: the starts came back to the microsecond, so times and the window's
    # length may differ in the sixth decimal place of a second, and nothing else
    assert_close(here, there)
    drift = ["report", "--drift", "--baseline", str(local / BASELINE_FILE), "--format", "json"]
    here_drift = runner.invoke(main, [*drift, "--source", str(local)])
    there_drift = runner.invoke(main, [*drift, "--source", str(pulled)])
    assert here_drift.exit_code == there_drift.exit_code == 3
    assert json.loads(here_drift.stdout) == json.loads(there_drift.stdout)


def assert_close(here: Any, there: Any, where: str = "") -> None:
    """Equal, but for numbers within a millionth and times within a microsecond."""
    if isinstance(here, dict) and isinstance(there, dict):
        assert here.keys() == there.keys(), where
        for key in here:
            assert_close(here[key], there[key], f"{where}.{key}")
    elif isinstance(here, list) and isinstance(there, list):
        assert len(here) == len(there), where
        for index, (a, b) in enumerate(zip(here, there, strict=True)):
            assert_close(a, b, f"{where}[{index}]")
    elif isinstance(here, float) or isinstance(there, float):
        assert here == pytest.approx(there, rel=1e-6, abs=1e-6), where
    elif isinstance(here, str) and here != there and here.endswith("Z"):
        moments = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (here, there)]
        assert abs((moments[0] - moments[1]).total_seconds()) <= 1e-6, where
    else:
        assert here == there, where


def test_a_record_in_a_local_store_and_pulled_back_through_a_double_counts_once(
    peer: GcpPeer, tmp_path: Path
) -> None:
    from inferobs.analyze.frames import read_frames
    from inferobs.export.store import StoreExporter

    local, pulled = tmp_path / "local", tmp_path / "pulled"
    now = time.time_ns()
    starts = serve(peer, "both", 200, now - 600 * SECOND_NS, SECOND_NS)
    store = StoreExporter(str(local))
    for index, start in enumerate(starts):  # the same records, exact, as written
        first = index == 0
        line = record(index, start, "both", cold_start=first, init_ms=700.0 if first else None)
        store.export(Invocation.from_dict(line))
    assert store.flush()
    assert pull(pulled, "--function", "both", "--since", "1h").exit_code == 0
    pulled_starts = {r.start for r in read([str(pulled)]).records}
    assert pulled_starts != set(starts)  # not to the nanosecond...

    sources = [str(local), str(pulled)]
    assert len(read(sources).records) == 200  # ...but one record each
    assert read_frames(sources).count() == 200
