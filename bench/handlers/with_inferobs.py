"""inferobs: three stages, an input summary, one JSON line per invocation."""

from __future__ import annotations

from typing import Any

from work import infer, postprocess, preprocess

import inferobs as obs


@obs.instrument(model="bench", model_version="1")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with obs.stage("preprocess"):
        x = preprocess(event)
    obs.observe_input(x)
    with obs.stage("inference"):
        y = infer(x)
    with obs.stage("postprocess"):
        return postprocess(y)
