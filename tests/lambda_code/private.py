"""A handler that puts a secret marker everywhere it can; nothing of it may be written.

The marker is the value of strings, the text of dict keys (a user id used as a
key), the name of a numpy structured dtype's field and, when the event is an API
Gateway request, the name of a header and of a query parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import inferobs as obs


@obs.instrument(model="m")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    secret = event["secret"]
    with obs.stage("preprocess"):
        if "headers" in event:  # a gateway request, observed as it came
            features: Any = event
        else:
            features = {
                "text": secret,
                "tokens": secret.split("-"),
                "raw": secret.encode(),
                "matrix": np.array([[secret, secret]]),
                "nested": [{"note": secret}],
                secret: [0.5, 1.5],
                "instances": [{secret: 1.0}],
                "table": np.zeros(2, dtype=[(secret, "f4"), ("n", "i4")]),
            }
    obs.observe_input(features)
    with obs.stage("inference"):
        if event.get("fail"):
            raise ValueError(f"could not score {secret}")
    return {"ok": True}
