"""Handlers the lifecycle tests run under the real Lambda runtime interface client."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import inferobs as obs

LOAD_S = float(os.environ.get("TEST_MODEL_LOAD_S", "0.05"))
time.sleep(LOAD_S)  # stands in for loading a model at module scope: init work

_LOOP_IDS: list[int] = []


@obs.instrument(model="m", model_version="v1")
def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with obs.stage("preprocess"):
        values = [float(v) for v in event.get("values", [0.0])]
    obs.observe_input(values)
    with obs.stage("inference"):
        total = sum(values)
    obs.observe_prediction(total)  # counted only where a drift baseline is configured
    return {"total": total, "pid": os.getpid()}


@obs.instrument(model="m")
async def async_ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with obs.stage("inference"):
        await asyncio.sleep(0.001)
    _LOOP_IDS.append(id(asyncio.get_running_loop()))
    return {"loops": len(set(_LOOP_IDS))}


class ModelError(RuntimeError):
    pass


@obs.instrument(model="m")
def raises(event: dict[str, Any], context: Any) -> None:
    with obs.stage("preprocess"):
        pass
    with obs.stage("inference"):
        raise ModelError("weights missing")


@obs.instrument(model="m")
def slow(event: dict[str, Any], context: Any) -> str:
    with obs.stage("preprocess"):
        obs.observe_prediction(1.0)  # counted only where a drift baseline is configured
    with obs.stage("inference"):
        time.sleep(float(event.get("sleep_s", 5)))
    return "finished"


def remaining(event: dict[str, Any], context: Any) -> int:
    """The milliseconds the invocation had left when the handler began."""
    return int(context.get_remaining_time_in_millis())
