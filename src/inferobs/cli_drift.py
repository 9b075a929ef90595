"""`obs report --drift`: its options, the baseline and rules it judges by, and exit status 3.

Kept apart from `inferobs.cli` so that module stays the commands' shape; the
drift comparison is `inferobs.drift.compare`, the report
`inferobs.analyze.drift_report`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from .exit_codes import ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .analyze.frames import Frames
    from .analyze.rules import Rule
    from .drift.baseline import Baseline

__all__ = ["BASELINE_NAME", "DriftRequest", "check_alert", "drift_options", "load_rules_option"]

BASELINE_NAME = "baseline.json"  # looked for in a store folder when no baseline is named


class _Alert(click.ClickException):
    """An alert rule fired: exit 3 after the report was written."""

    exit_code = ExitCode.ALERT


def drift_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--drift`` options of ``obs report``."""
    options = [
        click.option(
            "--drift", is_flag=True, help="Drift of predictions and features against a baseline."
        ),
        click.option(
            "--baseline",
            metavar="FILE",
            help="With --drift: the baseline (default: INFEROBS_BASELINE, else baseline.json "
            "in the store folder read).",
        ),
        click.option(
            "--window",
            "period",
            metavar="DURATION",
            default="1h",
            show_default=True,
            help="With --drift: the period each statistic is computed over (30m, 1h, 1d).",
        ),
        click.option(
            "--rules",
            metavar="FILE",
            help="Alert rules (TOML) instead of the shipped ones: drift rules with --drift, "
            "operations rules (latency, errors, cold starts) always (docs/drift.md).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class DriftRequest:
    """What ``--drift`` asked, checked before anything is read."""

    def __init__(
        self, *, baseline: str | None, period: str, rules: str | None, sources: Sequence[str]
    ) -> None:
        from .config import parse_window
        from .drift.baseline import Baseline, BaselineError

        try:
            self.period_s = parse_window(period)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--window'") from None
        path = baseline or _default_baseline(sources)
        if path is None:
            raise click.UsageError(
                "--drift needs the baseline the windows were counted against: --baseline FILE "
                "(or INFEROBS_BASELINE)"
            )
        self.path: str = path
        try:
            self.baseline: Baseline = Baseline.load(path)
        except BaselineError as exc:
            raise click.ClickException(str(exc)) from None
        self.rules = load_rules_option(rules)

    def answer(self, frames: Frames, since_ns: int | None) -> dict[str, Any]:
        from .analyze.drift_report import drift_answer

        return drift_answer(
            frames,
            self.baseline,
            baseline_path=self.path,
            period_s=self.period_s,
            rules=self.rules,
            since_ns=since_ns,
        )


def load_rules_option(path: str | None) -> list[Rule]:
    """The rules of ``--rules`` (the shipped ones without it); a wrong file is an error."""
    from .analyze.rules import RuleError, load_rules

    try:
        return load_rules(path)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None


def check_alert(findings: list[dict[str, Any]]) -> None:
    """Exit 3 (after the report was written) when an alert rule fired."""
    alerts = sum(f["level"] == "alert" for f in findings)
    if alerts:
        raise _Alert(f"{alerts} alert finding(s); see the report")


def _default_baseline(sources: Sequence[str]) -> str | None:
    """INFEROBS_BASELINE, else the baseline kept in the first store folder read (the demo's)."""
    named = os.environ.get("INFEROBS_BASELINE")
    if named:
        return named
    for source in sources:
        candidate = os.path.join(source, BASELINE_NAME)
        if os.path.isdir(source) and os.path.isfile(candidate):
            return candidate
    return None
