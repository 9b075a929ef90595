"""`obs report --costs`: each function's requests, every option priced, and a recommendation.

The JSON form is a versioned schema (``SCHEMA``, docs/costs.md): per
function, ``options`` (each priced policy with its breakdown, so the
arithmetic can be checked) and ``recommendation``; money in keys ending
``_usd``, quantities with their unit in the key.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from .columns import sql_string
from .costs import MONTH_S, CostSettings, Option, Workload, options_for
from .policy import Policy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .frames import Frames

__all__ = ["SCHEMA", "cost_report", "provider_of", "workloads"]

SCHEMA = "inferobs.costs/1"
# Too little to decide on: fewer requests, or a shorter window (docs/costs.md)
_FEWEST_REQUESTS = 100
_SHORTEST_WINDOW_S = 3600.0
# a cheaper option replaces a current setup that meets the target only when it saves
# at least 1% of its monthly cost and at least a cent a month
_WORTH_CHANGING = 0.01
_WORTH_CHANGING_USD = 0.01
# with little data, on-demand is still chosen when kept capacity costs this many times more
_CLEAR_MARGIN = 10.0
_DEFAULT_MEMORY_MB = 128  # Lambda's own default, when nothing records the memory
_SEED = 20261203  # simulated cold starts draw their init from the measured ones, repeatably


def workloads(
    frames: Frames,
    settings: CostSettings,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> tuple[list[Workload], dict[str, dict[str, Any]], dict[str, str]]:
    """One `Workload` per function, what is known of each one's memory, and the
    functions that could not be priced, with why.

    Functions with requests are simulated request by request; functions known
    only by minute counts (Azure 2019) by minutes (`minute_tally`). Every
    function shares one window: from the first start to the last end in all
    the data, unless ``since_ns`` / ``until_ns`` say otherwise.
    """
    import numpy as np

    db = frames.db
    until = "" if until_ns is None else f" AND start < {int(until_ns)}"
    # an arrival moved back by its init stays in the window asked for
    earliest = -(2**63) if since_ns is None else int(since_ns)
    used = "max_memory_mb" if "max_memory_mb" in frames.invocations.columns else "NULL::INTEGER"
    # one scan of the (deduplicated, joined) invocations; everything else reads this copy
    db.execute(
        "CREATE OR REPLACE TEMP TABLE _cost_rows AS SELECT coalesce(function, '') AS function, "
        # a recorded cold start's request arrived before its init: the handler's start
        # comes after it
        "greatest(start - CASE WHEN cold_start AND init_ms > 0 "
        f"THEN CAST(init_ms * 1e6 AS BIGINT) ELSE 0 END, {earliest}) AS start, "
        "greatest(duration_ms, 0) AS duration_ms, "
        "coalesce(cold_start AND init_ms IS NOT NULL, false) AS cold, "
        "coalesce(init_ms, 0) AS init_ms, coalesce(line_bytes, 0) AS line_bytes, memory_mb, "
        f"{used} AS used FROM invocations "
        f"WHERE start IS NOT NULL AND duration_ms IS NOT NULL{until}"
    )
    sizes = {
        name: (memory, most)
        for name, memory, most in db.execute(
            "SELECT function, mode(memory_mb), max(used) FROM _cost_rows GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    names = list(sizes)
    rows = None
    if len(names) == 1:  # one function: the rows as stored, sorted here only if they are not
        rows = db.execute(
            "SELECT 0 AS f, start, duration_ms, cold, init_ms, line_bytes FROM _cost_rows"
        ).fetchnumpy()
        if len(rows["start"]) > 1 and not bool(np.all(np.diff(rows["start"]) >= 0)):
            # (a cold start moved back to its arrival): reorder what is simulated
            order = np.argsort(rows["start"], kind="stable")
            for name in ("start", "duration_ms", "cold", "init_ms"):
                rows[name] = rows[name][order]
    elif names:
        db.execute("CREATE OR REPLACE TEMP TABLE _cost_names (f INTEGER, function VARCHAR)")
        db.executemany("INSERT INTO _cost_names VALUES (?, ?)", list(enumerate(names)))
        rows = db.execute(
            "SELECT n.f, r.start, r.duration_ms, r.cold, r.init_ms, r.line_bytes "
            "FROM _cost_rows AS r JOIN _cost_names AS n USING (function) ORDER BY n.f, r.start"
        ).fetchnumpy()
        db.execute("DROP TABLE _cost_names")
    db.execute("DROP TABLE _cost_rows")
    minutes = db.execute(
        "SELECT coalesce(function, '') AS function, minute, invocations, "
        "CASE WHEN duration_avg_ms >= 0 THEN duration_avg_ms END AS mean_ms FROM minutes "
        "WHERE invocations > 0"
        + ("" if until_ns is None else f" AND minute < {int(until_ns)}")
        + " ORDER BY 1, 2"
    ).fetchnumpy()
    starts = [] if rows is None else [rows["start"].min()]
    ends = [] if rows is None else [(rows["start"] + rows["duration_ms"] * 1e6).max()]
    if len(minutes["minute"]):
        starts.append(minutes["minute"].min())
        ends.append(minutes["minute"].max() + 60e9)
    skipped: dict[str, str] = {}
    if not starts:
        return [], {}, skipped
    first_ns = int(min(starts)) if since_ns is None else int(since_ns)
    last_ns = float(max(ends)) if until_ns is None else float(until_ns)
    window_s = max((last_ns - first_ns) / 1e9, 1e-3)
    out = []
    memory: dict[str, dict[str, Any]] = {}
    rng = np.random.default_rng(_SEED)
    parts = (
        []
        if rows is None
        else np.split(np.arange(len(rows["f"])), np.flatnonzero(np.diff(rows["f"])) + 1)
    )
    for part in parts:
        assert rows is not None
        name = names[int(rows["f"][part[0]])]
        cold = rows["cold"][part].astype(bool)
        measured = rows["init_ms"][part][cold].astype(np.float64)
        init = np.zeros(len(part))
        if len(measured):
            init = rng.choice(measured, size=len(part))
            init[cold] = measured
        config = settings.configured.get(name, {})
        memory[name] = _memory(settings, config.get("memory_mb") or sizes[name][0], sizes[name][1])
        out.append(
            Workload(
                function=name,
                start_s=(rows["start"][part] - first_ns) / 1e9,
                duration_ms=rows["duration_ms"][part].astype(np.float64),
                init_ms=init,
                init_measured=len(measured),
                memory_mb=memory[name]["priced_mb"],
                line_bytes=float(rows["line_bytes"][part].sum()),
                window_s=window_s,
                window_start_s=first_ns / 1e9,
                provisioned=int(config.get("provisioned") or 0),
            )
        )
    out += _minute_workloads(
        minutes, settings, first_ns=first_ns, window_s=window_s, memory=memory, skipped=skipped
    )
    total = sum(work.requests for work in out) or 1
    for work in out:  # the account's free tier, shared by requests
        work.free_share = work.requests / total
    return out, memory, skipped


def _minute_workloads(
    minutes: dict[str, Any],
    settings: CostSettings,
    *,
    first_ns: int,
    window_s: float,
    memory: dict[str, dict[str, Any]],
    skipped: dict[str, str],
) -> list[Workload]:
    """A `Workload` of minutes for each function known only by minute counts."""
    import numpy as np

    out = []
    names_m = minutes["function"]
    for name in dict.fromkeys(names_m.tolist()):
        if name in memory:  # requests are known for it: they are the better account
            continue
        part = np.flatnonzero(names_m == name)
        means = np.ma.getdata(minutes["mean_ms"][part]).astype(np.float64)
        unknown = np.ma.getmaskarray(minutes["mean_ms"][part]) | np.isnan(means)
        if unknown.all():
            skipped[name] = (
                "minute counts without durations (no durations file beside them): nothing to price"
            )
            continue
        means[unknown] = float(np.mean(means[~unknown]))  # a minute without: the others'
        memory[name] = _memory(settings, None, None)
        out.append(
            Workload(
                function=name,
                start_s=(minutes["minute"][part] - first_ns) / 1e9,
                duration_ms=means,
                init_ms=np.zeros(len(part)),
                init_measured=0,
                memory_mb=memory[name]["priced_mb"],
                line_bytes=0.0,
                count=minutes["invocations"][part].astype(np.float64),
                window_s=window_s,
                window_start_s=first_ns / 1e9,
            )
        )
    return out


def _memory(settings: CostSettings, configured: int | None, used: int | None) -> dict[str, Any]:
    """The memory priced (asked, else recorded, else Lambda's default) and its headroom."""
    return {
        "configured_mb": configured,
        "priced_mb": int(settings.memory_mb or configured or _DEFAULT_MEMORY_MB),
        "max_used_mb": used,
        "headroom_mb": None if used is None or not configured else configured - used,
    }


def configs_of(frames: Frames) -> dict[str, dict[str, Any]]:
    """Each function's configuration in force: the newest `obs pull` found (none for
    sources that are not a pulled store)."""
    rows = frames.db.execute(
        "SELECT * EXCLUDE (source) FROM configs WHERE function IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY function ORDER BY pulled_at DESC) = 1"
    )
    names = [column[0] for column in rows.description or ()]
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows.fetchall()}


