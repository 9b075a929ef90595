"""A handler that puts a secret marker everywhere it can; nothing of it may be written."""

from __future__ import annotations

from typing import Any

import numpy as np

import inferobs as obs


@obs.instrument(model="m")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    secret = event["secret"]
    with obs.stage("preprocess"):
        features = {
            "text": secret,
            "tokens": secret.split("-"),
            "raw": secret.encode(),
            "matrix": np.array([[secret, secret]]),
            "nested": [{"note": secret}],
        }
    obs.observe_input(features)
    with obs.stage("inference"):
        if event.get("fail"):
            raise ValueError(f"could not score {secret}")
    return {"ok": True}
