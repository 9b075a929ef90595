"""How each cloud bills the same simulated work: AWS Lambda, Google Cloud Run, Azure Functions.

The simulation (`concurrency`, `tally`) says what each policy does to the
requests; a platform turns that into money by its own rules:

- **AWS Lambda**: on-demand, provisioned concurrency, always-on as Lambda
  Managed Instances or EC2 / Fargate behind a load balancer (`lambda_bill`);
- **Cloud Run** (request-based billing, one request per instance, the setting
  model servers usually take): on-demand; ``min-instances`` kept warm at the
  idle price; always-on as instance-based billing;
- **Azure Functions**: on-demand on the Consumption plan; kept-warm
  instances as the Flex Consumption plan's always-ready ones (its on-demand
  meters for the rest); always-on as Premium plan instances.

Every price comes from the price files (`pricing`); docs/costs.md says what
each rule approximates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .lambda_bill import LambdaPrices
from .pricing import Prices, PricingError, tiered

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PLATFORMS", "Instance", "Platform", "Use", "platform_for"]

# the region each platform is priced in when none is asked
DEFAULT_REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}


@dataclass
class Use:
    """What a policy used over the window, in the units platforms bill."""

    months: float
    requests: float  # all requests
    spilled_requests: float  # served on demand
    compute_gb_s: float  # on-demand, billed duration x memory
    init_gb_s: float  # on-demand cold starts' init
    kept_gb_s: float  # warm capacity kept (provisioned, min-instances, always-ready)
    on_kept_gb_s: float  # billed duration served by the kept capacity


@dataclass
class Instance:
    """An always-on instance: its price an hour, the requests it serves at once, its extras."""

    spec: str
    hourly_usd: float
    capacity: int
    vcpus: int
    request_usd: float = 0.0  # charged on every request (Lambda Managed Instances)
    behind_alb: bool = False  # needs a load balancer (EC2, Fargate)
    spill_to_on_demand: bool = True  # requests beyond capacity go to the on-demand service


class Platform:
    """One cloud's billing rules for a region, an architecture and a memory size."""

    provider = "aws"

    def __init__(
        self, prices: Prices, region: str, arch: str, *, free_tier: bool, free_share: float = 1.0
    ) -> None:
        self.prices = prices
        self.region = region
        self.arch = arch
        self.free_tier = free_tier
        # the free tier is the account's: a function gets its share of it
        self.free_share = free_share if free_tier else 0.0

    def keep_alive_s(self) -> float:
        raise NotImplementedError

    def billed_ms(
        self, duration_ms: npt.NDArray[np.float64], *, kept: bool = False
    ) -> npt.NDArray[np.float64]:
        """Each request's billed milliseconds, by the rounding of the plan that serves it
        on demand (``kept``: the plan that keeps capacity warm)."""
        import numpy as np

        return np.maximum(np.ceil(np.round(duration_ms, 3)), 1.0)

    def billed_mean_ms(
        self, mean_ms: npt.NDArray[np.float64], *, kept: bool = False
    ) -> npt.NDArray[np.float64]:
        """The billed milliseconds of an average request of ``mean_ms`` (minute counts):
        the mean rounded as one request is, plus half a step for the rounding."""
        import numpy as np

        return np.maximum(self.billed_ms(mean_ms, kept=kept), mean_ms + 0.5)

    def kept_gb(self, gb: float) -> float:
        """The memory a kept-warm plan bills (a plan may round it up to its sizes)."""
        return gb

    def bill(self, use: Use, gb: float) -> dict[str, float]:
        """requests_usd, compute_usd, init_usd, provisioned_usd for ``use`` at ``gb`` GB."""
        raise NotImplementedError

    def rates(self, gb: float) -> tuple[float, float, float]:
        """USD a GB-s on demand, kept warm, and served warm (the first tier's): the
        schedule search weighs hour by hour with these, then prices in full."""
        raise NotImplementedError

    def observability_usd(self, line_bytes: float, months: float) -> float:
        raise NotImplementedError

    def instance(self, spec: str, per_instance: int | None) -> Instance:
        raise NotImplementedError

    def instance_specs(self) -> list[str]:
        """The always-on candidates the search prices."""
        raise NotImplementedError

    def _monthly(
        self,
        quantity: float,
        price: float | list[tuple[float | None, float]],
        free: float,
        months: float,
    ) -> float:
        """The charge for ``quantity`` over ``months``, its free allowance and tiers (a single
        price, or monthly tiers) applied to each month at the window's pace."""
        tiers: list[tuple[float | None, float]] = (
            [(None, price)] if isinstance(price, float) else price
        )
        return tiered(max(0.0, quantity / months - free), tiers) * months