# What each platform calls its count of a function's invocations, among the metric
# points `obs pull` brings (the first a function has is taken: on Azure's Premium plan
# FunctionExecutionCount reads 0, and Flex Consumption splits the count in two).
_COUNTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("CloudWatch", ("Invocations",), ("Sum",)),
    ("Cloud Monitoring", ("run.googleapis.com/request_count",), ("Sum",)),
    ("Azure Monitor", ("FunctionExecutionCount",), ("Total",)),
    (
        "Azure Monitor",
        ("OnDemandFunctionExecutionCount", "AlwaysReadyFunctionExecutionCount"),
        ("Total",),
    ),
)


def platform_count(frames: Frames, work: Workload) -> dict[str, Any] | None:
    """What the platform's own metrics counted of ``work``'s function over its window,
    beside the requests the data read holds: a short share means invocations went unseen
    (logs dropped, a handler left uninstrumented). None without such metric points."""
    if work.count is not None:  # minute counts are the platform's count already
        return None
    minute = 60_000_000_000
    start = int(work.window_start_s * 1e9) // minute * minute
    end = int((work.window_start_s + work.window_s) * 1e9)
    for service, metrics, statistics in _COUNTS:
        names = ", ".join(sql_string(m) for m in metrics)
        stats = ", ".join(sql_string(s) for s in statistics)
        ((total, points),) = frames.db.execute(
            f"SELECT sum(value), count(*) FROM points WHERE function = ? AND metric IN ({names})"
            f' AND statistic IN ({stats}) AND "at" >= ? AND "at" < ?',
            [work.function, start, end],
        ).fetchall()
        if points and total:
            counted = round(float(total))
            return {
                "service": service,
                "metric": "+".join(metrics),
                "invocations": counted,
                "recorded_share": round(work.requests / counted, 4) if counted else None,
            }
    return None


