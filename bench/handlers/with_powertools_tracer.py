"""Powertools Logger + Metrics + Tracer: the stage metrics, and an X-Ray subsegment per stage.

`@tracer.capture_lambda_handler` opens the handler's subsegment (and
records the response and the cold start on it, its defaults); each stage
gets a subsegment of its own through the X-Ray recorder, as Powertools'
docs show for blocks of code. Tracer streams every subsegment to the
daemon as it closes.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Tracer
from with_powertools_stages import add_latencies, logger, metrics
from work import infer, postprocess, preprocess

tracer = Tracer(service="bench")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    with tracer.provider.in_subsegment("preprocess"):
        x = preprocess(event)
    t1 = time.perf_counter()
    with tracer.provider.in_subsegment("inference"):
        y = infer(x)
    t2 = time.perf_counter()
    with tracer.provider.in_subsegment("postprocess"):
        out = postprocess(y)
    add_latencies(t0, t1, t2, time.perf_counter())
    return out