class AwsLambda(Platform):
    provider = "aws"

    def __init__(
        self, prices: Prices, region: str, arch: str, *, free_tier: bool, free_share: float = 1.0
    ) -> None:
        super().__init__(prices, region, arch, free_tier=free_tier, free_share=free_share)
        self.lambda_prices = LambdaPrices(prices, region, arch, free_tier=free_tier)
        self.lambda_prices.free_requests *= self.free_share
        self.lambda_prices.free_gb_s *= self.free_share

    def keep_alive_s(self) -> float:
        return self.prices.number("aws", "keep_alive", "lambda_minutes") * 60.0

    def bill(self, use: Use, gb: float) -> dict[str, float]:
        charges = self.lambda_prices.bill(
            months=use.months,
            requests=use.requests,
            compute_gb_s=use.compute_gb_s,
            init_gb_s=use.init_gb_s,
            provisioned_gb_s=use.kept_gb_s,
            on_provisioned_gb_s=use.on_kept_gb_s,
        )
        return {
            "requests_usd": charges["requests_usd"],
            "compute_usd": charges["compute_usd"] + charges["provisioned_compute_usd"],
            "init_usd": charges["init_usd"],
            "provisioned_usd": charges["provisioned_usd"],
        }

    def rates(self, gb: float) -> tuple[float, float, float]:
        lam = self.lambda_prices
        return lam.duration_tiers[0][1], lam.provisioned_usd, lam.on_provisioned_usd

    def observability_usd(self, line_bytes: float, months: float) -> float:
        table = ("aws", "cloudwatch_logs", self.region)
        free = self.prices.number(*table, "free_gb_per_month") * self.free_share
        tiers = self.prices.tiers(*table, "vended_usd_per_gb")
        return self._monthly(line_bytes / 2**30, tiers, free, months)

    def instance(self, spec: str, per_instance: int | None) -> Instance:
        prices, region = self.prices, self.region
        family, _, size = spec.partition(":")
        if not size:
            family, size = "ec2", spec
        if family in ("ec2", "lmi"):
            vcpus = int(prices.number("aws", "ec2", region, size, "vcpus"))
            hourly = prices.number("aws", "ec2", region, size, "usd_per_hour")
            request_usd = 0.0
            if family == "lmi":
                if not prices.table("aws", "ec2", region, size).get("lambda_managed_instances"):
                    raise PricingError(
                        f"--instance {spec!r}: Lambda Managed Instances do not run on {size} "
                        "(the price file marks the types they run on)"
                    )
                managed = ("aws", "lambda_managed_instances", region)
                hourly *= 1.0 + prices.number(*managed, "management_fee_fraction")
                request_usd = prices.number(*managed, "requests_usd_per_million") / 1e6
            return Instance(
                f"{family}:{size}",
                hourly,
                per_instance or vcpus,
                vcpus,
                request_usd=request_usd,
                behind_alb=family == "ec2",
            )
        if family == "fargate":
            cpu, memory = _size(spec, "fargate")
            table = ("aws", "fargate", region, self.arch)
            hourly = cpu * prices.number(*table, "vcpu_usd_per_hour")
            hourly += memory * prices.number(*table, "gb_usd_per_hour")
            vcpus = max(1, int(cpu))
            return Instance(
                f"fargate:{size}", hourly, per_instance or vcpus, vcpus, behind_alb=True
            )
        raise PricingError(
            f"--instance {spec!r}: on AWS, expected lmi:TYPE, ec2:TYPE or fargate:VCPUxGB"
        )

    def instance_specs(self) -> list[str]:
        tables = {
            name: table
            for name, table in self.prices.table("aws", "ec2", self.region).items()
            if isinstance(table, dict)
        }
        # Lambda Managed Instances run on some types only (not GPU ones): the file says
        managed = [
            f"lmi:{t}" for t, table in tables.items() if table.get("lambda_managed_instances")
        ]
        return managed + [f"ec2:{t}" for t in tables] + ["fargate:1x2"]


