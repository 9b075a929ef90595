"""The structlog processor: the user's own log lines carry the invocation's context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

import inferobs as obs
from inferobs.logging import add_invocation_context, get_logger

from .helpers import Context, collecting


def test_log_lines_join_the_record_on_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    sink = collecting()
    log = get_logger(component="ranker")

    @obs.instrument(model="ranker", model_version="3", variant="B", runtime=obs.Runtime(environ={}))
    def handler(event: Any, context: Any) -> None:
        log.info("loading features")
        with obs.stage("inference"):
            log.warning("slow batch", rows=4)

    handler({}, Context("req-42"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first, second = lines
    assert first["event"] == "loading features" and first["level"] == "info"
    assert first["request_id"] == sink.records[0].id == "req-42"
    assert (first["model"], first["model_version"], first["variant"]) == ("ranker", "3", "B")
    assert first["cold_start"] is True and "stage" not in first
    assert second["stage"] == "inference" and second["rows"] == 4
    assert second["component"] == "ranker" and "timestamp" in second


def test_outside_an_invocation_events_are_unchanged() -> None:
    assert add_invocation_context(None, "info", {"event": "boot"}) == {"event": "boot"}


def test_concurrent_tasks_each_log_their_own_request() -> None:
    collecting()
    seen: list[dict[str, Any]] = []

    def capture(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        seen.append(dict(event_dict))
        return "ok"

    log = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[add_invocation_context, capture]
    )

    @obs.instrument
    async def handler(event: Any, context: Any) -> None:
        with obs.stage(event["stage"]):
            await asyncio.sleep(0.01 * event["n"])
            log.info("done", n=event["n"])

    async def main() -> None:
        await asyncio.gather(
            *(handler({"n": n, "stage": f"s{n}"}, Context(f"req-{n}")) for n in range(5))
        )

    asyncio.run(main())
    assert sorted((e["n"], e["request_id"], e["stage"]) for e in seen) == [
        (n, f"req-{n}", f"s{n}") for n in range(5)
    ]
