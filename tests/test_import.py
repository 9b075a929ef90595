"""`import inferobs` must stay light: the standard library and our own small modules."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = {
    "numpy",
    "pandas",
    "scipy",
    "boto3",
    "botocore",
    "grpc",
    "google",
    "azure",
    "opentelemetry",
    "structlog",
    "pyarrow",
    "sklearn",
    "torch",
    "aws_xray_sdk",
    "rich",
    "typer",
    "click",
}
# standard-library modules that cost milliseconds and that the Lambda runtime does not load
SLOW_STDLIB = {
    "typing",
    "inspect",
    "dataclasses",
    "asyncio",
    "random",
    "logging",
    "ssl",
    "importlib.metadata",
    "email",
    "http",
}


LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]abc",
}


def loaded_after(statement: str, env: dict[str, str] | None = None) -> set[str]:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout
    return set(out.split())


def test_import_loads_nothing_heavy() -> None:
    loaded = loaded_after("import inferobs")
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert loaded & SLOW_STDLIB == set()
    assert "inferobs.streams" not in loaded  # only generator handlers and stages need it


@pytest.mark.parametrize("env", [{}, LAMBDA_ENV], ids=["local", "lambda"])
def test_first_invocation_loads_nothing_heavy_either(env: dict[str, str]) -> None:
    loaded = loaded_after(
        "import inferobs as obs\n"
        "h = obs.instrument(lambda e, c: obs.observe_input([1.0]))\n"
        "h({}, None)",
        env,
    )
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert loaded & SLOW_STDLIB == set()
