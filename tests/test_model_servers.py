"""``@instrument`` on model servers' handler classes: Hugging Face Inference Endpoints'
``EndpointHandler`` and Replicate cog's predictors, in the exact shapes their docs give
(neither toolkit is needed to call them: each server only constructs the class once and
calls its serving method per request, which is what these tests do)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

import inferobs as obs

from .helpers import collecting


def fresh_runtime() -> obs.Runtime:
    return obs.Runtime(environ={}, process_start=obs.Runtime(environ={}).clock.monotonic_ns())


def test_a_hugging_face_endpoint_handler_records_its_init_and_each_call() -> None:
    sink = collecting()
    runtime = fresh_runtime()

    @obs.instrument(model="sentiment", runtime=runtime)
    class EndpointHandler:
        def __init__(self, path: str = "") -> None:
            time.sleep(0.05)  # the model's weights, loaded from ``path``
            self.path = path

        def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
            with obs.stage("inference"):
                return [{"label": "POSITIVE", "score": 0.9}]

    handler = EndpointHandler("/repository")  # the server: once
    assert handler({"inputs": "I love it"}) == [{"label": "POSITIVE", "score": 0.9}]
    handler({"inputs": "again"})
    first, second = sink.records
    assert first.cold_start and first.init_ms is not None and first.init_ms >= 50
    assert not second.cold_start and second.init_ms is None
    assert first.model == "sentiment" and "inference" in first.stages
    assert EndpointHandler.__call__.__name__ == "__call__"


def test_a_cog_predictor_records_setup_as_init_and_predictions_streamed_or_not() -> None:
    sink = collecting()
    runtime = fresh_runtime()

    class BasePredictor:  # cog's base class, as cog defines it: setup() and predict()
        def setup(self) -> None:
            pass

        def predict(self, **kwargs: Any) -> Any:
            raise NotImplementedError

    @obs.instrument(model="sdxl", runtime=runtime)
    class Predictor(BasePredictor):
        def setup(self) -> None:
            time.sleep(0.05)

        def predict(self, prompt: str = "", steps: int = 2) -> Iterator[str]:  # type: ignore[override]
            for step in range(steps):  # a streamed output: recorded to its last item
                with obs.stage("denoise"):
                    time.sleep(0.01)
                yield f"{prompt}:{step}"

    predictor = Predictor()
    predictor.setup()  # cog: once, before any prediction
    assert list(predictor.predict(prompt="cat", steps=3)) == ["cat:0", "cat:1", "cat:2"]
    (record,) = sink.records
    assert record.cold_start and record.init_ms is not None and record.init_ms >= 50
    assert record.stages["denoise"] >= 30 and record.duration_ms >= 30


def test_an_async_predict_is_recorded_to_its_end() -> None:
    sink = collecting()

    @obs.instrument(runtime=fresh_runtime())
    class Predictor:
        def setup(self) -> None:
            pass

        async def predict(self, text: str) -> str:
            await asyncio.sleep(0.02)
            return text.upper()

    predictor = Predictor()
    predictor.setup()
    assert asyncio.run(predictor.predict("hi")) == "HI"
    (record,) = sink.records
    assert record.duration_ms >= 20


def test_a_class_of_neither_shape_is_refused_with_a_clear_message() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="with predict\\(\\), or __call__\\(\\)"):
        obs.instrument(Plain)


def test_nothing_of_what_a_handler_class_is_given_reaches_a_record() -> None:
    sink = collecting()

    @obs.instrument(runtime=fresh_runtime())
    class EndpointHandler:
        def __init__(self, path: str = "") -> None:
            pass

        def __call__(self, data: dict[str, Any]) -> str:
            obs.observe_input(data)  # its shape, never its values
            return "ok"

    marker = "privacy-marker-handler-31bf"
    EndpointHandler()({"inputs": marker, marker: [marker]})
    (record,) = sink.records
    assert marker not in record.to_json() and record.input is not None
