"""``obs.instrument_sagemaker`` driven by the real SageMaker inference toolkit
(sagemaker-inference's ``Transformer``), as its model servers drive it.

The toolkit runs inside a model server (multi-model-server or TorchServe), which hands
``transform`` a context; that server is not here, so the test's context gives what the
toolkit reads of it (the model's folder, the request's headers) in its documented shape.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sagemaker_inference.transformer import Transformer

import inferobs as obs

from .helpers import Collect, collecting

HANDLERS = """
import json, time
import inferobs as obs

def model_fn(model_dir):
    time.sleep(0.05)  # the weights, from model_dir
    return {"bias": 1}

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    if data.get("fail"):
        raise ValueError("the model's own error")
    return sum(data["x"]) + model["bias"]

def output_fn(prediction, accept):
    return json.dumps({"y": prediction})

obs.instrument_sagemaker(globals(), model="summer", runtime=RUNTIME)
"""

TRANSFORM = """
import json
import inferobs as obs

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    with obs.stage("inference"):
        return json.dumps({"n": len(json.loads(body)["x"])}), accept

obs.instrument_sagemaker(globals(), runtime=RUNTIME)
"""


class _Properties:
    def get_request_properties(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Accept": "application/json"}


class ServerContext:
    """What the toolkit reads of the model server's context."""

    def __init__(self, model_dir: str) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [_Properties()]
        self.types: list[str] = []

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.types.append(content_type)

    def set_response_status(self, code: int = 200, phrase: str = "") -> None:
        self.status = code


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def write(name: str, text: str) -> None:
        # the environment's own runtime, begun when the toolkit imports the module
        runtime = (
            "import time as _t, inferobs as _obs\n"
            "RUNTIME = _obs.Runtime(environ={}, process_start=_t.monotonic_ns())\n"
        )
        (tmp_path / f"{name}.py").write_text(runtime + textwrap.dedent(text))
        monkeypatch.setenv("SAGEMAKER_PROGRAM", name)

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for name in ("sm_handlers", "sm_transform"):
        sys.modules.pop(name, None)


def serve(tmp_path: Path, bodies: list[bytes]) -> list[Any]:
    transformer = Transformer()
    context = ServerContext(str(tmp_path))
    return [transformer.transform([{"body": body}], context) for body in bodies]


def test_model_fn_is_init_and_each_request_one_record_with_its_three_stages(
    module: Any, tmp_path: Path
) -> None:
    sink: Collect = collecting()
    module("sm_handlers", HANDLERS)
    answers = serve(tmp_path, [b'{"x": [1, 2]}', b'{"x": [3]}', b'{"x": [], "fail": true}'])
    assert answers[0] == ['{"y": 4}'] and answers[1] == ['{"y": 4}']
    first, second, failed = sink.records
    assert set(first.stages) == {"preprocess", "inference", "postprocess"}
    assert first.cold_start and first.init_ms is not None and first.init_ms >= 50
    assert not second.cold_start and first.model == "summer"
    assert (failed.status, failed.error_type, failed.error_stage) == (
        "error",
        "ValueError",
        "inference",
    )
    assert "postprocess" not in failed.stages


def test_a_transform_fn_is_one_record(module: Any, tmp_path: Path) -> None:
    sink = collecting()
    module("sm_transform", TRANSFORM)
    assert serve(tmp_path, [b'{"x": [1, 2, 3]}']) == [['{"n": 3}']]
    (record,) = sink.records
    assert record.status == "ok" and "inference" in record.stages


def test_a_module_with_no_handler_function_is_refused() -> None:
    with pytest.raises(ValueError, match="defines none of input_fn"):
        obs.instrument_sagemaker({"model_fn": lambda model_dir: None})


def test_nothing_of_a_request_body_reaches_a_record(module: Any, tmp_path: Path) -> None:
    sink = collecting()
    module("sm_handlers", HANDLERS)
    marker = "privacy-marker-sagemaker-77aa"
    serve(tmp_path, [json.dumps({"x": [1], "note": marker}).encode()])
    (record,) = sink.records
    assert marker not in record.to_json()
