"""The labels every handler surface takes (model, model version, variant), checked once."""

from __future__ import annotations

from ..config import ConfigError
from ..context import MAX_TAG_TEXT

__all__ = ["check_labels"]


def check_labels(
    surface: str, model: str | None, model_version: str | None, variant: str | None
) -> None:
    """`ConfigError` naming ``surface``'s option when a label is not a short string."""
    for option, value in (("model", model), ("model_version", model_version), ("variant", variant)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{surface}({option}={value!r}): expected a string")
        if len(value) > MAX_TAG_TEXT:  # every byte of it would be in every line, and billed
            raise ConfigError(
                f"{surface}({option}=...): at most {MAX_TAG_TEXT} characters; got {len(value)}"
            )
