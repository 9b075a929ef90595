"""One measurement in a fresh process; run by run.py, prints one JSON line.

cold: with the Lambda runtime client and the model's libraries already imported,
      the time to import the handler module and run its first invocation.
warm: after warm-up, the median time per invocation over batches of calls.
calls N: just N calls, for run.py --instructions to count under callgrind.

stdout is wrapped as the Lambda runtime wraps it (every write flushed), so a
line printed per invocation costs what it costs on Lambda; run.py sends it to
a file.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import time

# Loaded before the clock starts: the Lambda runtime client (as on Lambda), and
# the model's own imports (numpy), alike in every variant and noisy enough to
# drown the differences being measured.
import awslambdaric.bootstrap
import work  # noqa: F401
from awslambdaric.lambda_context import LambdaContext

EVENT = {"x": [float(i) / 20 for i in range(20)]}


def context(n: int) -> LambdaContext:
    deadline_ms = int(time.time() * 1000) + 30_000
    return LambdaContext(
        f"req-{n}", None, None, deadline_ms, "arn:aws:lambda:us-east-1:000000000000:function:bench"
    )


def main() -> None:
    mode, module_name = sys.argv[1], sys.argv[2]
    sys.stdout = awslambdaric.bootstrap.Unbuffered(sys.stdout)
    ctx = context(0)
    if mode == "cold":
        start = time.perf_counter_ns()
        module = importlib.import_module(module_name)
        module.handler(EVENT, ctx)
        print(json.dumps({"ms": (time.perf_counter_ns() - start) / 1e6}), file=sys.__stderr__)
        return
    module = importlib.import_module(module_name)
    handler = module.handler
    if mode == "calls":  # a fixed number of calls, for an instruction counter outside
        for _ in range(int(sys.argv[3])):
            handler(EVENT, ctx)
        return
    for _ in range(2000):
        handler(EVENT, ctx)
    batch, batches = 200, 60
    means = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(batch):
            handler(EVENT, ctx)
        means.append((time.perf_counter_ns() - start) / batch / 1000)
    print(json.dumps({"us": statistics.median(means)}), file=sys.__stderr__)


if __name__ == "__main__":
    main()
