"""Powertools Logger + Metrics emitting inferobs's EMF figures, the stages timed by hand.

Powertools has no stage timer, so the handler times its three stages with
`time.perf_counter` and adds the handler's duration and each stage's latency
as EMF metrics; `capture_cold_start_metric` adds the cold start. One EMF
line per invocation, as inferobs writes one line.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from work import infer, postprocess, preprocess

logger = Logger(service="bench")
metrics = Metrics(namespace="bench", service="bench")


def add_latencies(t0: float, t1: float, t2: float, t3: float) -> None:
    """The duration and the three stage latencies, from the stages' boundaries (seconds)."""
    ms = MetricUnit.Milliseconds
    metrics.add_metric(name="PreprocessMs", unit=ms, value=(t1 - t0) * 1000)
    metrics.add_metric(name="InferenceMs", unit=ms, value=(t2 - t1) * 1000)
    metrics.add_metric(name="PostprocessMs", unit=ms, value=(t3 - t2) * 1000)
    metrics.add_metric(name="DurationMs", unit=ms, value=(t3 - t0) * 1000)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    x = preprocess(event)
    t1 = time.perf_counter()
    y = infer(x)
    t2 = time.perf_counter()
    out = postprocess(y)
    add_latencies(t0, t1, t2, time.perf_counter())
    return out
