"""Prices as data: the dated TOML files in ``analyze/prices/``, one per provider.

No price is a literal in code (DESIGN.md, principle 6): every number the cost
model multiplies by is read here, from a file that names the page it was read
from and when, so a user can check it and replace it (``--pricing FILE``: a
TOML file of the same shape, laid over the shipped prices key by key).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .toml_file import read_toml

__all__ = ["PROVIDERS", "Prices", "PricingError", "load", "tiered"]

PROVIDERS = ("aws", "gcp", "azure")
_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prices")


class PricingError(ValueError):
    """A price is missing or malformed: the message names its key and the files read."""


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class Prices:
    """Every provider's prices, looked up by key path (``aws.lambda.us-east-1...``)."""

    def __init__(self, data: dict[str, Any], files: list[str]) -> None:
        self.data = data
        self.files = files

    def table(self, *path: str) -> dict[str, Any]:
        """The table at ``path``; `PricingError` naming the path where there is none."""
        node: Any = self.data
        for depth, key in enumerate(path):
            if not isinstance(node, dict) or key not in node:
                where = ".".join(path[: depth + 1])
                raise PricingError(f"no price for {where} in {', '.join(self.files)}")
            node = node[key]
        if not isinstance(node, dict):
            raise PricingError(f"{'.'.join(path)}: expected a table of prices")
        return node

    def number(self, *path: str) -> float:
        """The non-negative number at ``path``."""
        *parent, key = path
        table = self.table(*parent)
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            where = ".".join(path)
            if value is None:
                raise PricingError(f"no price for {where} in {', '.join(self.files)}")
            raise PricingError(f"{where}={value!r}: expected a non-negative number")
        return float(value)

    def tiers(self, *path: str) -> list[tuple[float | None, float]]:
        """A tiered price: (cumulative upper bound or None for the last, price per unit)."""
        *parent, key = path
        value = self.table(*parent).get(key)
        where = ".".join(path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [(None, float(value))]
        if not isinstance(value, list) or not value:
            raise PricingError(f"no tiered price for {where} in {', '.join(self.files)}")
        out: list[tuple[float | None, float]] = []
        for n, tier in enumerate(value):
            bounds = [k for k in tier if k.startswith("up_to")] if isinstance(tier, dict) else []
            usd = tier.get("usd") if isinstance(tier, dict) else None
            if isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd < 0:
                raise PricingError(f"{where}[{n}]: expected a table with a usd price")
            last = n == len(value) - 1
            if last and bounds:
                raise PricingError(f"{where}: the last tier has no upper bound")
            if not last and len(bounds) != 1:
                raise PricingError(f"{where}[{n}]: expected one up_to_... bound")
            out.append((None if last else float(tier[bounds[0]]), float(usd)))
        return out


def load(override: str | None = None) -> Prices:
    """The shipped prices, with ``override`` (a TOML file of the same shape) laid over them."""
    data: dict[str, Any] = {}
    files = []
    for provider in PROVIDERS:
        path = os.path.join(_HERE, f"{provider}.toml")
        data[provider] = read_toml(path, PricingError)
        files.append(path)
    if override is not None:
        over = read_toml(override, PricingError)
        unknown = sorted(set(over) - set(PROVIDERS))
        if unknown:
            raise PricingError(
                f"{override}: top-level keys must be providers ({', '.join(PROVIDERS)}), "
                f"not {', '.join(unknown)}"
            )
        data = _merge(data, over)
        files.append(override)
    return Prices(data, files)


def tiered(quantity: float, tiers: list[tuple[float | None, float]], already: float = 0.0) -> float:
    """The charge for ``quantity`` units on cumulative ``tiers``, ``already`` units being used."""
    charge = 0.0
    position = already
    remaining = quantity
    for upper, usd in tiers:
        top = float("inf") if upper is None else upper
        if remaining <= 0:
            break
        if position < top:
            take = min(remaining, top - position)
            charge += take * usd
            remaining -= take
            position += take
    return charge
