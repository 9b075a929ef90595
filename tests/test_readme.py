"""The README lists every extra pyproject.toml declares: none is found only in the build file."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_extra_is_listed_in_the_readme() -> None:
    tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    readme = (ROOT / "README.md").read_text()
    assert extras, "pyproject.toml declares no extras"
    assert [name for name in extras if f"| `{name}` |" not in readme] == []
