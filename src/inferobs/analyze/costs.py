"""What each way of running a function would have cost on its real arrivals, and which to pick.

Every policy is simulated on the same requests (`concurrency.place` puts each
on an environment; `tally.Tally` sums them by hour and environment), then
priced from the price files (`pricing`) by the platform's rules (`platforms`:
AWS Lambda, Cloud Run, Azure Functions): on-demand, capacity kept warm
(static, by hours, or a schedule by hour of day), and always-on instances
with the overflow on the on-demand service.

Assumptions, each in docs/costs.md with its evidence: an environment idle
longer than the keep-alive is gone and the next request on it is cold; a
simulated cold start adds an init duration drawn from the ones measured (its
own where the request was a recorded cold start); on-demand init is billed
on Lambda (since August 2025); a month is 730 hours, the unit of monthly tiers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .minute_tally import MinuteTally
from .platforms import Instance, Platform, Use, platform_for
from .policy import Policy
from .pricing import Prices

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .concurrency import Placement
    from .tally import Tally

__all__ = ["MONTH_S", "CostSettings", "Option", "Workload", "options_for", "price_option"]

MONTH_S = 730 * 3600.0
_MONTH_OF_AN_HOUR_S = MONTH_S / 24  # the seconds of one hour of day in a month
_P99_COLD_SHARE = 0.01


@dataclass
class CostSettings:
    """What the user asked: where, on what, how warm it must be, with what prices."""

    prices: Prices
    provider: str = "aws"  # aws | gcp | azure: whose billing rules (`platforms`)
    region: str | None = None  # None: the provider's default region
    arch: str = "x86_64"
    # function -> its configuration as pulled (`inferobs.analyze.columns.CONFIGS`)
    configured: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory_mb: int | None = None  # None: the memory the records say
    keep_alive_s: float | None = None  # None: the price file's default
    free_tier: bool = False
    max_cold_start_rate: float | None = None
    p99_ms: float | None = None
    instances: list[str] | None = None  # always-on candidates; None: every priced type
    per_instance: int | None = None  # concurrent requests an instance serves; None: vCPUs

    def platform(self, free_share: float = 1.0) -> Platform:
        return platform_for(
            self.provider,
            self.prices,
            self.region,
            self.arch,
            free_tier=self.free_tier,
            free_share=free_share,
        )

    def keep_alive(self) -> float:
        if self.keep_alive_s is not None:
            return self.keep_alive_s
        return self.platform().keep_alive_s()


@dataclass
class Workload:
    """One function's requests, sorted by start: what the simulation needs and nothing else."""

    function: str
    start_s: npt.NDArray[np.float64] = field(repr=False)  # from the window's start
    duration_ms: npt.NDArray[np.float64] = field(repr=False)
    init_ms: npt.NDArray[np.float64] = field(repr=False)  # what a cold start adds
    init_measured: int  # how many init durations were measured
    memory_mb: int
    window_s: float
    window_start_s: float  # Unix epoch seconds
    line_bytes: float  # our lines' bytes, for the log service's charge
    # minute aggregates: each row a minute, ``count`` its requests, ``duration_ms`` their mean
    count: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    free_share: float = 1.0  # its share of the account's free tier (by requests)
    provisioned: int = 0  # environments its configuration keeps warm now (`obs pull`)
    hour: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import numpy as np

        epoch = self.window_start_s + self.start_s
        self.hour = (np.floor(epoch / 3600.0).astype(np.int64)) % 24

    @property
    def requests(self) -> int:
        return len(self.start_s) if self.count is None else round(float(self.count.sum()))

    def hours_in_window(self) -> npt.NDArray[np.float64]:
        """Seconds of the window in each hour of day (UTC)."""
        import numpy as np

        out = np.zeros(24)
        at = self.window_start_s
        end = self.window_start_s + self.window_s
        while at < end:
            hour_end = (math.floor(at / 3600.0) + 1) * 3600.0
            step = min(hour_end, end) - at
            out[int(at // 3600) % 24] += step
            at += step
        return out


@dataclass
class Option:
    """One priced policy: its cost for the window, and what it does to the requests."""

    policy: Policy
    cost_usd: float
    monthly_usd: float
    observability_usd: float
    breakdown: dict[str, float]
    cold_starts: int
    cold_start_rate: float
    p95_added_ms: float | None
    p99_added_ms: float | None
    utilisation: float | None
    fixed_usd: float  # a month of what does not grow with traffic (kept capacity)
    meets_slo: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "cost_usd": _cents(self.cost_usd),
            "monthly_usd": _cents(self.monthly_usd),
            "observability_usd": _cents(self.observability_usd),
            "breakdown": {
                k: (_cents(v) if k.endswith("_usd") else v) for k, v in self.breakdown.items()
            },
            "cold_starts": self.cold_starts,
            "cold_start_rate": self.cold_start_rate,
            "p95_added_ms": self.p95_added_ms,
            "p99_added_ms": self.p99_added_ms,
            "utilisation": self.utilisation,
            "meets_slo": self.meets_slo,
        }


def _cents(usd: float) -> float:
    return round(usd, 6)


def _candidates(settings: CostSettings, platform: Platform) -> list[Instance]:
    specs = settings.instances if settings.instances is not None else platform.instance_specs()
    return [platform.instance(spec, settings.per_instance) for spec in specs]


@dataclass
class _Replay:
    """The requests replayed one way: on demand (inits hold environments), or with
    capacity kept warm; the memory billed (a plan may round it to its instance sizes)."""

    tally: Tally | MinuteTally
    placement: Placement | None  # None for minute counts
    cold: npt.NDArray[np.bool_] | None  # idle past the keep-alive, or never used
    gb: float


class _Model:
    """A workload placed and tallied, with the prices it is charged at."""

    def __init__(self, work: Workload, settings: CostSettings) -> None:
        import numpy as np

        from .concurrency import place_both

        self.work = work
        self.settings = settings
        self.platform = settings.platform(work.free_share)
        gb = work.memory_mb / 1024.0
        keep_alive = settings.keep_alive()
        count = work.count
        if count is not None:  # minutes: Erlang-B within each, no request known

            def minutes(kept: bool) -> _Replay:
                assert count is not None
                billed = self.platform.billed_mean_ms(work.duration_ms, kept=kept)
                tally = MinuteTally(
                    hour=work.hour,
                    minute=np.floor((work.window_start_s + work.start_s) / 60).astype(np.int64),
                    count=count,
                    mean_ms=work.duration_ms,
                    billed_ms=billed,
                    keep_alive_s=keep_alive,
                )
                return _Replay(tally, None, None, self.platform.kept_gb(gb) if kept else gb)

            self.on_demand, self.kept = minutes(False), minutes(True)
        else:
            end = work.start_s + work.duration_ms / 1000.0
            # on demand, a cold start holds its environment through init; kept-warm
            # environments never init, and 1..N must stay an N-server system
            with_init, plain = place_both(work.start_s, end, work.init_ms / 1000.0, keep_alive)
            self.on_demand = self._replay(with_init, kept=False, gb=gb)
            self.kept = self._replay(plain, kept=True, gb=self.platform.kept_gb(gb))
        self.hours = work.hours_in_window()
        self.months = work.window_s / MONTH_S if work.window_s > 0 else 1.0
        self.observability_usd = self.platform.observability_usd(work.line_bytes, self.months)
        self.base_latency = _percentiles(work.duration_ms)
        self._added_by_levels: dict[tuple[int, ...], tuple[float, float]] = {}

    def _replay(self, placement: Placement, *, kept: bool, gb: float) -> _Replay:
        import numpy as np

        from .tally import Tally

        work = self.work
        cold = placement.idle_s > self.settings.keep_alive()
        warm_ms = self.platform.billed_ms(work.duration_ms, kept=kept)
        cold_ms = self.platform.billed_ms(work.duration_ms + work.init_ms, kept=kept)
        tally = Tally(
            placement,
            hour=work.hour,
            cold=cold,
            billed_ms=warm_ms,
            # what the request is billed when it spills: with its init if it is cold
            billed_cold_ms=np.where(cold, cold_ms, warm_ms),
            busy_s=work.duration_ms / 1000.0,
        )
        return _Replay(tally, placement, cold, gb)

    # -- one policy ------------------------------------------------------------

    def levels(self, policy: Policy, instance: Instance | None) -> npt.NDArray[np.int64]:
        """Environments kept warm in each hour of day (instances times their capacity)."""
        import numpy as np

        by_hour = np.asarray(policy.by_hour, dtype=np.int64)
        return by_hour * instance.capacity if instance is not None else by_hour

    def price(
        self, policy: Policy, instance: Instance | None = None, *, latency: bool = True
    ) -> Option:
        import numpy as np

        levels = self.levels(policy, instance)
        replay = self.kept if levels.any() else self.on_demand
        t, gb = replay.tally, replay.gb
        requests = float(self.work.requests)
        spilled = t.spilled("requests", levels)
        cold = t.spilled("cold", levels)
        spill_warm_ms = t.spilled("billed_ms", levels)
        spill_cold_ms = t.spilled("billed_cold_ms", levels)
        # a spilled cold request is billed ceil(duration + init): ceil(duration)
        # of it is compute, the rest init
        compute_gb_s = spill_warm_ms / 1000.0 * gb
        init_gb_s = (spill_cold_ms - spill_warm_ms) / 1000.0 * gb
        breakdown: dict[str, float] = {"requests": int(requests)}
        fixed = 0.0
        if policy.kind == "always-on":
            assert instance is not None
            # the requests beyond the instances go to the platform's on-demand service; a
            # service charging every request (Managed Instances) charges them there instead
            charges = self.platform.bill(
                Use(
                    months=self.months,
                    requests=0.0 if instance.request_usd else spilled,
                    spilled_requests=spilled,
                    compute_gb_s=compute_gb_s,
                    init_gb_s=init_gb_s,
                    kept_gb_s=0.0,
                    on_kept_gb_s=0.0,
                ),
                gb,
            )
            requests_usd = charges["requests_usd"] + requests * instance.request_usd
            compute_usd, init_usd = charges["compute_usd"], charges["init_usd"]
            instance_hours = float(levels[0] // instance.capacity) * self.work.window_s / 3600
            instances_usd = instance_hours * instance.hourly_usd
            lb_usd, lcu_hours, lb_fixed = self._load_balancer if instance.behind_alb else (0, 0, 0)
            served_busy = t.served("busy_s", levels)
            capacity_s = float(levels[0]) * self.work.window_s
            breakdown.update(
                {
                    "spilled_requests": int(spilled),
                    "compute_gb_s": compute_gb_s,
                    "init_gb_s": init_gb_s,
                    "instance_hours": instance_hours,
                    "lcu_hours": lcu_hours,
                    "requests_usd": requests_usd,
                    "compute_usd": compute_usd,
                    "init_usd": init_usd,
                    "instances_usd": instances_usd,
                    "load_balancer_usd": lb_usd,
                }
            )
            cost = requests_usd + compute_usd + init_usd + instances_usd + lb_usd
            fixed = (instances_usd + lb_fixed) / self.months  # all day: the window's pace
            monthly = cost / self.months
            utilisation = served_busy / capacity_s if capacity_s else None
        else:
            provisioned_gb_s = float((levels * self.hours).sum()) * gb
            on_provisioned_gb_s = t.served("billed_ms", levels) / 1000.0 * gb
            charges = self.platform.bill(
                Use(
                    months=self.months,
                    requests=requests,
                    spilled_requests=spilled,
                    compute_gb_s=compute_gb_s,
                    init_gb_s=init_gb_s,
                    kept_gb_s=provisioned_gb_s,
                    on_kept_gb_s=on_provisioned_gb_s,
                ),
                gb,
            )
            requests_usd, init_usd = charges["requests_usd"], charges["init_usd"]
            compute_usd = charges["compute_usd"]
            provisioned_usd = charges["provisioned_usd"]
            breakdown.update(
                {
                    "spilled_requests": int(spilled),
                    "compute_gb_s": compute_gb_s + on_provisioned_gb_s,
                    "init_gb_s": init_gb_s,
                    "provisioned_gb_s": provisioned_gb_s,
                    "requests_usd": requests_usd,
                    "compute_usd": compute_usd,
                    "init_usd": init_usd,
                    "provisioned_usd": provisioned_usd,
                }
            )
            cost = requests_usd + compute_usd + init_usd + provisioned_usd
            # capacity kept by hour of day costs the same every day, whatever hours the
            # window happens to cover: a month of it is priced as such
            kept_month_gb_s = float(levels.sum()) * _MONTH_OF_AN_HOUR_S * gb
            fixed = self.platform.rates(gb)[1] * kept_month_gb_s
            monthly = (cost - provisioned_usd) / self.months + fixed
            capacity_s = float((levels * self.hours).sum())
            utilisation = t.served("busy_s", levels) / capacity_s if capacity_s else None
        p95, p99 = self._added(replay, levels, int(cold)) if latency else (None, None)
        return Option(
            policy=policy,
            cost_usd=cost,
            monthly_usd=monthly,
            observability_usd=self.observability_usd,
            breakdown=breakdown,
            cold_starts=int(cold),
            cold_start_rate=cold / requests if requests else 0.0,
            p95_added_ms=p95,
            p99_added_ms=p99,
            utilisation=None if utilisation is None else float(np.clip(utilisation, 0, 1)),
            fixed_usd=fixed,
        )

    @functools.cached_property
    def _load_balancer(self) -> tuple[float, float, float]:
        """ALB hours and capacity units: (charge, LCU-hours, the hourly part)."""
        import numpy as np

        prices, region = self.settings.prices, self.platform.region
        hourly = prices.number("aws", "alb", region, "usd_per_hour")
        lcu_usd = prices.number("aws", "alb", region, "lcu_usd_per_hour")
        per_lcu = prices.number("aws", "alb", region, "new_connections_per_lcu_per_second")
        hours = self.work.window_s / 3600.0
        slots = np.clip(np.floor(self.work.start_s / 3600.0), 0, None).astype(np.int64)
        per_hour = np.bincount(slots, weights=self.work.count) if len(slots) else np.zeros(1)
        lcu_hours = float((per_hour / 3600.0 / per_lcu).sum())
        fixed = hourly * hours
        return fixed + lcu_hours * lcu_usd, lcu_hours, fixed

    def _added(
        self, replay: _Replay, levels: npt.NDArray[np.int64], cold: int
    ) -> tuple[float | None, float | None]:
        """Latency added at p95 and p99 by this policy's cold starts."""
        if self.work.requests == 0 or replay.placement is None:
            return None, None  # minute counts say nothing of the latency of each request
        if cold == 0:
            return 0.0, 0.0
        key = tuple(levels.tolist())  # instance types of one size keep the same levels
        if key not in self._added_by_levels:
            import numpy as np

            assert replay.cold is not None
            spill = replay.placement.level > levels[self.work.hour]
            latency = self.work.duration_ms + np.where(spill & replay.cold, self.work.init_ms, 0)
            p95, p99 = _percentiles(latency)
            base95, base99 = self.base_latency
            self._added_by_levels[key] = (max(0.0, p95 - base95), max(0.0, p99 - base99))
        return self._added_by_levels[key]


def _percentiles(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """p95 and p99, nearest rank (as `obs report` computes them)."""
    import numpy as np

    count = len(values)
    if not count:
        return 0.0, 0.0
    # the nearest rank: the ceil(q n)-th smallest, both found by one partition
    ranks = [max(1, math.ceil(q * count - 1e-9)) - 1 for q in (0.95, 0.99)]
    chosen = np.partition(values, ranks)[ranks]
    return float(chosen[0]), float(chosen[1])


def price_option(model: _Model, policy: Policy, instance: Instance | None = None) -> Option:
    """``policy`` priced on the model, with whether it meets the SLO."""
    option = model.price(policy, instance)
    option.meets_slo = _within_rate(option, model.settings) and _within_p99(option, model)
    return option


def _within_rate(option: Option, settings: CostSettings) -> bool:
    limit = settings.max_cold_start_rate
    return limit is None or option.cold_start_rate <= limit


def _within_p99(option: Option, model: _Model) -> bool:
    """The p99 latency, cold starts included, within ``--p99-ms``."""
    limit = model.settings.p99_ms
    if limit is None:
        return True
    if option.p99_added_ms is None:  # minute counts: the latency of a request is unknown
        return False
    return model.base_latency[1] + option.p99_added_ms <= limit


def options_for(
    work: Workload, settings: CostSettings, policies: list[Policy] | None = None
) -> tuple[Option, list[Option], dict[str, Any]]:
    """The current setup priced (on demand, or the provisioned concurrency the function's
    configuration keeps); every policy priced (``policies``, or the search's, on demand
    always among them); and the sweep of provisioned:N over every N, for plots."""
    model = _Model(work, settings)
    statics = [model.price(_static(n), latency=False) for n in range(model.kept.tally.peak + 1)]
    sweep = {
        "n": list(range(len(statics))),
        "monthly_usd": [_cents(o.monthly_usd) for o in statics],
        "cold_start_rate": [o.cold_start_rate for o in statics],
        "concurrency": _concurrency(model),
    }
    current = price_option(model, _static(work.provisioned))
    if policies is not None:
        options = []
        for policy in policies:
            instance = (
                model.platform.instance(policy.instance, settings.per_instance)
                if policy.instance
                else None
            )
            options.append(price_option(model, policy, instance))
        return current, options, sweep
    options = [current]
    if work.provisioned:
        options.append(price_option(model, Policy("on-demand")))
    best = _cheapest_meeting(model, statics, _static)
    if best and best != work.provisioned:
        options.append(price_option(model, _static(best)))
    schedule = _schedule(model)
    if schedule is not None and any(schedule):
        options.append(price_option(model, Policy("schedule", schedule)))
    for instance in _candidates(settings, model.platform):
        spec = instance.spec

        def always_on(k: int, spec: str = spec) -> Policy:
            return Policy("always-on", (k,) * 24, spec)

        most = max(1, math.ceil(model.kept.tally.peak / instance.capacity))
        priced = [model.price(always_on(k), instance, latency=False) for k in range(1, most + 1)]
        k = _cheapest_meeting(model, [None, *priced], always_on, instance)
        options.append(price_option(model, always_on(k or most), instance))
    return current, options, sweep


def _concurrency(model: _Model, buckets: int = 1440) -> dict[str, Any]:
    """The most environments busy at once, per time bucket (a request on environment k
    found 1..k-1 busy; a minute's need where only minutes are known), for plotting
    against the provisioned level."""
    import numpy as np

    work = model.work
    level: npt.NDArray[np.int64]
    replay = model.on_demand
    if replay.placement is not None:
        level = replay.placement.level.astype(np.int64)
    else:
        assert isinstance(replay.tally, MinuteTally)
        level = replay.tally.need
    step = max(1.0, math.ceil(work.window_s / buckets))
    slot = np.floor(work.start_s / step).astype(np.int64)
    count = math.ceil(work.window_s / step) + 1
    peak = np.zeros(count, dtype=np.int64)
    np.maximum.at(peak, np.clip(slot, 0, count - 1), level)
    return {"bucket_s": step, "start": work.window_start_s, "peak": peak.tolist()}


def _static(n: int) -> Policy:
    return Policy("provisioned", (n,) * 24) if n else Policy("on-demand")


def _cheapest_meeting(
    model: _Model,
    priced: Sequence[Option | None],
    policy: Callable[[int], Policy],
    instance: Instance | None = None,
) -> int | None:
    """The cheapest n whose policy meets the SLO (None: none does).

    ``priced[n]`` is policy(n) priced without latency. The cold-start rate is
    read from it; the p99, which only falls as n grows, is found by bisection.
    """
    ns = [n for n, option in enumerate(priced) if option is not None]
    ok = [n for n in ns if _within_rate(priced[n], model.settings)]  # type: ignore[arg-type]
    if not ok:
        return None
    if model.settings.p99_ms is not None:
        low, high = 0, len(ok)  # the first of ok meeting the p99 is at index high
        while low < high:
            middle = (low + high) // 2
            option = model.price(policy(ok[middle]), instance)
            if _within_p99(option, model):
                high = middle
            else:
                low = middle + 1
        ok = ok[low:]
        if not ok:
            return None
    return min(ok, key=lambda n: (priced[n].monthly_usd, n))  # type: ignore[union-attr]


def _schedule(model: _Model) -> tuple[int, ...] | None:
    """Per hour of day, the cheapest N meeting the cold-start SLO within that hour.

    Hour by hour, at the first tier's on-demand price, each hour's requests
    scaled to a month of that hour (a window may cover an hour for seconds): the
    schedule found is then priced in full, tiers included, like every option.
    """
    import numpy as np

    t = model.kept.tally  # the search sweeps kept capacity
    settings = model.settings
    limit = settings.max_cold_start_rate
    if limit is None and settings.p99_ms is not None:
        # fewer than 1% cold leaves the p99 among warm requests; the schedule found is
        # then priced in full and checked against the p99 like every option
        limit = _P99_COLD_SHARE
    cold = t.spilled_by_hour("cold")
    spilled_ms = t.spilled_by_hour("billed_cold_ms")
    served_ms = t.cum["billed_ms"]
    gb = model.kept.gb
    on_demand_usd, kept_usd, on_kept_usd = model.platform.rates(gb)
    n = np.arange(t.peak + 1)
    chosen = []
    for hour in range(24):
        total = t.total["requests"][hour]
        if total == 0 or model.hours[hour] <= 0:
            chosen.append(0)
            continue
        to_month = _MONTH_OF_AN_HOUR_S / model.hours[hour]
        cost = gb * (
            n * _MONTH_OF_AN_HOUR_S * kept_usd
            + served_ms[hour] / 1000.0 * on_kept_usd * to_month
            + spilled_ms[hour] / 1000.0 * on_demand_usd * to_month
        )
        ok = np.ones(len(n), dtype=bool) if limit is None else cold[hour] / total <= limit
        chosen.append(int(n[ok][np.argmin(cost[ok])]))
    return tuple(chosen)
