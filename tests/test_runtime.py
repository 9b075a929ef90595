"""The cold-start rule, row by row (docs/cold-start.md), on a hand-driven clock."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

import inferobs as obs
from inferobs.runtime import process_start_ns

from .helpers import ManualClock, collecting, noop

MS = 1_000_000


def first_two(
    init_type: str | None, idle_ms: float, *, restore: bool = False, window_s: float = 10.0
) -> list[tuple[bool, float | None]]:
    """Init takes 300 ms, the environment idles ``idle_ms``, then two invocations."""
    sink = collecting(proactive_init_s=window_s)
    clock = ManualClock()
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "fn"}
    if init_type is not None:
        environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = init_type
    runtime = obs.Runtime(environ=environ, clock=clock, process_start=clock.mono)
    clock.advance(300)
    handler = obs.instrument(noop, runtime=runtime)
    if restore:
        clock.advance(5_000)  # the snapshot waits
        runtime.mark_restored()
        clock.advance(40)  # after-restore hooks, the runtime resuming
    else:
        clock.advance(idle_ms)
    handler({}, None)
    clock.advance(1000)
    handler({}, None)
    return [(r.cold_start, r.init_ms) for r in sink.records]


@pytest.mark.parametrize(
    ("init_type", "idle_ms", "expected"),
    [
        # the first invocation of an on-demand environment waited for init
        ("on-demand", 0, [(True, 300.0), (False, None)]),
        ("on-demand", 9_999, [(True, 300.0), (False, None)]),
        # proactive initialisation: init finished long before the first request
        ("on-demand", 10_001, [(False, 300.0), (False, None)]),
        # made ahead of demand: nobody waits, the init is still measured
        ("provisioned-concurrency", 0, [(False, 300.0), (False, None)]),
        ("lambda-managed-instances", 0, [(False, 300.0), (False, None)]),
        # off-cloud behaves as on-demand
        (None, 0, [(True, 300.0), (False, None)]),
        (None, 10_001, [(False, 300.0), (False, None)]),
    ],
)
def test_cold_start_table(
    init_type: str | None, idle_ms: float, expected: list[tuple[bool, float | None]]
) -> None:
    assert first_two(init_type, idle_ms) == expected


def test_snap_start_restore_counts_its_visible_tail_as_init() -> None:
    assert first_two("snap-start", 0, restore=True) == [(True, 40.0), (False, None)]


def test_snap_start_restored_ahead_of_demand_is_not_cold() -> None:
    assert first_two("snap-start", 0, restore=True, window_s=0.01) == [(False, None), (False, None)]


def test_snap_start_without_the_restore_hook_is_cold_with_init_left_to_report() -> None:
    assert first_two("snap-start", 0) == [(True, None), (False, None)]


def test_the_window_is_configurable() -> None:
    assert first_two("on-demand", 2_000, window_s=1.0)[0] == (False, 300.0)


def fresh_environment() -> tuple[ManualClock, obs.Runtime]:
    """An off-cloud environment whose process starts now, on a hand-driven clock."""
    clock = ManualClock()
    return clock, obs.Runtime(environ={}, clock=clock, process_start=clock.mono)


def test_init_complete_moves_the_end_of_init() -> None:
    sink = collecting()
    clock, runtime = fresh_environment()
    clock.advance(100)
    handler = obs.instrument(noop, runtime=runtime)
    clock.advance(250)  # module keeps loading after the decorated handler
    obs.init_complete(runtime)
    clock.advance(20_000)
    handler({}, None)
    assert (sink.records[0].cold_start, sink.records[0].init_ms) == (False, 350.0)


def test_marks_after_the_first_invocation_are_not_init() -> None:
    """A handler instrumented lazily, inside a request after an idle minute."""
    sink = collecting()
    clock, runtime = fresh_environment()
    clock.advance(200)
    first = obs.instrument(noop, runtime=runtime)
    clock.advance(60_000)
    first({}, None)
    obs.instrument(noop, runtime=runtime)  # a second handler, made during traffic
    obs.init_complete(runtime)
    first({}, None)
    assert [(r.cold_start, r.init_ms) for r in sink.records] == [(False, 200.0), (False, None)]
    assert runtime.init_end == 200 * MS + 10**12


def test_only_one_of_many_concurrent_first_invocations_is_cold() -> None:
    import threading

    sink = collecting()

    def handler(event: Any, context: Any) -> None:
        time.sleep(0.01)

    handler = obs.instrument(handler, runtime=obs.Runtime(environ={}))
    threads = [threading.Thread(target=handler, args=({}, None)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.cold_start for r in sink.records) == 1


def test_process_start_comes_from_proc_at_10_ms_resolution() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    start = process_start_ns()
    assert start is not None
    age_ms = (time.perf_counter_ns() - start) / MS
    assert 0 <= age_ms < 600_000  # this test process started in the last ten minutes
