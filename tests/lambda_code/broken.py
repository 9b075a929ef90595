"""A function whose code fails at import: its init ends in an error, never in a handler."""

from __future__ import annotations

import importlib

# stands in for a dependency missing from the deployment package
importlib.import_module("a_dependency_the_package_lacks")


def handler(event: object, context: object) -> None:
    """Never reached: the import above fails first."""
