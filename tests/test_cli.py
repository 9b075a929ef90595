"""The `obs` command (only `obs version` so far)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import inferobs
from inferobs.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"inferobs {inferobs.__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "usage: obs" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "obs")
    out = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("inferobs ")
