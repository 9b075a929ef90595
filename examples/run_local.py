"""Run the example handler under the real Lambda runtime client on loopback.

A local Runtime API endpoint stands in for Lambda; ``awslambdaric`` runs the
handler in its own process exactly as it would on AWS. Each invocation's
inferobs record is printed as the function wrote it to stdout.
"""

from __future__ import annotations

import json
import os
import sys

from inferobs.local.lambda_process import LocalLambda

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = [
    {"text": "great model, love it"},
    {"text": "slow and broken"},
    {"text": "fast answers, good results"},
    {"text": "I hate waiting"},
    {"comment": "no text field: the handler raises KeyError"},
    {"text": "excellent"},
]


def main() -> int:
    with LocalLambda(
        "handler.handler",
        code_dir=os.path.join(HERE, "sentiment"),
        function_name="sentiment-classifier",
        memory_mb=1024,
    ) as function:
        for event in EVENTS:
            outcome = function.invoke(event)
            print(f"-> {outcome.status}: {outcome.body.decode()[:100]}")
        records = function.wait_for_records(len(EVENTS))
    print(f"\n{len(records)} inferobs records (one JSON line per invocation):\n")
    for record in records:
        print(json.dumps(record, separators=(",", ":")))
    cold = [r for r in records if r.get("cold_start")]
    errors = [r.get("error_type", "?") for r in records if r["status"] == "error"]
    sizes = sorted(len(json.dumps(r, separators=(",", ":"))) for r in records)
    print(f"\ncold starts: {len(cold)}" + (f" (init {cold[0]['init_ms']:.1f} ms)" if cold else ""))
    print(f"errors: {len(errors)} {errors}")
    print(f"median line size: {sizes[len(sizes) // 2]} bytes")
    return 0 if len(records) == len(EVENTS) else 1


if __name__ == "__main__":
    sys.exit(main())
