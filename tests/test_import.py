"""`import inferobs` must stay light: the standard library and our own small modules."""

from __future__ import annotations

import subprocess
import sys

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


def loaded_after(statement: str) -> set[str]:
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
    ).stdout
    return set(out.split())


def test_import_loads_nothing_heavy() -> None:
    loaded = loaded_after("import inferobs")
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert loaded & SLOW_STDLIB == set()


def test_first_invocation_loads_nothing_heavy_either() -> None:
    loaded = loaded_after(
        "import inferobs as obs\n"
        "h = obs.instrument(lambda e, c: obs.observe_input([1.0]))\n"
        "h({}, None)"
    )
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert loaded & SLOW_STDLIB == set()
