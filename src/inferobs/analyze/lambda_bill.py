"""AWS Lambda's bill for a month's (or a window's) use, by its pricing page's rules.

Requests are charged per million; duration per GB-second on monthly tiers
(per account, region and architecture); provisioned concurrency per GB-second
configured, and the duration it serves at its own lower rate. The free tier
(off unless asked) takes its requests and GB-seconds off the on-demand charges
only. A window shorter or longer than a month is billed at its monthly rate:
the tiers and the free tier apply to the month the window's pace would make.
"""

from __future__ import annotations

from .pricing import Prices, tiered

__all__ = ["LambdaPrices"]


class LambdaPrices:
    """The Lambda prices of one region and architecture, read once."""

    def __init__(self, prices: Prices, region: str, arch: str, *, free_tier: bool) -> None:
        table = ("aws", "lambda", region)
        self.request_usd = prices.number(*table, "requests_usd_per_million") / 1e6
        self.duration_tiers = prices.tiers(*table, arch, "duration_usd_per_gb_s")
        self.provisioned_usd = prices.number(*table, arch, "provisioned_usd_per_gb_s")
        self.on_provisioned_usd = prices.number(*table, arch, "provisioned_duration_usd_per_gb_s")
        self.free_requests = self.free_gb_s = 0.0
        if free_tier:
            self.free_requests = prices.number(*table, "free_requests_per_month")
            self.free_gb_s = prices.number(*table, "free_gb_s_per_month")

    def bill(
        self,
        *,
        months: float,
        requests: float,
        compute_gb_s: float,
        init_gb_s: float = 0.0,
        provisioned_gb_s: float = 0.0,
        on_provisioned_gb_s: float = 0.0,
    ) -> dict[str, float]:
        """Each charge, in USD, for use over ``months`` (1: a month)."""

        def monthly(quantity: float, tiers: list[tuple[float | None, float]], free: float) -> float:
            return tiered(max(0.0, quantity / months - free), tiers) * months

        on_demand = monthly(compute_gb_s + init_gb_s, self.duration_tiers, self.free_gb_s)
        both = compute_gb_s + init_gb_s
        init_usd = on_demand * init_gb_s / both if both else 0.0  # init is billed as duration
        return {
            "requests_usd": monthly(requests, [(None, self.request_usd)], self.free_requests),
            "compute_usd": on_demand - init_usd,
            "init_usd": init_usd,
            "provisioned_usd": provisioned_gb_s * self.provisioned_usd,
            "provisioned_compute_usd": on_provisioned_gb_s * self.on_provisioned_usd,
        }