class CloudRun(Platform):
    provider = "gcp"

    def keep_alive_s(self) -> float:
        return self.prices.number("gcp", "keep_alive", "cloud_run_minutes") * 60.0

    def _table(self, billing: str) -> tuple[str, ...]:
        return ("gcp", "cloud_run", self.region, billing)

    def billed_ms(
        self, duration_ms: npt.NDArray[np.float64], *, kept: bool = False
    ) -> npt.NDArray[np.float64]:
        import numpy as np

        step = self.prices.number(*self._table("request_based"), "billing_increment_ms")
        return np.maximum(np.ceil(np.round(duration_ms, 3) / step), 1.0) * step

    def bill(self, use: Use, gb: float) -> dict[str, float]:
        number = self.prices.number
        table = self._table("request_based")
        vcpus = _cloud_run_vcpus(gb)
        free = (0.0, 0.0, 0.0)
        if self.free_tier:
            free = (
                number(*table, "free_requests_per_month") * self.free_share,
                number(*table, "free_vcpu_s_per_month") * self.free_share,
                number(*table, "free_gib_s_per_month") * self.free_share,
            )
        months = use.months

        def active(gb_s: float, free_vcpu: float = 0.0, free_gib: float = 0.0) -> float:
            seconds = gb_s / gb if gb else 0.0
            cpu = self._monthly(
                seconds * vcpus, number(*table, "vcpu_usd_per_s"), free_vcpu, months
            )
            memory = self._monthly(seconds * gb, number(*table, "gib_usd_per_s"), free_gib, months)
            return cpu + memory

        active_rate, idle_rate = self._rates(gb)
        kept_s = use.kept_gb_s / gb if gb else 0.0
        on_kept_s = use.on_kept_gb_s / gb if gb else 0.0
        both = active(use.compute_gb_s + use.init_gb_s, free[1], free[2])
        share = use.init_gb_s / (use.compute_gb_s + use.init_gb_s) if use.init_gb_s else 0.0
        requests = self._monthly(
            use.requests,
            number(*table, "requests_usd_per_million") / 1e6,
            free[0],
            months,
        )
        return {
            "requests_usd": requests,
            # min-instances bill the idle rate while kept, the active rate while serving
            "compute_usd": both * (1 - share) + on_kept_s * (active_rate - idle_rate),
            "init_usd": both * share,  # an instance's startup is billed as active time
            "provisioned_usd": kept_s * idle_rate,
        }

    def rates(self, gb: float) -> tuple[float, float, float]:
        active, idle = self._rates(gb)
        return active / gb, idle / gb, (active - idle) / gb

    def _rates(self, gb: float) -> tuple[float, float]:
        """USD a second of one instance serving, and idle but kept."""
        number, table = self.prices.number, self._table("request_based")
        vcpus = _cloud_run_vcpus(gb)
        active = vcpus * number(*table, "vcpu_usd_per_s") + gb * number(*table, "gib_usd_per_s")
        idle = vcpus * number(*table, "idle_vcpu_usd_per_s") + gb * number(
            *table, "idle_gib_usd_per_s"
        )
        return active, idle

    def observability_usd(self, line_bytes: float, months: float) -> float:
        table = ("gcp", "cloud_logging", "global")
        price = self.prices.number(*table, "usd_per_gib")
        free = self.prices.number(*table, "free_gib_per_month") * self.free_share
        return self._monthly(line_bytes / 2**30, price, free, months)

    def instance(self, spec: str, per_instance: int | None) -> Instance:
        family, _, size = spec.partition(":")
        if family != "cloudrun":
            raise PricingError(f"--instance {spec!r}: on Cloud Run, expected cloudrun:VCPUxGB")
        cpu, memory = _size(spec, "cloudrun")
        table = self._table("instance_based")
        hourly = 3600 * (
            cpu * self.prices.number(*table, "vcpu_usd_per_s")
            + memory * self.prices.number(*table, "gib_usd_per_s")
        )
        vcpus = max(1, int(cpu))
        return Instance(f"cloudrun:{size}", hourly, per_instance or vcpus, vcpus)

    def instance_specs(self) -> list[str]:
        return ["cloudrun:1x2", "cloudrun:2x4", "cloudrun:4x8"]


