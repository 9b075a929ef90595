"""The real Lambda lifecycle: handlers run by awslambdaric against a loopback Runtime API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda

from .conftest import LAMBDA_CODE

pytestmark = pytest.mark.timeout(60)


def function(handler: str, **options: Any) -> LocalLambda:
    return LocalLambda(
        f"handlers.{handler}", code_dir=LAMBDA_CODE, function_name="test-fn", **options
    )


@pytest.fixture
def on_demand() -> Iterator[LocalLambda]:
    with function("ok") as fn:
        yield fn


def test_n_invocations_give_n_lines_with_one_cold_start(on_demand: LocalLambda) -> None:
    ids = []
    for i in range(5):
        outcome = on_demand.invoke({"values": [i, 1.5]})
        assert outcome.status == "response", outcome
        ids.append(outcome.request_id)
    records = on_demand.wait_for_records(5)
    assert [r["id"] for r in records] == ids
    assert [r.get("cold_start", False) for r in records] == [True, False, False, False, False]
    first = records[0]
    assert first["init_type"] == "on-demand"
    # the module sleeps 50 ms at import; init also covers the interpreter's start
    assert first["init_ms"] >= 50
    assert all("init_ms" not in r for r in records[1:])
    assert {r["instance_id"] for r in records} == {first["instance_id"]}
    assert first["instance_id"].startswith(time.strftime("%Y/%m/%d/[$LATEST]"))
    for record in records:
        assert record["function"] == "test-fn"
        assert record["memory_mb"] == 1024
        assert record["status"] == "ok"
        assert list(record["stages"]) == ["preprocess", "inference"]
        assert record["input"] == {"kind": "list", "n_items": 2, "shape": [2], "dtype": "float"}
        assert record["trace_id"].startswith("1-")
    assert first["max_rss_mb"] > 5  # a cold start's line always says it


def test_idle_wait_before_first_request_is_not_init_and_not_cold() -> None:
    """Proactive initialization: the environment was ready long before the request."""
    with function("ok", env={"INFEROBS_PROACTIVE_INIT_S": "0.3"}) as fn:
        fn.start()
        time.sleep(1.0)  # init finishes, then the environment idles
        fn.invoke({"values": [1]})
        fn.invoke({"values": [2]})
        records = fn.wait_for_records(2)
    assert [r.get("cold_start", False) for r in records] == [False, False]
    assert 50 <= records[0]["init_ms"] < 900  # the idle second is not in it


@pytest.mark.parametrize("init_type", ["provisioned-concurrency", "lambda-managed-instances"])
def test_environments_made_ahead_of_demand_have_no_cold_start(init_type: str) -> None:
    with function("ok", init_type=init_type) as fn:
        fn.invoke({"values": [1]})
        fn.invoke({"values": [2]})
        records = fn.wait_for_records(2)
    assert [r.get("cold_start", False) for r in records] == [False, False]
    assert records[0]["init_type"] == init_type
    assert records[0]["init_ms"] >= 50  # the init happened; nobody waited for it


def test_managed_instances_run_several_processes_each_its_own_instance() -> None:
    with function("ok", init_type="lambda-managed-instances", max_concurrency=2) as fn:
        ids = [fn.submit({"values": [i]}) for i in range(8)]
        outcomes = [fn.api.outcome(i, 10) for i in ids]
        assert all(o is not None and o.status == "response" for o in outcomes)
        records = fn.wait_for_records(8)
    pids = {o.json()["pid"] for o in outcomes if o is not None}
    instances = {r["instance_id"] for r in records}
    assert len(instances) == len(pids)
    assert all(i.rsplit(":", 1)[1] in {str(p) for p in pids} for i in instances)
    assert not any(r.get("cold_start") for r in records)


def test_snap_start_restore_is_the_init_users_wait_for() -> None:
    with function("ok", init_type="snap-start") as fn:
        fn.start()
        assert fn.api.restore_requested.wait(10)  # init done, snapshot taken
        time.sleep(0.3)  # the snapshot sits until a request needs it
        request_id = fn.api.submit({"values": [1]})
        fn.api.release_restore()
        assert fn.api.outcome(request_id, 10) is not None
        fn.invoke({"values": [2]})
        records = fn.wait_for_records(2)
    assert [r.get("cold_start", False) for r in records] == [True, False]
    assert records[0]["init_type"] == "snap-start"
    # only the visible tail of the restore: hooks and the runtime resuming
    assert 0 <= records[0]["init_ms"] < 300


def test_async_handler_runs_on_one_loop_for_the_process_life() -> None:
    with function("async_ok") as fn:
        outcomes = [fn.invoke({}) for _ in range(3)]
        records = fn.wait_for_records(3)
    assert [o.json() for o in outcomes] == [{"loops": 1}] * 3
    assert [r["status"] for r in records] == ["ok"] * 3
    assert all(r["stages"]["inference"] >= 1.0 for r in records)


def test_handler_error_is_recorded_and_reaches_the_runtime_unchanged() -> None:
    with function("raises") as fn:
        outcome = fn.invoke({})
        records = fn.wait_for_records(1)
    assert outcome.status == "error"
    assert outcome.json()["errorType"] == "ModelError"
    assert outcome.json()["errorMessage"] == "weights missing"
    assert "raise ModelError" in "".join(outcome.json()["stackTrace"])
    (record,) = records
    assert record["status"] == "error"
    assert record["error_type"] == "ModelError"
    assert record["error_stage"] == "inference"
    assert "weights missing" not in str(record)


def test_timeout_leaves_one_record_written_before_the_platform_kills_it() -> None:
    # a 200 ms margin: room for a busy CI machine to schedule the watchdog thread
    with function("slow", timeout_s=1.0, env={"INFEROBS_TIMEOUT_MARGIN_MS": "200"}) as fn:
        outcome = fn.invoke({"sleep_s": 5})
        assert outcome.error_type == "Timeout"
        assert not fn.alive()  # killed at the deadline, as Lambda does
        records = fn.wait_for_records(1)
        (record,) = records
        assert record["kind"] == "timeout"
        assert record["id"] == outcome.request_id
        assert record["status"] == "error"
        assert record["error_stage"] == "inference"
        assert list(record["stages"]) == ["preprocess"]  # inference never completed
        # the deadline counts from when the runtime received the event: the line
        # comes the margin before it (sleeps end late, never early; the process dies
        # at the deadline, so a line that exists came before it)
        assert 650 <= record["duration_ms"] < 1000

        # the next request finds no environment: a fresh one, a new cold start
        fn.invoke({"sleep_s": 0})
        records = fn.wait_for_records(2)
    assert records[1]["kind"] == "invocation"
    assert records[1]["cold_start"] is True


def test_watchdog_line_is_not_written_twice_when_the_handler_finishes_late() -> None:
    """With a margin wider than the overrun, the handler ends after the timeout line."""
    with function("slow", timeout_s=2.0, env={"INFEROBS_TIMEOUT_MARGIN_MS": "1500"}) as fn:
        outcome = fn.invoke({"sleep_s": 0.8})
        assert outcome.status == "response"
        fn.invoke({"sleep_s": 0})
        records = fn.wait_for_records(2)
    assert [r["kind"] for r in records] == ["timeout", "invocation"]
    assert records[0]["id"] == outcome.request_id


def test_sigterm_before_shutdown_delivers_the_open_drift_window(tmp_path: Any) -> None:
    """Lambda sends SIGTERM before shutdown when an extension is registered: the runtime,
    idle between invocations, writes its open drift window, then ends as SIGTERM ends it.

    As on Lambda's python3.12 and later runtimes, whose runtime client waits for the
    next event on a thread, so that the main thread takes the signal while idle (on
    earlier ones it waits in C, and a signal then is not taken until an event comes).
    """
    import json
    import signal

    from inferobs.drift.baseline import Baseline

    baseline = tmp_path / "baseline.json"
    Baseline.from_frame({"total": [float(v) for v in range(100)]}, prediction="total").save(
        str(baseline)
    )
    env = {
        "INFEROBS_BASELINE": str(baseline),
        "INFEROBS_DRIFT_WINDOW": "1h",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",  # awslambdaric polls on a thread
    }
    with function("ok", env=env) as fn:
        for i in range(3):
            assert fn.invoke({"values": [i, 1.5]}).status == "response"
        fn.wait_for_records(3)
        assert fn.api.asked(4, 10)  # idle: waiting for its next invocation
        assert fn.process is not None
        fn.process.send_signal(signal.SIGTERM)  # while it waits for the next invocation
        assert fn.process.wait(timeout=10) == -signal.SIGTERM
        fn.kill()  # joins the reader: every line is in
        windows = [json.loads(line) for line in fn.lines if '"inferobs.drift_window"' in line]
    (window,) = windows
    assert window["observations"] == 3 and window["function"] == "test-fn"
    assert window["instance_id"] == fn.records()[0]["instance_id"]
    assert sum(window["prediction"]["total"]) == 3


def test_a_timeout_sends_the_open_drift_window_before_the_environment_dies(tmp_path: Any) -> None:
    import json

    from inferobs.drift.baseline import Baseline

    baseline = tmp_path / "baseline.json"
    Baseline.from_frame({"p": [float(v) for v in range(100)]}, prediction="p").save(str(baseline))
    env = {
        "INFEROBS_TIMEOUT_MARGIN_MS": "200",
        "INFEROBS_BASELINE": str(baseline),
        "INFEROBS_DRIFT_WINDOW": "1h",
    }
    with function("slow", timeout_s=1.0, env=env) as fn:
        assert fn.invoke({"sleep_s": 0}).status == "response"
        assert fn.invoke({"sleep_s": 5}).error_type == "Timeout"
        assert not fn.alive()  # killed at the deadline
        windows = [json.loads(line) for line in fn.lines if '"inferobs.drift_window"' in line]
    assert [w["observations"] for w in windows] == [2]  # both invocations' counts
