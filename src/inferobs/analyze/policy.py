"""The capacity policies the cost model prices, and their command-line spelling.

``on-demand``; ``provisioned:N`` (all day) or ``provisioned:N@H1-H2`` (UTC
hours H1 to H2, none outside); a ``schedule`` of N by hour of day (found by the
search, never typed); ``always-on:K`` instances of ``--instance TYPE``.
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
        if self.kind == "on-demand":
            return "on-demand"
        if self.kind == "always-on":
            return f"always-on:{self.by_hour[0]} x {self.instance}"
        levels = sorted(set(self.by_hour))
        if len(levels) == 1:
            return f"provisioned:{levels[0]}"
        if self.kind == "provisioned":  # N within one run of hours, 0 outside
            hours = [h for h, n in enumerate(self.by_hour) if n]
            return f"provisioned:{max(self.by_hour)}@{hours[0]}-{hours[-1] + 1}"
        return "schedule:" + ",".join(str(n) for n in self.by_hour)


def parse_policy(text: str, instance: str | None = None) -> Policy:
    """``on-demand``, ``provisioned:N``, ``provisioned:N@H1-H2`` or ``always-on:K``."""
    spec = text.strip().lower()
    if spec == "on-demand":
        return Policy("on-demand")
    match = _PROVISIONED.match(spec)
    if match:
        n = int(match.group(1))
        if match.group(2) is None:
            return Policy("provisioned", (n,) * 24)
        first, last = int(match.group(2)), int(match.group(3))
        if not 0 <= first < last <= 24:
            raise PolicyError(
                f"{text!r}: hours H1-H2 must satisfy 0 <= H1 < H2 <= 24 (UTC, H2 excluded)"
            )
        return Policy("provisioned", tuple(n if first <= h < last else 0 for h in range(24)))
    match = _ALWAYS_ON.match(spec)
    if match:
        k = int(match.group(1))
        if k < 1:
            raise PolicyError(f"{text!r}: always-on needs at least one instance")
        if instance is None:
            raise PolicyError(f"{text!r}: say which instance with --instance TYPE")
        return Policy("always-on", (k,) * 24, instance)
    raise PolicyError(
        f"{text!r}: expected on-demand, provisioned:N, provisioned:N@H1-H2 or always-on:K"
    )