def provider_of(frames: Frames) -> str:
    """Whose billing applies: the cloud most of the records name, else AWS."""
    rows = frames.db.execute(
        "SELECT platform, count(*) FROM invocations WHERE platform IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    for platform, _ in rows:
        for provider in ("aws", "gcp", "azure"):
            if str(platform).startswith(provider):
                return provider
    if not rows and frames.count("minutes"):  # minute counts: Azure's 2019 trace
        return "azure"
    return "aws"


def cost_report(
    frames: Frames,
    settings: CostSettings,
    *,
    policies: list[Policy] | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> dict[str, Any]:
    """The whole answer, as the JSON schema ``SCHEMA`` lays it out."""
    works, memory, skipped = workloads(frames, settings, since_ns, until_ns)
    functions = []
    window: dict[str, Any] = {"start": None, "end": None, "seconds": 0.0}
    for work in works:
        window = {
            "start": _iso(work.window_start_s),
            "end": _iso(work.window_start_s + work.window_s),
            "seconds": work.window_s,
        }
        current, options, sweep = options_for(work, settings, policies)
        functions.append(
            {
                "function": work.function or None,
                "requests": work.requests,
                "memory": {**memory[work.function], "flag": _memory_flag(memory[work.function])},
                "init_durations_measured": work.init_measured,
                # at least 100 requests over an hour: enough for a recommendation or a budget
                "enough_data": _enough(work),
                "peak_concurrency": sweep["n"][-1],
                "current": current.as_dict(),
                "options": [option.as_dict() for option in options],
                "sweep": sweep,
                "recommendation": recommend(
                    current, options, work, settings, priced=policies is not None
                ),
                "platform_count": platform_count(frames, work),
            }
        )
    return {
        "schema": SCHEMA,
        "window": window,
        "month_hours": MONTH_S / 3600,
        "provider": settings.provider,
        "region": settings.platform().region,
        "arch": settings.arch,
        "free_tier": settings.free_tier,
        "keep_alive_s": settings.keep_alive(),
        "slo": {"max_cold_start_rate": settings.max_cold_start_rate, "p99_ms": settings.p99_ms},
        "pricing": settings.prices.files,
        "functions": functions,
        "skipped": [{"function": name, "reason": why} for name, why in skipped.items()],
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _enough(work: Workload) -> bool:
    return work.requests >= _FEWEST_REQUESTS and work.window_s >= _SHORTEST_WINDOW_S


def _memory_flag(memory: dict[str, Any]) -> str | None:
    """A plain warning where the function pays for memory it never touches."""
    configured, used = memory["configured_mb"], memory["max_used_mb"]
    if configured is None or used is None:
        return None
    if used <= configured / 2 and configured > 128:
        return (
            f"uses at most {used} MB of {configured} MB: a smaller size may cost less "
            "(Lambda's CPU share scales with memory, so check the duration at the new size)"
        )
    return None


def recommend(
    current: Option,
    options: list[Option],
    work: Workload,
    settings: CostSettings,
    *,
    priced: bool = False,
) -> dict[str, Any]:
    """The cheapest option meeting the SLO, the saving against the current setup, and why."""
    meeting = [o for o in options if o.meets_slo]
    hours = work.window_s / 3600
    if not _enough(work):
        # little data decides only what it cannot reverse: on-demand, meeting the
        # target, far cheaper than keeping any capacity
        kept = [o.monthly_usd for o in options if o.policy.kind != "on-demand"]
        clear = (
            current.meets_slo
            and bool(kept)
            and min(kept) >= _CLEAR_MARGIN * max(current.monthly_usd, 1e-9)
        )
        if not clear:
            return {
                "policy": None,
                "reason": f"{work.requests} request{'' if work.requests == 1 else 's'} over "
                f"{hours:,.1f} h: too little to decide "
                f"(at least {_FEWEST_REQUESTS} requests over an hour are needed, unless "
                "on-demand is plainly cheapest); record longer and ask again",
            }
    if not meeting:
        if settings.p99_ms is not None and work.count is not None:
            why = "minute counts say nothing of each request's latency: --p99-ms cannot be checked"
            return {"policy": None, "reason": why}
        return {
            "policy": None,
            "reason": "no option priced meets the SLO"
            + ("" if priced else "; relax --max-cold-start-rate or --p99-ms"),
        }
    best = min(meeting, key=lambda o: (o.monthly_usd, o is not current))
    kept_current = False
    if best is not current and current.meets_slo and current in options:
        # a change must pay for itself: not for a rounding of pennies at a window's edge
        worth = max(_WORTH_CHANGING * current.monthly_usd, _WORTH_CHANGING_USD)
        if current.monthly_usd - best.monthly_usd < worth:
            best, kept_current = current, True
    out: dict[str, Any] = {
        "policy": best.policy.name,
        "monthly_usd": round(best.monthly_usd, 6),
        "savings_monthly_usd": round(current.monthly_usd - best.monthly_usd, 6),
    }
    rival = _rival(best, meeting, current if current in options else None)
    monthly_requests = work.requests * MONTH_S / work.window_s
    out["break_even"] = _break_even(best, rival, monthly_requests)
    out["reason"] = _reason(best, current, rival, out["break_even"], settings)
    if kept_current:
        out["reason"] = (
            f"{best.policy.name} is within 1% (or a cent a month) of the cheapest option "
            f"meeting the target, not worth a change: ${best.monthly_usd:,.2f} a month"
        )
        out["break_even"] = None
    return out


def _rival(best: Option, meeting: list[Option], on_demand: Option | None) -> Option | None:
    """What the choice is weighed against: on-demand, or else the cheapest kept-capacity option."""
    if best.policy.kind != "on-demand":
        return on_demand
    others = [o for o in meeting if o.policy.kind != "on-demand"]
    return min(others, key=lambda o: o.monthly_usd) if others else None


def _break_even(
    best: Option, rival: Option | None, monthly_requests: float
) -> dict[str, Any] | None:
    """Requests a month at which ``best`` and ``rival`` cost the same, traffic scaled as it is.

    Kept capacity is a fixed charge; the rest grows with traffic. Scaling the
    traffic by m, the two meet where fixed + m x variable agree.
    """
    if rival is None:
        return None
    fixed_a, variable_a = best.fixed_usd, best.monthly_usd - best.fixed_usd
    fixed_b, variable_b = rival.fixed_usd, rival.monthly_usd - rival.fixed_usd
    if math.isclose(variable_a, variable_b) or (fixed_b - fixed_a) / (variable_a - variable_b) <= 0:
        return None
    scale = (fixed_b - fixed_a) / (variable_a - variable_b)
    return {
        "against": rival.policy.name,
        "requests_per_month": round(monthly_requests * scale),
        "traffic_scale": round(scale, 3),
    }


def _scale(scale: float) -> str:
    return f"{scale:,.0f}x" if scale >= 10 else f"{scale:.2g}x"


def _reason(
    best: Option,
    current: Option,
    rival: Option | None,
    even: dict[str, Any] | None,
    settings: CostSettings,
) -> str:
    slo = []
    if settings.max_cold_start_rate is not None:
        slo.append(f"cold starts at most {settings.max_cold_start_rate:.2%}")
    if settings.p99_ms is not None:
        slo.append(f"p99 at most {settings.p99_ms:g} ms")
    wanted = " and ".join(slo) or "no latency target given"
    text = (
        f"{best.policy.name} is the cheapest option meeting the target ({wanted}): "
        f"${best.monthly_usd:,.2f} a month, {best.cold_start_rate:.2%} cold starts"
    )
    if best is not current:
        text += f", against ${current.monthly_usd:,.2f} for {current.policy.name}"
    if even is not None and rival is not None:
        text += (
            f"; {rival.policy.name} would cost the same at about "
            f"{even['requests_per_month']:,} requests a month "
            f"({_scale(even['traffic_scale'])} today's traffic)"
        )
    return text
