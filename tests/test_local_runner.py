"""The local Lambda runner's clocks: the timeout counts from receipt, init has its own limit.

Lambda's rules (docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
the function timeout limits the Invoke phase, which begins when the runtime
receives the event; an on-demand init has 10 s of its own, and one that runs
past its limit is retried within the first invocation, under the timeout.
Handlers in lambda_code/handlers.py sleep TEST_MODEL_LOAD_S at import (the init).
"""

from __future__ import annotations

from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda, init_limit_s

from .conftest import LAMBDA_CODE

pytestmark = pytest.mark.timeout(60)


def function(handler: str, init_s: float, **options: Any) -> LocalLambda:
    env = {"TEST_MODEL_LOAD_S": str(init_s), **options.pop("env", {})}
    return LocalLambda(
        f"handlers.{handler}", code_dir=LAMBDA_CODE, function_name="test-fn", env=env, **options
    )


def test_a_cold_start_init_does_not_use_up_the_timeout() -> None:
    # 0.5 s of init, the interpreter's start and 0.45 s of work: more than the
    # 1 s timeout together, well within it for the work alone
    with function("slow", 0.5, timeout_s=1.0) as fn:
        outcome = fn.invoke({"sleep_s": 0.45})
        records = fn.wait_for_records(1)
    assert outcome.status == "response", outcome
    assert outcome.json() == "finished"
    (record,) = records
    assert (record["kind"], record["status"], record["cold_start"]) == ("invocation", "ok", True)
    assert record["init_ms"] >= 500


def test_the_runtime_is_handed_the_whole_timeout_after_a_cold_start() -> None:
    with function("remaining", 0.5, timeout_s=1.0) as fn:
        left_ms = fn.invoke({}).json()
    # the deadline header counts from the hand-out, not from the submit before the init
    assert 700 <= left_ms <= 1000


def test_the_timeout_line_comes_near_the_deadline_counted_from_receipt() -> None:
    env = {"INFEROBS_TIMEOUT_MARGIN_MS": "200"}
    with function("slow", 0.5, timeout_s=1.0, env=env) as fn:
        outcome = fn.invoke({"sleep_s": 5})
        assert outcome.error_type == "Timeout"
        assert not fn.alive()  # killed at the deadline
        (record,) = fn.wait_for_records(1)
    assert record["kind"] == "timeout" and record["cold_start"] is True
    assert record["init_ms"] >= 500
    # the margin before a deadline 1 s after receipt (not 1 s after the submit,
    # which would leave under 300 ms after the init)
    assert 650 <= record["duration_ms"] < 1000


def test_an_init_past_its_limit_is_retried_within_the_invocation() -> None:
    with function("ok", 1.5, timeout_s=3.0, init_timeout_s=1.0) as fn:
        fn.start()
        first = fn.process
        assert first is not None
        outcome = fn.invoke({"values": [1]})
        records = fn.wait_for_records(1)
    assert outcome.status == "response", outcome
    assert first.poll() is not None  # stopped at the init limit
    assert outcome.json()["pid"] != first.pid  # served by the retried init's process
    (record,) = records
    assert record["cold_start"] is True
    assert record["init_ms"] >= 1500  # the re-run init, in full


def test_a_retried_init_longer_than_the_timeout_ends_in_a_timeout() -> None:
    with function("ok", 1.5, timeout_s=1.0, init_timeout_s=1.0) as fn:
        fn.start()
        first = fn.process
        outcome = fn.invoke({"values": [1]})
        assert fn.process is not first  # the init was retried in a fresh process...
        assert not fn.alive()  # ...which the timeout stopped
        assert fn.records() == []  # the handler never ran
    assert outcome.error_type == "Timeout"
    assert outcome.json() == {"errorType": "Sandbox.Timedout"}


def test_an_event_that_timed_out_unreceived_is_not_handed_to_the_next_environment() -> None:
    with function("ok", 1.5, timeout_s=1.0, init_timeout_s=1.0) as fn:
        first = fn.invoke({"values": [1]})  # its init never finished: never received
        assert first.error_type == "Timeout"
        fn.extra_env["TEST_MODEL_LOAD_S"] = "0.05"  # the next environment starts quickly
        second = fn.invoke({"values": [2]})
        assert second.status == "response", second
        assert fn.api.outcome(first.request_id, 0) is None  # no runtime ever ran it
        records = fn.wait_for_records(1)
    assert [r["id"] for r in records] == [second.request_id]


def test_an_environment_killed_while_idle_takes_no_event_with_it() -> None:
    with function("ok", 0.05) as fn:
        first = fn.invoke({"values": [1]})
        assert fn.api.asked(2, timeout_s=10)  # its init's ask, then the next one's
        fn.kill()  # while it waits for its next event
        second = fn.invoke({"values": [2]})
        records = fn.wait_for_records(2)
    assert second.status == "response", second
    assert second.json()["pid"] != first.json()["pid"]
    assert [r["cold_start"] for r in records] == [True, True]


def test_init_limits_are_lambdas() -> None:
    assert init_limit_s("on-demand", 900.0) == 10.0
    assert init_limit_s("provisioned-concurrency", 3.0) == 130.0
    assert init_limit_s("snap-start", 600.0) == 600.0
    assert init_limit_s("lambda-managed-instances", 60.0) == 130.0
    with function("ok", 0.05) as fn:
        assert fn.init_timeout_s == 10.0


def test_an_init_error_is_the_invocations_answer_and_the_next_one_starts_afresh() -> None:
    # a long init limit: the answer must come from the init error, not from a limit
    with LocalLambda(
        "broken.handler", code_dir=LAMBDA_CODE, timeout_s=1.0, init_timeout_s=60.0
    ) as fn:
        first = fn.invoke({})
        assert not fn.alive()  # an environment whose init failed serves nothing
        second = fn.invoke({})
        assert len(fn.api.init_errors) == 2  # the second invocation ran the init again
        assert fn.records() == []
    for outcome in (first, second):
        assert outcome.status == "error"
        assert outcome.error_type == "Runtime.ImportModuleError"
        body = outcome.json()
        assert body["errorType"] == "Runtime.ImportModuleError"
        assert "a_dependency_the_package_lacks" in body["errorMessage"]
    assert second.request_id != first.request_id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": float("nan")}, "timeout_s=nan: expected a finite number of seconds above 0"),
        ({"timeout_s": 0}, "timeout_s=0: expected a finite number of seconds above 0"),
        (
            {"init_timeout_s": float("inf")},
            "init_timeout_s=inf: expected a finite number of seconds above 0",
        ),
        (
            {"init_timeout_s": -1.0},
            "init_timeout_s=-1.0: expected a finite number of seconds above 0",
        ),
        ({"memory_mb": 64}, "memory_mb=64: expected a whole number of MB from 128 to 10240"),
        (
            {"memory_mb": 1024.5},
            "memory_mb=1024.5: expected a whole number of MB from 128 to 10240",
        ),
        ({"memory_mb": True}, "memory_mb=True: expected a whole number of MB from 128 to 10240"),
    ],
)
def test_settings_lambda_would_refuse_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        LocalLambda("handlers.ok", code_dir=LAMBDA_CODE, **options)
    assert str(raised.value) == message


def test_an_invocation_timeout_is_checked_too() -> None:
    with function("ok", 0.05) as fn, pytest.raises(ValueError) as raised:
        fn.invoke({}, timeout_s=float("nan"))
    assert str(raised.value) == "timeout_s=nan: expected a finite number of seconds above 0"
    assert fn.process is None  # refused before an environment was started
