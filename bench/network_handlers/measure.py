"""Measurements of the network benchmark, each in a fresh process; run by bench/network.py.

warm MODULE CALLS: after a second of warm-up (long enough for an exporter's
    backend library to finish loading on its sender thread), CALLS invocations,
    each timed on its own: a network exporter's cost is a wait for a receiver,
    which varies call to call, so the median and the mean are both reported.
    Calls are GAP_S apart, as requests one after another reach a function, not
    back to back: an exporter whose sender thread works on after the handler
    returned would otherwise fall ever further behind (and its handler look
    free). The process's CPU time over the timed calls, every thread's and the
    gaps' included, is reported per call too: that is where such work shows.
calls MODULE N: N invocations, each timed, each with a fresh LambdaContext (the
    slow ones would otherwise eat one context's remaining time): the fault runs.
imports A,B;C: the time to import each ;-separated group of modules, in order.
runtime MODULE CALLS: the handler run as Lambda runs it, by the runtime interface
    client in its own process against the loopback Runtime API (which speaks
    the Extensions API too): after a second of warm-up, CALLS invocations GAP_S
    apart, each timed from the moment the runtime receives it to the moment
    it posts the answer (what the caller waits for), and to the moment the
    invocation's work, extensions' included, is done (what is billed, and
    after which Lambda may freeze the environment).

Handlers run as bench/probe.py runs them (its event, its LambdaContext, stdout
wrapped as the Lambda runtime wraps it). One JSON line goes to stderr; the
process then ends without running exit hooks, so an SDK's shutdown waiting on a
dead collector does not slow the benchmark down (it is not part of any figure).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time

GAP_S = 0.005


def timed_calls(
    module_name: str, count: int, *, fresh_context: bool
) -> tuple[list[float], int, float]:
    """Milliseconds per timed invocation, how many invocations there were in all, and the
    process's CPU milliseconds over the timed ones; unless fresh_context, a second of
    untimed warm-up first and GAP_S between calls."""
    import awslambdaric.bootstrap

    from probe import EVENT, context

    sys.stdout = awslambdaric.bootstrap.Unbuffered(sys.stdout)
    handler = importlib.import_module(module_name).handler
    ctx = context(0)
    warmup = 0
    if not fresh_context:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            handler(EVENT, ctx)
            time.sleep(GAP_S)
            warmup += 1
    out = []
    cpu = time.process_time_ns()
    for n in range(1, count + 1):
        if fresh_context:
            ctx = context(n)
        start = time.perf_counter_ns()
        handler(EVENT, ctx)
        out.append((time.perf_counter_ns() - start) / 1e6)
        if not fresh_context:
            time.sleep(GAP_S)
    return out, warmup + count, (time.process_time_ns() - cpu) / 1e6


def under_runtime(module_name: str, count: int) -> tuple[list[float], list[float]]:
    """Microseconds per invocation: to the answer, and to the end of its work."""
    from inferobs.local.lambda_process import LocalLambda
    from probe import EVENT

    answers, works = [], []
    here = os.path.dirname(os.path.abspath(__file__))
    with LocalLambda(f"{module_name}.handler", code_dir=here, timeout_s=30) as fn:
        end = time.monotonic() + 1.0
        timed = 0
        while timed < count:
            outcome = fn.invoke(EVENT)
            work = fn.api.settled(outcome.request_id, 30)
            received = fn.api.handed_out(outcome.request_id)
            if time.monotonic() >= end and work is not None and received is not None:
                answers.append((outcome.at - received) * 1e6)
                works.append((work - received) * 1e6)
                timed += 1
            time.sleep(GAP_S)
    return answers, works


def import_times(groups: str) -> list[float]:
    out = []
    for group in groups.split(";"):
        start = time.perf_counter_ns()
        for name in group.split(","):
            importlib.import_module(name)
        out.append((time.perf_counter_ns() - start) / 1e6)
    return out


def main() -> None:
    mode = sys.argv[1]
    result: dict[str, object]
    if mode == "warm":
        ms, total, cpu_ms = timed_calls(sys.argv[2], int(sys.argv[3]), fresh_context=False)
        result = {
            "median_us": statistics.median(ms) * 1000,
            "mean_us": statistics.mean(ms) * 1000,
            "cpu_us": cpu_ms * 1000 / len(ms),
            "calls": total,
        }
    elif mode == "runtime":
        answers, works = under_runtime(sys.argv[2], int(sys.argv[3]))
        result = {
            "answer_us": statistics.median(answers),
            "work_us": statistics.median(works),
        }
    elif mode == "calls":
        result = {"ms": timed_calls(sys.argv[2], int(sys.argv[3]), fresh_context=True)[0]}
    else:
        result = {"ms": import_times(sys.argv[2])}
    print(json.dumps(result), file=sys.__stderr__, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
