"""The capacity policies the cost model prices, and their command-line spelling.

``on-demand``; ``provisioned:N`` (all day) or ``provisioned:N@H1-H2`` (UTC
hours H1 to H2, none outside); ``schedule:N@H1-H2,M@H3-H4,...`` (N by hour of
day, as the search finds it); ``always-on:K`` instances of ``--instance TYPE``.
Every policy's name is its spelling, so an answer's policy can be priced again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Policy", "PolicyError", "parse_policy"]

_PROVISIONED = re.compile(r"^provisioned:(\d+)(?:@(\d{1,2})-(\d{1,2}))?$")
_ALWAYS_ON = re.compile(r"^always-on:(\d+)$")


class PolicyError(ValueError):
    """A policy spec that does not parse; the message names it and the forms accepted."""


@dataclass(frozen=True)
class Policy:
    """One way to run a function: what is kept warm, by hour of day (UTC)."""

    kind: str  # on-demand | provisioned | schedule | always-on
    by_hour: tuple[int, ...] = (0,) * 24  # environments (provisioned) or instances kept
    instance: str | None = None  # always-on: the instance type

    @property
    def name(self) -> str:
        """The spelling `parse_policy` reads back."""
        if self.kind == "on-demand":
            return "on-demand"
        if self.kind == "always-on":
            return f"always-on:{self.by_hour[0]} x {self.instance}"
        runs = _runs(self.by_hour)
        if len(runs) == 1:
            n, first, last = runs[0]
            return (
                f"provisioned:{n}"
                if (first, last) == (0, 24)
                else f"provisioned:{n}@{first}-{last}"
            )
        if not runs:
            return "provisioned:0"
        return "schedule:" + ",".join(f"{n}@{first}-{last}" for n, first, last in runs)


def _runs(by_hour: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(N, first hour, hour after the last) for each run of equal, non-zero N."""
    runs: list[tuple[int, int, int]] = []
    for hour, n in enumerate(by_hour):
        if n and runs and runs[-1][0] == n and runs[-1][2] == hour:
            runs[-1] = (n, runs[-1][1], hour + 1)
        elif n:
            runs.append((n, hour, hour + 1))
    return runs


def parse_policy(text: str, instance: str | None = None) -> Policy:
    """``on-demand``, ``provisioned:N``, ``provisioned:N@H1-H2`` or ``always-on:K``."""
    spec = text.strip().lower()
    if spec == "on-demand":
        return Policy("on-demand")
    if _PROVISIONED.match(spec):
        return Policy("provisioned", _provisioned_hours(spec, text))
    if spec.startswith("schedule:"):
        hours = [0] * 24
        for part in spec.removeprefix("schedule:").split(","):
            run = _provisioned_hours(f"provisioned:{part}", text)
            hours = [max(a, b) for a, b in zip(hours, run, strict=True)]
        return Policy("schedule", tuple(hours))
    match = _ALWAYS_ON.match(spec)
    if match:
        k = int(match.group(1))
        if k < 1:
            raise PolicyError(f"{text!r}: always-on needs at least one instance")
        if instance is None:
            raise PolicyError(f"{text!r}: say which instance with --instance TYPE")
        return Policy("always-on", (k,) * 24, instance)
    raise PolicyError(
        f"{text!r}: expected on-demand, provisioned:N, provisioned:N@H1-H2, "
        "schedule:N@H1-H2,... or always-on:K"
    )


def _provisioned_hours(spec: str, text: str) -> tuple[int, ...]:
    """N by hour of day for ``provisioned:N`` or ``provisioned:N@H1-H2``."""
    match = _PROVISIONED.match(spec)
    if match is None:
        raise PolicyError(f"{text!r}: expected N@H1-H2 in each part of a schedule")
    n = int(match.group(1))
    if match.group(2) is None:
        return (n,) * 24
    first, last = int(match.group(2)), int(match.group(3))
    if not 0 <= first < last <= 24:
        raise PolicyError(
            f"{text!r}: hours H1-H2 must satisfy 0 <= H1 < H2 <= 24 (UTC, H2 excluded)"
        )
    return tuple(n if first <= h < last else 0 for h in range(24))
