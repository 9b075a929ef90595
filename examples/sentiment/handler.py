"""An example inference handler: a small text classifier, instrumented with inferobs.

The model is a linear classifier over hashed word features, loaded at module
scope as a real model would be, so its load time counts as init.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

import inferobs as obs

FEATURES = 256


def load_model() -> np.ndarray:
    """Weights for (negative, positive), reproducible without a download."""
    rng = np.random.default_rng(20261101)
    weights = rng.normal(0.0, 0.1, size=(FEATURES, 2)).astype(np.float32)
    for word in ("good", "great", "love", "excellent", "fast"):
        weights[zlib.crc32(word.encode()) % FEATURES] = (-2.0, 2.0)
    for word in ("bad", "slow", "hate", "broken", "awful"):
        weights[zlib.crc32(word.encode()) % FEATURES] = (2.0, -2.0)
    return weights


WEIGHTS = load_model()
LABELS = ("negative", "positive")


def tokenize(text: str) -> np.ndarray:
    features = np.zeros((1, FEATURES), dtype=np.float32)
    for word in text.lower().split():
        features[0, zlib.crc32(word.strip(".,!?").encode()) % FEATURES] += 1.0
    return features


@obs.instrument(model="sentiment", model_version="2026-11-01")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with obs.stage("preprocess"):
        x = tokenize(event["text"])
    obs.observe_input(x)
    with obs.stage("inference"):
        logits = x @ WEIGHTS
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    with obs.stage("postprocess"):
        label = int(probabilities.argmax())
        return {"label": LABELS[label], "score": round(float(probabilities[0, label]), 4)}
