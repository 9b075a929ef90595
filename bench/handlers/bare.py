"""No observability: the baseline."""

from __future__ import annotations

from typing import Any

from work import infer, postprocess, preprocess


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    x = preprocess(event)
    y = infer(x)
    return postprocess(y)
