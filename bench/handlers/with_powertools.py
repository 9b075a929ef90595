"""AWS Lambda Powertools: Logger and Metrics decorators, as their docs show them."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from work import infer, postprocess, preprocess

logger = Logger(service="bench")
metrics = Metrics(namespace="bench", service="bench")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    x = preprocess(event)
    y = infer(x)
    return postprocess(y)
