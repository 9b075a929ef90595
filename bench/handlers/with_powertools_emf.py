"""Powertools doing comparable output work: Logger + Metrics, one metric (one EMF line) per call.

The plain decorators write nothing per invocation; inferobs writes one line per
invocation. This variant makes Powertools write one line per invocation too (a
latency metric, flushed as an EMF JSON line), so the output work is alike.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from work import infer, postprocess, preprocess

logger = Logger(service="bench")
metrics = Metrics(namespace="bench", service="bench")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    start = time.perf_counter()
    x = preprocess(event)
    y = infer(x)
    metrics.add_metric(
        name="InferenceMs", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - start) * 1000
    )
    return postprocess(y)
