"""`obs report --costs`: its options, and the run from sources to the answer (and exit code).

Kept apart from `inferobs.cli` so that module stays the commands' shape; the
cost model itself is `inferobs.analyze.costs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import click

from .exit_codes import ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .analyze.frames import Frames

__all__ = ["CostRequest", "Finite", "cost_options"]

_ARCHES = ("x86_64", "arm64")


class Finite(click.FloatRange):
    """A number in a range that is never NaN or infinite (click's FLOAT reads "nan" and "inf")."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number: float = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):  # said so before any range is, "inf" being above all
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        converted: float = super().convert(number, param, ctx)
        return converted


def _agreed(configs: dict[str, dict[str, Any]], name: str) -> str | None:
    """The value every pulled configuration gives ``name``, when there is exactly one."""
    values = {config[name] for config in configs.values() if config.get(name)}
    return str(values.pop()) if len(values) == 1 else None


class _OverBudget(click.ClickException):
    """The current setup's projected month is over ``--budget``: exit 4 after the report."""

    exit_code = ExitCode.OVER_BUDGET


def cost_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--costs`` options of ``obs report``, outermost last."""
    options = [
        click.option("--costs", is_flag=True, help="Price every way to run each function."),
        click.option("--until", metavar="WHEN", help="With --costs: the window's end."),
        click.option(
            "--max-cold-start-rate",
            type=Finite(0, 1),
            metavar="R",
            help="SLO: the most cold starts allowed, as a fraction (0.01 = 1%).",
        ),
        click.option(
            "--p99-ms",
            type=Finite(0, min_open=True),
            metavar="MS",
            help="SLO: the p99 latency allowed, cold starts included.",
        ),
        click.option(
            "--pricing",
            metavar="FILE",
            help="A TOML file of prices laid over the shipped ones (docs/pricing.md).",
        ),
        click.option(
            "--policy",
            "policy_specs",
            multiple=True,
            metavar="SPEC",
            help="Price exactly these: on-demand, provisioned:N, provisioned:N@H1-H2, "
            "always-on:K (repeatable).",
        ),
        click.option(
            "--instance",
            metavar="TYPE",
            help="For always-on: lmi:TYPE, ec2:TYPE or fargate:VCPUxGB (e.g. ec2:c7g.large).",
        ),
        click.option(
            "--per-instance",
            type=click.IntRange(1),
            metavar="C",
            help="Requests an always-on instance serves at once (default: its vCPUs).",
        ),
        click.option(
            "--memory-mb",
            type=click.IntRange(128, 10240),
            help="Price at this memory size (default: the size the records show).",
        ),
        click.option(
            "--arch",
            type=click.Choice(_ARCHES),
            help="Default: the architecture a pulled configuration names, else x86_64.",
        ),
        click.option(
            "--provider",
            type=click.Choice(("aws", "gcp", "azure")),
            help="Whose billing: Lambda, Cloud Run or Azure Functions "
            "(default: the platform the records name, else aws).",
        ),
        click.option(
            "--region",
            help="Default: the region a pulled configuration names, else us-east-1 (aws), "
            "us-central1 (gcp), eastus (azure).",
        ),
        click.option(
            "--keep-alive-minutes",
            type=Finite(0),
            metavar="M",
            help="How long an idle environment lives (default: the price file's, docs/costs.md).",
        ),
        click.option("--free-tier", is_flag=True, help="Count the monthly free tier."),
        click.option(
            "--budget",
            type=Finite(0),
            metavar="USD",
            help="Exit 4 when the current setup's projected month costs more.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class CostRequest:
    """What ``--costs`` asked, checked before anything is read."""

    def __init__(
        self,
        *,
        until: str | None = None,
        max_cold_start_rate: float | None = None,
        p99_ms: float | None = None,
        pricing: str | None = None,
        policy_specs: Sequence[str] = (),
        instance: str | None = None,
        per_instance: int | None = None,
        memory_mb: int | None = None,
        arch: str | None = None,
        provider: str | None = None,
        region: str | None = None,
        keep_alive_minutes: float | None = None,
        free_tier: bool = False,
        budget: float | None = None,
    ) -> None:
        from .analyze.costs import CostSettings
        from .analyze.policy import PolicyError, parse_policy
        from .analyze.pricing import PricingError, load
        from .cli import parse_since

        try:
            self.until_ns = None if until is None else parse_since(until)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--until'") from None
        try:
            self.policies = [parse_policy(spec, instance) for spec in policy_specs] or None
        except PolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="'--policy'") from None
        try:
            prices = load(pricing)
        except PricingError as exc:
            raise click.ClickException(str(exc)) from None
        self.provider = provider  # None: from the records
        self.given = {"arch": arch is not None, "region": region is not None}
        self.settings = CostSettings(
            prices=prices,
            provider=provider or "aws",
            region=region,
            arch=arch or "x86_64",
            memory_mb=memory_mb,
            keep_alive_s=None if keep_alive_minutes is None else keep_alive_minutes * 60,
            free_tier=free_tier,
            max_cold_start_rate=max_cold_start_rate,
            p99_ms=p99_ms,
            instances=[instance] if instance else None,
            per_instance=per_instance,
        )
        self.budget = budget

    def check(self) -> None:
        """An unknown region or a price missing for it, said before anything is read."""
        from .analyze.pricing import PricingError

        try:
            platform = self.settings.platform()
            platform.keep_alive_s()
            platform.rates(1.0)
        except PricingError as exc:
            raise click.ClickException(str(exc)) from None

    def answer(self, frames: Frames, since_ns: int | None) -> dict[str, Any]:
        """The cost answer over what was read (the schema of `cost_report.SCHEMA`)."""
        from .analyze.cost_report import configs_of, cost_report, provider_of
        from .analyze.pricing import PricingError

        if since_ns is not None and self.until_ns is not None and self.until_ns <= since_ns:
            raise click.BadParameter("must be after --since", param_hint="'--until'")
        configs = configs_of(frames)
        self.settings.configured = configs
        if self.provider is None:
            self.settings.provider = _agreed(configs, "provider") or provider_of(frames)
        # the configuration pulled says where and on what the functions run, unless asked
        for name in ("arch", "region"):
            found = _agreed(configs, name)
            if (
                found
                and not self.given[name]
                and self.settings.provider == _agreed(configs, "provider")
            ):
                setattr(self.settings, name, found)
        self.check()
        try:
            return cost_report(
                frames,
                self.settings,
                policies=self.policies,
                since_ns=since_ns,
                until_ns=self.until_ns,
            )
        except PricingError as exc:
            raise click.ClickException(str(exc)) from None

    def check_budget(self, answer: dict[str, Any]) -> None:
        """Exit 4 (after the answer was written) when the current month is over ``budget``.

        Functions with too little data to project a month (under 100 requests or an
        hour) are left out of the sum, and said to be.
        """
        if self.budget is None:
            return
        counted = [f for f in answer["functions"] if f["enough_data"]]
        left = len(answer["functions"]) - len(counted)
        if left:
            click.echo(
                f"warning: {left} function(s) with too little data to project a month are "
                "left out of the budget",
                err=True,
            )
        total = sum(f["current"]["monthly_usd"] for f in counted)
        if total > self.budget:
            raise _OverBudget(
                f"the current setup is projected at ${total:,.2f} a month, "
                f"over the ${self.budget:,.2f} budget"
            )

    def warn(self, answer: dict[str, Any]) -> None:
        """Say which functions could not be priced, and why."""
        for entry in answer["skipped"]:
            click.echo(f"warning: {entry['function'] or '(unnamed)'}: {entry['reason']}", err=True)
