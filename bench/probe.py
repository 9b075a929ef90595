"""One measurement in a fresh process; run by run.py, prints one JSON line.

cold: with the Lambda runtime client and the model's libraries already imported,
      the time to import the handler module and run its first invocation.
warm: after warm-up, the median time per invocation over batches of calls.
calls N: just N calls, for run.py --instructions to count under callgrind.

stdout is wrapped as the Lambda runtime wraps it (every write flushed), so a
line printed per invocation costs what it costs on Lambda; run.py sends it to
a file. A variant given an X-Ray trace header (``_X_AMZN_TRACE_ID``) gets it
as on Lambda: not during init, and renewed before every call with a new root,
so a tracer starts a new trace each time rather than reusing the last one.

The JSON line also says how many calls the handler took, so run.py can count
what each call sent to its stand-in X-Ray daemon.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import statistics
import sys
import time

# Loaded before the clock starts: the Lambda runtime client (as on Lambda), and
# the model's own imports (numpy), alike in every variant and noisy enough to
# drown the differences being measured.
import awslambdaric.bootstrap
import work  # noqa: F401
from awslambdaric.lambda_context import LambdaContext

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

EVENT = {"x": [float(i) / 20 for i in range(20)]}
TRACE_HEADER = "_X_AMZN_TRACE_ID"
_roots = itertools.count(1)


def context(n: int) -> LambdaContext:
    deadline_ms = int(time.time() * 1000) + 30_000
    return LambdaContext(
        f"req-{n}", None, None, deadline_ms, "arn:aws:lambda:us-east-1:000000000000:function:bench"
    )


def invoke(handler: Callable[..., Any], ctx: LambdaContext, count: int, header: str | None) -> None:
    """``count`` calls; given a trace header (its root's place ``%024x``), a new root each call."""
    if header is None:
        for _ in range(count):
            handler(EVENT, ctx)
        return
    environ = os.environ
    for _ in range(count):
        environ[TRACE_HEADER] = header % next(_roots)
        handler(EVENT, ctx)


def main() -> None:
    mode, module_name = sys.argv[1], sys.argv[2]
    given = os.environ.pop(TRACE_HEADER, None)
    header = None if given is None else "Root=1-5759e988-%024x;" + given.partition(";")[2]
    sys.stdout = awslambdaric.bootstrap.Unbuffered(sys.stdout)
    ctx = context(0)
    if mode == "cold":
        start = time.perf_counter_ns()
        module = importlib.import_module(module_name)
        invoke(module.handler, ctx, 1, header)
        ms = (time.perf_counter_ns() - start) / 1e6
        print(json.dumps({"ms": ms, "calls": 1}), file=sys.__stderr__)
        return
    module = importlib.import_module(module_name)
    handler = module.handler
    if mode == "calls":  # a fixed number of calls, for an instruction counter outside
        invoke(handler, ctx, int(sys.argv[3]), header)
        return
    warmup, batch, batches = 2000, 200, 60
    invoke(handler, ctx, warmup, header)
    means = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        invoke(handler, ctx, batch, header)
        means.append((time.perf_counter_ns() - start) / batch / 1000)
    calls = warmup + batch * batches
    print(json.dumps({"us": statistics.median(means), "calls": calls}), file=sys.__stderr__)


if __name__ == "__main__":
    main()