class AzureFunctions(Platform):
    provider = "azure"

    def keep_alive_s(self) -> float:
        return self.prices.number("azure", "keep_alive", "functions_consumption_minutes") * 60.0

    def billed_ms(
        self, duration_ms: npt.NDArray[np.float64], *, kept: bool = False
    ) -> npt.NDArray[np.float64]:
        import numpy as np

        # Consumption bills at least 100 ms; Flex Consumption at least 1,000 ms
        plan = "functions_flex" if kept else "functions_consumption"
        least = self.prices.number("azure", plan, self.region, "min_billed_ms")
        return np.maximum(np.ceil(np.round(duration_ms, 3)), least)

    def kept_gb(self, gb: float) -> float:
        """Flex Consumption bills its instance size: the smallest that holds ``gb``."""
        sizes = self.prices.table("azure", "functions_flex", self.region).get("instance_memory_mb")
        if not isinstance(sizes, list) or not sizes:
            raise PricingError("no instance_memory_mb list for azure.functions_flex")
        fitting = [float(size) / 1024 for size in sorted(sizes) if size / 1024 >= gb]
        return fitting[0] if fitting else float(max(sizes)) / 1024

    def bill(self, use: Use, gb: float) -> dict[str, float]:
        number = self.prices.number
        consumption = ("azure", "functions_consumption", self.region)
        flex = ("azure", "functions_flex", self.region)
        months = use.months
        both_gb_s = use.compute_gb_s + use.init_gb_s
        share = use.init_gb_s / both_gb_s if both_gb_s else 0.0
        if not use.kept_gb_s:  # the Consumption plan
            free_gb_s = number(*consumption, "free_gb_s_per_month") * self.free_share
            free_runs = number(*consumption, "free_executions_per_month") * self.free_share
            compute = self._monthly(
                both_gb_s, number(*consumption, "usd_per_gb_s"), free_gb_s, months
            )
            requests = self._monthly(
                use.requests,
                number(*consumption, "executions_usd_per_million") / 1e6,
                free_runs,
                months,
            )
            return {
                "requests_usd": requests,
                "compute_usd": compute * (1 - share),
                "init_usd": compute * share,
                "provisioned_usd": 0.0,
            }
        # Flex Consumption: always-ready instances, the rest on its on-demand meters
        free_gb_s = number(*flex, "free_gb_s_per_month") * self.free_share
        free_runs = number(*flex, "free_executions_per_month") * self.free_share
        on_demand = self._monthly(
            both_gb_s, number(*flex, "on_demand_usd_per_gb_s"), free_gb_s, months
        )
        spilled_runs = self._monthly(
            use.spilled_requests,
            number(*flex, "on_demand_executions_usd_per_million") / 1e6,
            free_runs,
            months,
        )
        ready_runs = (
            (use.requests - use.spilled_requests)
            * number(*flex, "always_ready_executions_usd_per_million")
            / 1e6
        )
        return {
            "requests_usd": spilled_runs + ready_runs,
            "compute_usd": on_demand * (1 - share)
            + use.on_kept_gb_s * number(*flex, "always_ready_execution_usd_per_gb_s"),
            "init_usd": on_demand * share,
            "provisioned_usd": use.kept_gb_s * number(*flex, "always_ready_baseline_usd_per_gb_s"),
        }

    def rates(self, gb: float) -> tuple[float, float, float]:
        flex = ("azure", "functions_flex", self.region)
        number = self.prices.number
        return (
            number(*flex, "on_demand_usd_per_gb_s"),
            number(*flex, "always_ready_baseline_usd_per_gb_s"),
            number(*flex, "always_ready_execution_usd_per_gb_s"),
        )

    def observability_usd(self, line_bytes: float, months: float) -> float:
        table = ("azure", "log_analytics", self.region)
        price = self.prices.number(*table, "analytics_usd_per_gb")
        free = self.prices.number(*table, "free_gb_per_month") * self.free_share
        return self._monthly(line_bytes / 1e9, price, free, months)  # GB, not GiB

    def instance(self, spec: str, per_instance: int | None) -> Instance:
        family, _, size = spec.partition(":")
        if family != "premium":
            raise PricingError(f"--instance {spec!r}: on Azure, expected premium:EP1, EP2 or EP3")
        table = ("azure", "functions_premium", self.region, size.upper())
        vcpus = int(self.prices.number(*table, "vcpus"))
        hourly = self.prices.number(*table, "usd_per_hour")
        return Instance(f"premium:{size.upper()}", hourly, per_instance or vcpus, vcpus)

    def instance_specs(self) -> list[str]:
        premium = self.prices.table("azure", "functions_premium", self.region)
        return [f"premium:{name}" for name, table in premium.items() if isinstance(table, dict)]


PLATFORMS: dict[str, type[Platform]] = {"aws": AwsLambda, "gcp": CloudRun, "azure": AzureFunctions}


def platform_for(
    provider: str,
    prices: Prices,
    region: str | None,
    arch: str,
    *,
    free_tier: bool,
    free_share: float = 1.0,
) -> Platform:
    """The platform that bills ``provider``'s functions, in ``region`` (or its default)."""
    try:
        kind = PLATFORMS[provider]
    except KeyError:
        raise PricingError(
            f"provider {provider!r}: expected one of {', '.join(PLATFORMS)}"
        ) from None
    return kind(
        prices,
        region or DEFAULT_REGIONS[provider],
        arch,
        free_tier=free_tier,
        free_share=free_share,
    )


def _size(spec: str, family: str) -> tuple[float, float]:
    """VCPUxGB of ``family:VCPUxGB``."""
    try:
        cpu_text, memory_text = spec.partition(":")[2].lower().split("x")
        cpu, memory = float(cpu_text), float(memory_text)
    except ValueError:
        cpu = memory = math.nan
    if not (cpu > 0 and memory > 0):
        raise PricingError(f"--instance {spec!r}: expected {family}:VCPUxGB, e.g. {family}:1x2")
    return cpu, memory


def _cloud_run_vcpus(gb: float) -> int:
    """vCPUs Cloud Run needs for ``gb`` of memory: 1 up to 4 GiB, 2 to 8, 4 to 16, 8 above."""
    for vcpus, most in ((1, 4.0), (2, 8.0), (4, 16.0)):
        if gb <= most:
            return vcpus
    return 8
