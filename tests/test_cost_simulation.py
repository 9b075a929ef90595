"""The simulation against queueing theory, and its per-minute counterpart against its formula."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from inferobs.analyze.concurrency import place
from inferobs.analyze.minute_tally import MinuteTally, erlang_b, peak_need


def _erlang_b(servers: int, load: float) -> float:
    """Erlang's loss formula, written out as the sum it is defined by."""
    top = load**servers / math.factorial(servers)
    return top / sum(load**k / math.factorial(k) for k in range(servers + 1))


def _poisson(load: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` Poisson arrivals at one a second, exponential durations of mean ``load`` s."""
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.exponential(1.0, count))
    return start, start + rng.exponential(load, count)


@pytest.mark.parametrize(
    ("load", "servers"), [(0.5, 1), (2.0, 2), (5.0, 5), (10.0, 10), (10.0, 14)]
)
def test_spillover_past_n_environments_is_erlang_b(load: float, servers: int) -> None:
    start, end = _poisson(load, 200_000, seed=servers)
    placement = place(start, end)
    spilled = float(np.mean(placement.level > servers))
    expected = _erlang_b(servers, load)
    # 200,000 arrivals: the estimate's standard error is well under 0.005 at these loads
    assert spilled == pytest.approx(expected, abs=0.006), (spilled, expected)


def test_counting_arrivals_that_find_n_running_overstates_the_spillover() -> None:
    """Why the simulation places requests: the naive count is about 2.5x off at N = 10."""
    load, servers = 10.0, 10
    start, end = _poisson(load, 200_000, seed=1)
    running = np.searchsorted(np.sort(end), start, side="right")  # requests ended by each start
    busy = np.arange(len(start)) - running
    naive = float(np.mean(busy >= servers))
    placed = float(np.mean(place(start, end).level > servers))
    assert placed == pytest.approx(_erlang_b(servers, load), abs=0.006)
    assert naive / placed > 2.0


def test_each_environment_is_reused_lowest_first_and_idles_between_requests() -> None:
    start = np.array([0.0, 1.0, 2.0, 10.0, 10.5])
    end = np.array([5.0, 3.0, 2.5, 11.0, 11.0])
    placement = place(start, end)
    assert placement.level.tolist() == [1, 2, 3, 1, 2]
    assert placement.idle_s[:3].tolist() == [math.inf] * 3
    assert placement.idle_s[3:].tolist() == [5.0, 7.5]  # 1 ended at 5, 2 at 3
    assert placement.peak == 3


def test_a_request_may_take_the_environment_of_one_ending_as_it_starts() -> None:
    placement = place(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert placement.level.tolist() == [1, 1]
    assert placement.idle_s[1] == 0.0


def test_erlang_b_recursion_matches_the_formula() -> None:
    loads = np.array([0.1, 1.0, 3.7, 25.0])
    table = erlang_b(30, loads)
    for n in (0, 1, 5, 30):
        for i, load in enumerate(loads):
            assert table[n, i] == pytest.approx(_erlang_b(n, float(load)), rel=1e-9)


def test_a_minute_needs_the_999th_percentile_of_its_poisson_load() -> None:
    need = peak_need(np.array([0.0, 0.001, 1.0, 50.0]))
    assert need[0] == 0 and need[1] == 1
    for load, k in zip([1.0, 50.0], need[2:], strict=True):
        below = sum(math.exp(-load) * load**j / math.factorial(j) for j in range(int(k)))
        upto = below + math.exp(-load) * load ** int(k) / math.factorial(int(k))
        assert below < 0.999 <= upto


def test_minutes_spill_their_erlang_b_share_and_create_environments_once_per_keep_alive() -> None:
    # two busy minutes, a quiet gap longer than the keep-alive, then the same again
    minute = np.array([0, 1, 30, 31])
    count = np.array([6000.0, 6000.0, 6000.0, 6000.0])  # 100 a second
    mean_ms = np.array([20.0, 20.0, 20.0, 20.0])  # 2 Erlang
    tally = MinuteTally(
        hour=np.zeros(4, dtype=np.int64),
        minute=minute,
        count=count,
        mean_ms=mean_ms,
        billed_ms=mean_ms + 0.5,
        keep_alive_s=600.0,
    )
    levels = np.zeros(24, dtype=np.int64)
    levels[0] = 2
    assert tally.spilled("requests", levels) == pytest.approx(24000 * _erlang_b(2, 2.0))
    need = int(tally.need[0])
    # environments are created in minutes 0 and 30 only (1 and 31 reuse them)
    assert tally.spilled("cold", np.zeros(24, dtype=np.int64)) == 2 * need
    assert tally.spilled("cold", levels) == 2 * (need - 2)
    assert tally.spilled("billed_ms", np.zeros(24, dtype=np.int64)) == pytest.approx(24000 * 20.5)


def test_both_placements_come_back_the_same_from_a_child_process() -> None:
    from inferobs.analyze.concurrency import place_both

    start, end = _poisson(3.0, 20_000, seed=4)
    init = np.where(np.arange(len(start)) % 17 == 0, 0.9, 0.0)
    here = place_both(start, end, init, 600.0, parallel_from=10**9)  # no child
    forked = place_both(start, end, init, 600.0, parallel_from=0)  # a forked child
    for ours, theirs in zip(here, forked, strict=True):
        assert np.array_equal(ours.level, theirs.level)
        assert np.array_equal(ours.idle_s, theirs.idle_s)
    with_init, plain = here
    assert not np.array_equal(with_init.level, plain.level)  # inits do hold environments


def test_a_child_that_fails_leaves_its_half_to_be_computed_here() -> None:
    from inferobs.analyze.concurrency import _collect, _fork

    def broken() -> Any:
        raise RuntimeError("a child that cannot finish")

    pid, reader = _fork(broken)
    assert _collect(pid, reader, 1000, timeout_s=30.0) is None
