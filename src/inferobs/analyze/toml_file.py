"""Reading the analyzer's TOML files (prices, alert rules): one reader, one way to fail.

tomllib is the standard library's from Python 3.11; 3.10 reads with tomli,
the same parser published apart (the ``cli`` extra installs it there).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["read_toml"]


def read_toml(path: str, error: type[ValueError]) -> dict[str, Any]:
    """The file's tables; ``error`` (naming the file and why) when it is unreadable or not TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not a TOML file ({exc})") from None
