"""`obs pull aws`: boto3 against moto's server on 127.0.0.1 (tests/aws_peer.py), into the store.

Nothing here needs an AWS account or leaves loopback: boto3 is pointed at the
peer with ``AWS_ENDPOINT_URL``, and the credentials are markers that must never
show up in anything the pull writes or prints.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inferobs.cli import main
from inferobs.export.lines import LineExporter
from inferobs.export.store import STORE_SCHEMA_VERSION
from inferobs.pull.landing import Covered
from inferobs.pull.plan import MINUTE_NS, OVERLAP_NS, done, plan
from inferobs.read import read
from inferobs.record import Invocation
from inferobs_aws.emf import EMFExporter

from .aws_peer import REGION, AwsPeer, asked, aws_peer, now_ms
from .helpers import stored

KEY_MARKER = "AKIAPULLTESTMARKER01"
SECRET_MARKER = "pull-test-secret-marker"
TOKEN_MARKER = "pull-test-session-token-marker"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def peer() -> Iterator[AwsPeer]:
    with aws_peer() as started:
        yield started


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, peer: AwsPeer, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", peer.url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_MARKER)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_MARKER)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN_MARKER)
    # no shared files of this machine's user: only the environment's credentials
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    peer.faults.clear()


def record_line(index: int, start_ms: int, **fields: Any) -> tuple[int, str]:
    """One of our records as the stdout exporter with EMF writes it, at its end's time."""
    record = Invocation(
        id=f"req-{index}",
        start=start_ms * 1_000_000,
        duration_ms=fields.pop("duration_ms", 40.0),
        function=fields.pop("function", "scorer"),
        model="ranker",
        platform="aws_lambda",
        stages={"preprocess": 5.0, "inference": 30.0, "postprocess": 5.0},
        **fields,
    )
    stream = io.StringIO()
    LineExporter(stream, riders=(EMFExporter(environ={}),)).export(record)
    return start_ms + int(record.duration_ms) + 1, stream.getvalue().rstrip("\n")


