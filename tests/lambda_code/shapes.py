"""Handler shapes the lifecycle tests run under the real Lambda runtime client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import inferobs as obs

POOL = ThreadPoolExecutor(2)  # module scope, as users keep it: reused by every invocation


@obs.stage("inference")
def predict(values: list[float]) -> float:
    time.sleep(0.02)
    return sum(values)


@obs.instrument(model="m")
def pooled(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Runs the model on a worker thread, as handlers that overlap I/O and compute do."""
    return {"total": POOL.submit(predict, event.get("values", [1.0])).result()}


class Service:
    """A handler written as a method of an object holding the model."""

    def __init__(self) -> None:
        self.calls = 0

    @obs.instrument(model="m", skip_warmups=True)
    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls += 1
        time.sleep(float(event.get("sleep_s", 0)))
        return {"calls": self.calls}


method = Service().handle
