"""The model all benchmark handlers share: a 1x20 float32 input through a linear layer."""

from __future__ import annotations

from typing import Any

import numpy as np

WEIGHTS = np.linspace(-1.0, 1.0, 40, dtype=np.float32).reshape(20, 2)


def preprocess(event: dict[str, Any]) -> np.ndarray:
    return np.asarray(event["x"], dtype=np.float32).reshape(1, 20)


def infer(x: np.ndarray) -> np.ndarray:
    return x @ WEIGHTS


def postprocess(y: np.ndarray) -> dict[str, Any]:
    return {"label": int(y.argmax())}
