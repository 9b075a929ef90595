"""Concurrent invocations on threads and asyncio tasks keep their own stages."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import inferobs as obs

from .helpers import Context, collecting


def test_threads_each_get_their_own_stage_timings() -> None:
    sink = collecting()
    barrier = threading.Barrier(8)

    @obs.instrument
    def handler(event: dict[str, Any], context: Any) -> None:
        barrier.wait()  # all eight invocations are in flight at once
        with obs.stage("preprocess"):
            time.sleep(event["pre"])
        obs.tag(worker=event["n"])
        with obs.stage("inference"):
            time.sleep(event["infer"])

    threads = [
        threading.Thread(
            target=handler,
            args=({"n": n, "pre": 0.01 * n, "infer": 0.08 - 0.01 * n}, Context(f"req-{n}")),
        )
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_id = {r.id: r for r in sink.records}
    assert len(by_id) == 8
    for n in range(8):
        record = by_id[f"req-{n}"]
        assert record.tags == {"worker": n}
        assert list(record.stages) == ["preprocess", "inference"]
        # a sleep never ends early; on a busy machine it may end late
        assert 10 * n - 0.5 <= record.stages["preprocess"] < 10 * n + 25
        assert 80 - 10 * n - 0.5 <= record.stages["inference"] < 80 - 10 * n + 25


def test_asyncio_tasks_each_get_their_own_invocation() -> None:
    sink = collecting()

    @obs.instrument
    async def handler(event: dict[str, Any], context: Any) -> int:
        with obs.stage("preprocess"):
            await asyncio.sleep(0.005 * event["n"])
        obs.observe_input([0.0] * event["n"])
        with obs.stage("inference"):
            await asyncio.sleep(0.05 - 0.005 * event["n"])
        return int(event["n"])

    async def main() -> list[int]:
        return await asyncio.gather(*(handler({"n": n}, Context(f"t-{n}")) for n in range(1, 9)))

    assert asyncio.run(main()) == list(range(1, 9))
    assert sorted(r.id for r in sink.records) == [f"t-{n}" for n in range(1, 9)]  # type: ignore[type-var]
    for record in sink.records:
        n = int(record.id.split("-")[1])  # type: ignore[union-attr]
        assert record.input == {"kind": "list", "n_items": n, "shape": [n], "dtype": "float"}
        assert 5 * n - 0.5 <= record.stages["preprocess"] < 5 * n + 25
        assert 50 - 5 * n - 0.5 <= record.stages["inference"] < 50 - 5 * n + 25


def test_tasks_fanned_out_inside_one_invocation_keep_their_own_nesting() -> None:
    sink = collecting()

    async def part(name: str) -> None:
        with obs.stage(name):
            await asyncio.sleep(0.01)
            with obs.stage("io"):
                await asyncio.sleep(0.01)

    @obs.instrument
    async def handler(event: Any, context: Any) -> None:
        with obs.stage("fanout"):
            await asyncio.gather(part("a"), part("b"))

    asyncio.run(handler({}, None))
    stages = sink.records[0].stages
    assert set(stages) == {"fanout", "fanout/a", "fanout/a/io", "fanout/b", "fanout/b/io"}
