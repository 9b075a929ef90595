"""`obs report --costs` on the real Azure traces in ../shared/data/traces/."""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inferobs.analyze.pricing import load
from inferobs.cli import main

TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
SLICE = (
    TRACES
    / "azure-functions-2021-slice"
    / "AzureFunctionsInvocationTraceForTwoWeeksJan2021_first998.csv"
)
DAY = TRACES / "azure-functions-2019-one-function" / "invocations.csv"

pytestmark = pytest.mark.skipif(
    not TRACES.exists() and not os.environ.get("CI"), reason="../shared/data/traces is absent"
)


def costs(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["report", "--costs", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def _slice_durations() -> dict[str, list[float]]:
    durations: dict[str, list[float]] = defaultdict(list)
    with open(SLICE, newline="") as handle:
        for row in csv.DictReader(handle):
            durations[f"{row['app']}/{row['func']}"].append(float(row["duration"]) * 1000)
    return durations


def test_every_function_of_the_2021_slice_costs_the_direct_sum_of_its_invocations() -> None:
    """Azure Functions' Consumption plan: each execution, and at least 100 ms of 128 MB."""
    answer = costs("--source", str(SLICE))
    assert answer["provider"] == "azure"  # the trace's records say where they ran
    durations = _slice_durations()
    assert {f["function"] for f in answer["functions"]} == set(durations)
    assert len(durations) == 49
    plan = load().table("azure", "functions_consumption", "eastus")
    for entry in answer["functions"]:
        ms = durations[entry["function"]]
        billed = sum(max(math.ceil(round(d, 3)), plan["min_billed_ms"]) for d in ms)
        direct = (
            len(ms) * plan["executions_usd_per_million"] / 1e6
            + billed / 1000 * (128 / 1024) * plan["usd_per_gb_s"]
        )
        on_demand = entry["current"]
        assert on_demand["policy"] == "on-demand"
        assert on_demand["cost_usd"] == pytest.approx(direct, rel=1e-6, abs=1e-6)
        assert on_demand["breakdown"]["requests"] == len(ms)


def test_priced_as_lambda_the_2021_slice_costs_the_direct_sum_by_lambda_rules() -> None:
    answer = costs("--source", str(SLICE), "--provider", "aws")
    durations = _slice_durations()
    prices = load()
    per_request = prices.table("aws", "lambda", "us-east-1")["requests_usd_per_million"] / 1e6
    (_, per_gb_s), *_ = prices.tiers(
        "aws", "lambda", "us-east-1", "x86_64", "duration_usd_per_gb_s"
    )
    for entry in answer["functions"]:
        ms = durations[entry["function"]]
        # 128 MB (nothing records the memory), each request billed up to the next ms
        direct = (
            len(ms) * per_request
            + sum(math.ceil(round(d, 3)) for d in ms) / 1000 * (128 / 1024) * per_gb_s
        )
        assert entry["current"]["cost_usd"] == pytest.approx(direct, rel=1e-6, abs=1e-6)


def test_the_sparse_functions_of_the_2021_slice_are_recommended_on_demand() -> None:
    answer = costs("--source", str(SLICE))
    sparse = [f for f in answer["functions"] if f["requests"] <= 60 and f["peak_concurrency"] == 1]
    assert len(sparse) >= 30
    for entry in sparse:
        assert entry["recommendation"]["policy"] == "on-demand", entry["recommendation"]


def test_the_busy_2019_function_stays_on_demand_as_the_hand_arithmetic_says() -> None:
    """tests/data/azure_2019_costs.md works each option out by hand."""
    answer = costs("--source", str(DAY), "--provider", "aws")
    (entry,) = answer["functions"]
    assert entry["requests"] == 20_820_188
    current = entry["current"]["breakdown"]
    # the request charge is most of the bill: 20,820,188 x $0.20 / 1M = $4.16
    assert current["requests_usd"] == pytest.approx(4.164038, abs=1e-6)
    assert current["compute_gb_s"] == pytest.approx(20_820_188 * 4.5 / 1000 * 0.125)
    assert entry["current"]["cost_usd"] == pytest.approx(4.36, abs=0.005)
    by_policy = {o["policy"]: o for o in entry["options"]}
    ec2 = by_policy["always-on:1 x ec2:c7g.large"]
    # an always-on option pays for its load balancer: 24 h + 9.64 LCU an hour
    assert ec2["breakdown"]["load_balancer_usd"] == pytest.approx(0.54 + 1.85, abs=0.01)
    assert ec2["breakdown"]["spilled_requests"] == pytest.approx(0.191 * 20_820_188, rel=0.03)
    assert ec2["cost_usd"] == pytest.approx(4.97, abs=0.02)
    assert entry["recommendation"]["policy"] == "on-demand"


def test_the_2019_day_is_priced_as_azure_functions_by_default_with_their_minimum() -> None:
    answer = costs("--source", str(DAY), "--policy", "on-demand")
    assert answer["provider"] == "azure"  # minute counts are Azure's 2019 trace
    (entry,) = answer["functions"]
    # Consumption bills at least 100 ms: 4 ms on average is billed 100
    assert entry["current"]["breakdown"]["compute_gb_s"] == pytest.approx(
        20_820_188 * 0.100 * 0.125
    )


def test_a_p99_target_cannot_be_met_from_minute_counts() -> None:
    answer = costs("--source", str(DAY), "--p99-ms", "1000")
    advice = answer["functions"][0]["recommendation"]
    assert advice["policy"] is None
    assert "minute counts say nothing of each request's latency" in advice["reason"]


def _minute_file(folder: Path, durations: bool) -> Path:
    minutes = ",".join(str(m) for m in range(1, 1441))
    path = folder / "invocations_per_function_md.anon.d01.csv"
    path.write_text(
        f"HashOwner,HashApp,HashFunction,Trigger,{minutes}\n"
        f"o,app,fa,http,{','.join(['600'] * 1440)}\n"
        f"o,app,fb,http,{','.join(['60'] * 1440)}\n"
    )
    if durations:
        (folder / "durations.csv").write_text(
            "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
            "percentile_Average_1,percentile_Average_25,percentile_Average_50,"
            "percentile_Average_75,percentile_Average_99,percentile_Average_100\n"
            "o,app,fa,200,1,1,900,1,2,80,110,150,600,900\n"
            "o,app,fb,200,1,1,900,1,2,80,110,150,600,900\n"
        )
    return path


def test_minute_counts_answer_to_since_and_function(tmp_path: Path) -> None:
    path = str(_minute_file(tmp_path, durations=True))
    both = costs("--source", path, "--policy", "on-demand")
    assert [f["function"] for f in both["functions"]] == ["app/fa", "app/fb"]
    one = costs("--source", path, "--policy", "on-demand", "--function", "app/fa")
    assert [f["function"] for f in one["functions"]] == ["app/fa"]
    half = costs("--source", path, "--since", "2019-07-01T12:00:00Z")
    (fa, fb) = half["functions"]
    assert fa["requests"] == 600 * 720 and fb["requests"] == 60 * 720
    assert half["window"]["seconds"] == pytest.approx(12 * 3600)
    # a month of half a day's pace is a month of the whole day's
    assert fa["current"]["monthly_usd"] == pytest.approx(
        both["functions"][0]["current"]["monthly_usd"], rel=1e-6
    )


def test_minute_counts_without_durations_are_named_not_priced_at_zero(tmp_path: Path) -> None:
    path = str(_minute_file(tmp_path, durations=False))
    result = CliRunner().invoke(main, ["report", "--costs", "--format", "json", "--source", path])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["functions"] == []
    assert {s["function"] for s in answer["skipped"]} == {"app/fa", "app/fb"}
    assert "without durations" in result.stderr
