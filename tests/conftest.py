from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from inferobs import config, context, lifecycle

LAMBDA_CODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lambda_code")


@pytest.fixture(autouse=True)
def fresh_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test starts from the defaults, whatever the environment says."""
    for name in list(os.environ):
        if name.startswith(("INFEROBS_", "AWS_LAMBDA_", "_X_AMZN")):
            monkeypatch.delenv(name)
    # off-cloud the default exporters include the store: keep it out of the checkout
    monkeypatch.setenv("INFEROBS_STORE_PATH", str(tmp_path_factory.mktemp("store")))
    _forget()
    yield
    _forget()


def _forget() -> None:
    """Settings, exporters and the drift monitor of an earlier test are not this one's."""
    config._settings = None
    lifecycle._exporters.settings = None
    context.drift.settings = context.drift.monitor = None