def report_line(
    request: str, end_ms: int, duration_ms: float = 40.0, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    """Lambda's text REPORT line for ``request``, written just after its end."""
    text = (
        f"REPORT RequestId: {request}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
        f"{int(duration_ms) + 1} ms\tMemory Size: 2048 MB\tMax Memory Used: 300 MB\t"
    )
    text += "".join(f"{name}: {value}\t" for name, value in (extra or {}).items())
    return end_ms + 1, text


def invocations(
    first: int, count: int, start_ms: int, every_ms: int = 1000, function: str = "scorer"
) -> list[tuple[int, str]]:
    """``count`` invocations from ``start_ms``: our line, the platform's lines around it."""
    events = []
    for index in range(first, first + count):
        at = start_ms + (index - first) * every_ms
        events.append((at, f"START RequestId: req-{index} Version: $LATEST"))
        end, line = record_line(
            index,
            at,
            function=function,
            cold_start=index == first,
            init_ms=900.0 if index == first else None,
        )
        events.append((end, line))
        events.append((end, f"END RequestId: req-{index}"))
        events.append(
            report_line(
                f"req-{index}",
                end,
                extra={"Init Duration": "900.00 ms"} if index == first else None,
            )
        )
    return events


def pull(store: Path, *arguments: str) -> Any:
    result = CliRunner().invoke(
        main, ["pull", "aws", "--store", str(store), *arguments], catch_exceptions=False
    )
    for marker in (KEY_MARKER, SECRET_MARKER, TOKEN_MARKER):
        assert marker not in result.output
    return result


def test_a_pull_brings_back_our_records_the_platform_reports_metrics_and_the_configuration(
    peer: AwsPeer, tmp_path: Path
) -> None:
    peer.function(
        "scorer",
        memory_mb=2048,
        arch="arm64",
        timeout_s=60,
        environment={"DB_PASSWORD": "env-secret-marker"},
    )
    peer.provisioned["scorer"] = [{"qualifier": "live", "requested": 2, "allocated": 2}]
    start = now_ms() - 3 * HOUR_MS
    events = invocations(0, 300, start)
    # Lambda's JSON log format: the report is a platform.report event
    events.append(
        (
            start + 400_000,
            json.dumps(
                {
                    "time": "2026-12-01T10:00:00.000Z",
                    "type": "platform.report",
                    "record": {
                        "requestId": "req-json",
                        "metrics": {
                            "durationMs": 12.5,
                            "billedDurationMs": 13,
                            "memorySizeMB": 2048,
                            "maxMemoryUsedMB": 120,
                        },
                        "status": "success",
                    },
                }
            ),
        )
    )
    events.append((start + 500_000, '{"event": "inferobs.invocation", "start": "cut'))
    events.append((start + 500_001, "[INFO] the handler's own log line"))
    peer.log_events("/aws/lambda/scorer", "2026/12/03/[$LATEST]abc", events)
    # the platform counted a few more than the records hold (10 lines lost, say)
    peer.invocations_metric("scorer", 310.0, timedelta(hours=3) - timedelta(minutes=2))

    result = pull(tmp_path, "--function", "scorer", "--since", "6h")

    assert result.exit_code == 0, result.output
    assert "CloudWatch Logs: 1,203 log events, 300 records, 0 drift windows, " in result.output
    assert "301 platform reports, 1 unreadable lines set aside" in result.output
    assert "configuration: 2048 MB, arm64, timeout 60 s, provisioned concurrency 2" in result.output
    assert stored(tmp_path, "SELECT count(*) FROM invocations") == [(300,)]
    assert stored(tmp_path, "SELECT count(*) FROM platform_reports") == [(301,)]
    assert stored(
        tmp_path, "SELECT init_ms, memory_mb, max_memory_mb FROM platform_reports WHERE id='req-0'"
    ) == [(900.0, 2048, 300)]
    assert stored(tmp_path, "SELECT metric, statistic, period_s, value FROM metric_points") == [
        ("Invocations", "Sum", 60, 310.0)
    ]
    ((config, provisioned, arch),) = stored(
        tmp_path, "SELECT config, provisioned, arch FROM function_configs"
    )
    assert (provisioned, arch) == (2, "arm64")
    assert json.loads(config)["ProvisionedConcurrency"][0]["qualifier"] == "live"
    (aside,) = stored(tmp_path, "SELECT reason FROM set_aside")
    assert aside[0].startswith(
        "pulled from aws:us-east-1:scorer:logs:/aws/lambda/scorer: not a JSON line"
    )
    # what users keep secret stays out of the store: the function's environment, the keys
    database = (tmp_path / "records.db").read_bytes()
    for marker in ("env-secret-marker", KEY_MARKER, SECRET_MARKER, TOKEN_MARKER):
        assert marker.encode() not in database

    # the report prices the setup in force: 2 provisioned, arm64, 2048 MB
    priced = CliRunner().invoke(
        main, ["report", "--costs", "--source", str(tmp_path), "--format", "json"]
    )
    answer = json.loads(priced.stdout)
    (function,) = answer["functions"]
    assert answer["arch"] == "arm64"
    assert function["current"]["policy"] == "provisioned:2"
    assert "on-demand" in [option["policy"] for option in function["options"]]
    assert function["memory"]["configured_mb"] == 2048
    assert function["memory"]["max_used_mb"] == 300
    assert function["platform_count"] == {
        "service": "CloudWatch",
        "metric": "Invocations",
        "invocations": 310,
        "recorded_share": 0.971,  # 300 records, and the report of one without a record
    }
    table = CliRunner().invoke(main, ["report", "--costs", "--source", str(tmp_path)])
    assert (
        "Platform: CloudWatch counted 310 invocations in the window (Invocations); the "
        "data read holds 301 (97.1%)." in " ".join(table.stdout.split())
    )
    assert "1 record could not be read" in priced.stderr


def test_the_next_pull_fetches_only_what_is_new_and_counts_nothing_twice(
    peer: AwsPeer, tmp_path: Path
) -> None:
    peer.function("ticker")
    start = now_ms() - 101 * 60_000  # the last two end within the pull's overlap
    peer.log_events("/aws/lambda/ticker", "a", invocations(0, 100, start, every_ms=60_000)[:-8])
    first = pull(tmp_path, "--function", "ticker", "--since", "3h")
    assert first.exit_code == 0, first.output
    assert "98 records" in first.output
    # late events: two invocations that ended before the mark, and new ones after it
    late = invocations(0, 100, start, every_ms=60_000)[-8:]
    peer.log_events("/aws/lambda/ticker", "b", late + invocations(100, 5, now_ms() - 60_000, 1))
    del peer.requests[:]

    second = pull(tmp_path, "--function", "ticker", "--since", "3h")

    assert second.exit_code == 0, second.output
    (filtered,) = asked(peer, "FilterLogEvents")
    mark = stored(tmp_path, "SELECT mark FROM pulls WHERE source LIKE '%:logs:%'")[0][0]
    # the overlap: a few minutes before the mark, never the whole window again
    assert filtered["startTime"] * 1_000_000 >= mark - 2 * OVERLAP_NS - 2 * MINUTE_NS
    assert stored(
        tmp_path, "SELECT count(*), count(DISTINCT json_extract(record, '$.id')) FROM invocations"
    ) == [(105, 105)]
    assert stored(tmp_path, "SELECT count(*) FROM platform_reports") == [(105,)]
    reading = read([str(tmp_path)])
    assert len(reading.records) == 105 and not reading.problems


def test_throttling_is_retried_with_backoff(peer: AwsPeer, tmp_path: Path) -> None:
    peer.function("busy")
    peer.log_events("/aws/lambda/busy", "a", invocations(0, 10, now_ms() - HOUR_MS))
    peer.fail("FilterLogEvents", 400, "ThrottlingException", times=2)
    del peer.requests[:]

    result = pull(tmp_path, "--function", "busy", "--since", "2h")

    assert result.exit_code == 0, result.output
    assert len(asked(peer, "FilterLogEvents")) == 3  # two throttled, the third answered
    assert stored(tmp_path, "SELECT count(*) FROM invocations") == [(10,)]


def test_a_pull_that_fails_part_way_keeps_its_pages_and_the_rerun_resumes_after_them(
    peer: AwsPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: the first error stops the pull
    peer.function("long")
    # 24,000 events: pages of 10,000, and the third page's request is refused
    peer.log_events("/aws/lambda/long", "a", invocations(0, 6000, now_ms() - 2 * HOUR_MS, 1))
    peer.fail("FilterLogEvents", 400, "ThrottlingException", after=2)

    result = pull(tmp_path, "--function", "long", "--since", "3h")

    assert result.exit_code == 1
    assert "CloudWatch Logs kept throttling (ThrottlingException) past the retries" in result.output
    kept = stored(tmp_path, "SELECT count(*) FROM invocations")[0][0]
    assert 4900 <= kept <= 5100  # what the two pages held
    assert f"the {kept} records" in result.output and "the next pull resumes" in result.output
    assert "not fetched yet: CloudWatch Logs from 20" in result.output  # the piece's start
    assert " on, CloudWatch metrics; " in result.output
    ((resume,),) = stored(tmp_path, "SELECT resume FROM pulls WHERE source LIKE '%:logs:%'")
    assert json.loads(resume)["token"]
    del peer.requests[:]

    rerun = pull(tmp_path, "--function", "long", "--since", "3h")

    assert rerun.exit_code == 0, rerun.output
    assert asked(peer, "FilterLogEvents")[0].get("nextToken")  # from the page kept, not the start
    assert stored(
        tmp_path, "SELECT count(*), count(DISTINCT json_extract(record, '$.id')) FROM invocations"
    ) == [(6000, 6000)]
    assert stored(tmp_path, "SELECT count(*) FROM platform_reports") == [(6000,)]
    assert stored(tmp_path, "SELECT resume FROM pulls WHERE source LIKE '%:logs:%'") == [(None,)]


def test_expired_credentials_are_named_and_never_shown(peer: AwsPeer, tmp_path: Path) -> None:
    peer.function("guarded")
    peer.log_events("/aws/lambda/guarded", "a", invocations(0, 5, now_ms() - HOUR_MS))
    peer.fail("FilterLogEvents", 400, "ExpiredTokenException")

    result = pull(tmp_path, "--function", "guarded", "--since", "2h")

    assert result.exit_code == 1
    assert "the AWS credentials were refused (ExpiredTokenException): refresh them" in result.output
    rerun = pull(tmp_path, "--function", "guarded", "--since", "2h")
    assert rerun.exit_code == 0 and "5 records" in rerun.output


def test_bad_input_is_named(peer: AwsPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = pull(tmp_path, "--function", "nowhere", "--since", "2h")
    assert result.exit_code == 1
    assert "the function's configuration could not be read (there is no function nowhere" in (
        result.output
    )
    assert "no log group /aws/lambda/nowhere in this region: pass --log-group" in result.output
    assert pull(tmp_path, "--function", "f", "--since", "soon").exit_code == 1
    assert (
        "'soon': expected a duration" in pull(tmp_path, "--function", "f", "--since", "soon").output
    )
    late = pull(tmp_path, "--function", "f", "--since", "1h", "--until", "2h")
    assert "must be after --since" in late.output
    monkeypatch.delenv("AWS_REGION")
    assert "no AWS region: pass --region" in pull(tmp_path, "--function", "f").output
    missing = pull(tmp_path, "--function", "f", "--profile", "ghost", "--region", REGION)
    assert "no AWS profile named 'ghost'" in missing.output


def test_report_costs_from_a_cloud_source_pulls_first(
    peer: AwsPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFEROBS_STORE_PATH", str(tmp_path))
    peer.function("direct", memory_mb=1024)
    peer.log_events(
        "/aws/lambda/direct", "a", invocations(0, 200, now_ms() - 2 * HOUR_MS, 30_000, "direct")
    )

    result = CliRunner().invoke(
        main, ["report", "--costs", "--source", "aws:direct", "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    (function,) = json.loads(result.stdout)["functions"]
    assert function["function"] == "direct" and function["requests"] == 200
    assert function["current"]["policy"] == "on-demand"
    assert stored(tmp_path, "SELECT count(*) FROM invocations") == [(200,)]


def test_pieces_cover_what_is_not_read_and_the_read_stretch_grows_with_each() -> None:
    hour = 60 * MINUTE_NS
    assert plan(None, 0, 5 * hour, 2 * hour) == [
        (0, 2 * hour),
        (2 * hour, 4 * hour),
        (4 * hour, 5 * hour),
    ]
    covered = Covered(10 * hour, 20 * hour, None)
    assert plan(covered, 12 * hour, 21 * hour, 6 * hour) == [(20 * hour - OVERLAP_NS, 21 * hour)]
    backfill = plan(covered, 4 * hour, 20 * hour, 3 * hour)
    assert backfill[0] == (10 * hour, 10 * hour + OVERLAP_NS)  # newest first, before the stretch
    assert backfill[-1] == (4 * hour, 7 * hour)
    grown = covered
    for piece in backfill:
        grown = done(grown, piece)
        assert grown.mark == 20 * hour
    assert grown.first == 4 * hour
    later = done(covered, (30 * hour, 31 * hour))  # a later window starts a stretch of its own
    assert (later.first, later.mark) == (30 * hour, 31 * hour)


def test_a_store_of_the_previous_layout_is_migrated_in_place_when_pulled_into(
    tmp_path: Path, peer: AwsPeer
) -> None:
    layout_2_store(tmp_path)
    peer.function("migrated")
    peer.log_events("/aws/lambda/migrated", "a", invocations(0, 3, now_ms() - HOUR_MS))

    result = pull(tmp_path, "--function", "migrated", "--since", "2h")

    assert result.exit_code == 0, result.output
    assert stored(tmp_path, "SELECT value FROM meta WHERE key = 'schema'") == [
        (str(STORE_SCHEMA_VERSION),)
    ]
    assert {r.id for r in read([str(tmp_path)]).records} == {"old", "req-0", "req-1", "req-2"}


# The store as layout 2 laid it out (inferobs before `obs pull`).
LAYOUT_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE invocations (
    start INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, function TEXT,
    version TEXT, model TEXT, model_version TEXT, variant TEXT, instance_id TEXT,
    cold_start INTEGER NOT NULL, duration_ms REAL NOT NULL, record TEXT NOT NULL
);
CREATE INDEX invocations_by_start ON invocations (start);
CREATE TABLE set_aside (at INTEGER NOT NULL, reason TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE drift_windows (
    window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, function TEXT, model TEXT,
    model_version TEXT, variant TEXT, instance_id TEXT, baseline_hash TEXT NOT NULL,
    observations INTEGER NOT NULL, shape TEXT NOT NULL, counts BLOB NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX drift_windows_by_baseline ON drift_windows (baseline_hash, window_start);
INSERT INTO meta VALUES ('schema', '2');
"""


def layout_2_store(path: Path) -> None:
    record = Invocation(id="old", start=(now_ms() - HOUR_MS) * 1_000_000, duration_ms=3.0)
    connection = sqlite3.connect(path / "records.db")
    connection.executescript(LAYOUT_2)
    connection.execute(
        "INSERT INTO invocations VALUES (?, 'invocation', 'ok', NULL, NULL, NULL, NULL, NULL,"
        " NULL, 0, 3.0, ?)",
        (record.start, record.to_json()),
    )
    connection.commit()
    connection.close()


def test_what_our_exporters_wrote_pulled_back_gives_the_figures_of_the_embedded_store(
    peer: AwsPeer, tmp_path: Path
) -> None:
    from inferobs.demo import BASELINE_FILE, DEMO_FUNCTION, run_demo

    local, pulled = tmp_path / "local", tmp_path / "pulled"
    run_demo(str(local), minutes=8 * 60, bursts_per_hour=40)  # a real model, ending now
    reading = read([str(local)])
    stream = io.StringIO()
    exporter = LineExporter(stream, riders=(EMFExporter(environ={}),))  # Lambda's stdout line
    events: list[tuple[int, str]] = []
    exported = []
    for record in reading.records:
        exporter.export(record)
        end_ms = (record.start + int(record.duration_ms * 1e6)) // 1_000_000
        exported.append(end_ms)
        extra = {"Init Duration": f"{record.init_ms:.2f} ms"} if record.cold_start else {}
        events.append(report_line(str(record.id), end_ms, record.duration_ms, extra))
    for window in reading.windows:
        exporter.export_window(window)
        exported.append(min(window["window_end"] // 1_000_000, now_ms()))
    events += list(zip(exported, stream.getvalue().splitlines(), strict=True))
    assert len(reading.windows) > 10 and len(reading.records) > 500
    # the same REPORT lines, as a CloudWatch export has them, read beside the local store
    export = tmp_path / "reports.log"
    export.write_text(
        "".join(
            f"{datetime.fromtimestamp(t / 1000, timezone.utc).isoformat()} {line}\n"
            for t, line in events
            if line.startswith("REPORT")
        )
    )
    peer.function(DEMO_FUNCTION, memory_mb=1024)
    peer.log_events(f"/aws/lambda/{DEMO_FUNCTION}", "2026/12/03/[$LATEST]e2e", events)

    result = pull(pulled, "--function", DEMO_FUNCTION, "--since", "9h")

    assert result.exit_code == 0, result.output
    runner = CliRunner()
    costs = ["report", "--costs", "--format", "json"]
    here = runner.invoke(main, [*costs, "--source", str(local), "--source", str(export)])
    there = runner.invoke(main, [*costs, "--source", str(pulled)])
    assert here.exit_code == there.exit_code == 0, here.output + there.output
    assert json.loads(here.stdout) == json.loads(there.stdout)
    assert json.loads(there.stdout)["functions"][0]["requests"] == len(reading.records)
    drift = ["report", "--drift", "--baseline", str(local / BASELINE_FILE), "--format", "json"]
    here = runner.invoke(main, [*drift, "--source", str(local)])
    there = runner.invoke(main, [*drift, "--source", str(pulled)])
    assert here.exit_code == there.exit_code == 3  # the demo's drift alerts, from both
    assert json.loads(here.stdout) == json.loads(there.stdout)


def test_a_terminal_shows_what_is_being_fetched_and_a_pipe_gets_only_the_summary(
    peer: AwsPeer, tmp_path: Path
) -> None:
    from .test_cli_progress import ERASE_LINE, on_a_terminal

    peer.function("shown")
    peer.log_events("/aws/lambda/shown", "a", invocations(0, 50, now_ms() - HOUR_MS, 1000, "shown"))

    status, out, shown = on_a_terminal(
        "pull", "aws", "--function", "shown", "--since", "2h", "--store", str(tmp_path)
    )

    assert status == 0, shown
    assert "CloudWatch Logs: 50 records, 50 reports" in shown and "1/1" in shown
    assert ERASE_LINE in shown  # transient: gone once the pull is done
    assert "CloudWatch Logs: 200 log events, 50 records" in out
    piped = pull(tmp_path, "--function", "shown", "--since", "2h")
    assert piped.stderr == ""  # no bar, no control codes on a pipe


def window_line(window_id: str, end_ms: int) -> tuple[int, str]:
    """A drift window record as the stdout exporter writes it, at its end."""
    window = {
        "event": "inferobs.drift_window",
        "schema": 1,
        "function": "ticker",
        "window_id": window_id,
        "window_start": (end_ms - 300_000) * 1_000_000,
        "window_end": end_ms * 1_000_000,
        "baseline_hash": "b" * 16,
        "observations": 3,
        "prediction": {"prediction": [1, 2, 0]},
        "features": {},
    }
    return end_ms, json.dumps(window)


def test_windows_and_records_in_the_overlap_are_stored_once(peer: AwsPeer, tmp_path: Path) -> None:
    peer.function("overlap")
    events = invocations(0, 20, now_ms() - 4 * 60_000, 5_000, "overlap")
    events.append(window_line("w-1", now_ms() - 60_000))
    peer.log_events("/aws/lambda/overlap", "a", events)
    assert pull(tmp_path, "--function", "overlap", "--since", "1h").exit_code == 0

    again = pull(tmp_path, "--function", "overlap", "--since", "1h")

    assert again.exit_code == 0, again.output
    assert "(21 already stored)" in again.output  # 20 records and the window, all re-read
    assert stored(tmp_path, "SELECT count(*) FROM drift_windows") == [(1,)]
    assert stored(tmp_path, "SELECT count(*) FROM invocations") == [(20,)]


def test_a_kept_metrics_token_that_is_refused_reads_the_piece_again(
    peer: AwsPeer, tmp_path: Path
) -> None:
    peer.function("metered")
    peer.log_events("/aws/lambda/metered", "a", invocations(0, 2, now_ms() - HOUR_MS))
    assert pull(tmp_path, "--function", "metered", "--since", "2h").exit_code == 0
    # a pull stopped in its metrics, days ago: its token has gone stale since
    low = (now_ms() - HOUR_MS) * 1_000_000
    stale = json.dumps({"pieces": [[low, low + 3_600_000_000_000]], "token": "stale"})
    connection = sqlite3.connect(tmp_path / "records.db")
    with connection:
        connection.execute(
            "UPDATE pulls SET resume = ? WHERE source LIKE '%:metered:metrics'", (stale,)
        )
    connection.close()
    peer.fail("GetMetricData", 400, "InvalidNextToken")
    peer.invocations_metric("metered", 2.0, timedelta(minutes=50))

    result = pull(tmp_path, "--function", "metered", "--since", "2h")

    assert result.exit_code == 0, result.output
    assert "CloudWatch metrics: 1 metric points" in result.output
    assert stored(tmp_path, "SELECT resume FROM pulls WHERE source LIKE '%:metrics'") == [(None,)]


def test_another_log_group_is_read_whole_and_an_arn_names_the_function(
    peer: AwsPeer, tmp_path: Path
) -> None:
    peer.function("grouped")
    peer.log_events(
        "/aws/lambda/grouped", "a", invocations(0, 5, now_ms() - HOUR_MS, 1000, "grouped")
    )
    peer.log_events("/custom/grouped", "a", invocations(5, 7, now_ms() - HOUR_MS, 1000, "grouped"))
    assert pull(tmp_path, "--function", "grouped", "--since", "2h").exit_code == 0
    peer.client("lambda").create_alias(
        FunctionName="grouped", Name="live", FunctionVersion="$LATEST"
    )

    arn = f"arn:aws:lambda:{REGION}:123456789012:function:grouped:live"
    other = pull(tmp_path, "--function", arn, "--since", "2h", "--log-group", "/custom/grouped")

    assert other.exit_code == 0, other.output
    assert "7 records" in other.output and "pulled grouped into" in other.output
    assert len(read([str(tmp_path)]).records) == 12


def test_a_store_that_cannot_be_written_and_bad_windows_are_named_before_any_fetch(
    peer: AwsPeer, tmp_path: Path
) -> None:
    del peer.requests[:]
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    assert "--store" in pull(a_file, "--function", "f").output
    assert "is a file, not a folder" in pull(a_file, "--function", "f").output
    future = pull(tmp_path, "--function", "f", "--since", "2099-01-01")
    assert "'--since'" in future.output and "is in the future" in future.output
    both = CliRunner().invoke(
        main, ["report", "--source", "aws:f", "--costs", "--drift", "--format", "json"]
    )
    assert both.exit_code == 1 and "separate reports" in both.output
    html = CliRunner().invoke(main, ["report", "--source", "aws:f", "--format", "html"])
    assert "--format html goes with --costs or --drift" in html.output
    assert [name for name, _ in peer.requests] == []  # nothing was fetched for any of them
