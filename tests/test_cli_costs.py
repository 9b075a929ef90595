"""`obs report --costs` as a user runs it: policies, SLOs, prices, budgets and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from inferobs.cli import main
from inferobs.exit_codes import ExitCode
from inferobs.export.lines import encode
from inferobs.record import Invocation

START = 1_764_000_000 * 10**9  # 2025-11-24T16:00:00Z


def busy_function(
    path: Path, hours: float = 3.0, rate: float = 2.0, platform: str | None = None
) -> Path:
    """Poisson arrivals of 120 ms requests at 1,024 MB; cold starts measured at 900 ms."""
    rng = random.Random(3)
    at, n = 0.0, 0
    with open(path, "w") as out:
        while at < hours * 3600:
            at += rng.expovariate(rate)
            cold = n % 50 == 0
            record = Invocation(
                id=f"r{n}",
                start=START + int(at * 1e9),
                duration_ms=round(rng.uniform(80, 160), 3),
                cold_start=cold or None,
                init_ms=900.0 if cold else None,
                function="classify",
                memory_mb=1024,
                platform=platform,
            )
            out.write(encode(record) + "\n")
            n += 1
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["report", *args])


def answer_of(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_cold_start_target_buys_provisioned_concurrency_and_says_what_it_costs(
    tmp_path: Path,
) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl"))
    free = answer_of(run("--costs", "--format", "json", "--source", source))
    (entry,) = free["functions"]
    assert free["schema"] == "inferobs.costs/1"
    assert entry["recommendation"]["policy"] == "on-demand"
    assert entry["current"]["cold_starts"] > 0
    strict = answer_of(
        run("--costs", "--format", "json", "--source", source, "--max-cold-start-rate", "0.0001")
    )
    (entry,) = strict["functions"]
    advice = entry["recommendation"]
    chosen = next(o for o in entry["options"] if o["policy"] == advice["policy"])
    assert chosen["meets_slo"] and chosen["cold_start_rate"] <= 0.0001
    assert advice["policy"].startswith(("provisioned", "schedule", "always-on"))
    assert advice["savings_monthly_usd"] < 0  # warmth costs money here
    # the on-demand cold starts add the measured init to the tail
    assert entry["current"]["p99_added_ms"] is not None
    for option in entry["options"]:
        breakdown = option["breakdown"]
        parts = sum(v for k, v in breakdown.items() if k.endswith("_usd"))
        assert parts == pytest.approx(option["cost_usd"], abs=1e-5)


def test_the_policies_given_are_priced_and_nothing_else(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl"))
    answer = answer_of(
        run(
            "--costs",
            "--format",
            "json",
            "--source",
            source,
            "--policy",
            "provisioned:2",
            "--policy",
            "provisioned:1@8-20",
            "--policy",
            "always-on:1",
            "--instance",
            "ec2:c7g.large",
        )
    )
    (entry,) = answer["functions"]
    assert [o["policy"] for o in entry["options"]] == [
        "provisioned:2",
        "provisioned:1@8-20",
        "always-on:1 x ec2:c7g.large",
    ]
    two, daytime, ec2 = entry["options"]
    hours = answer["window"]["seconds"] / 3600
    assert two["breakdown"]["provisioned_gb_s"] == pytest.approx(2 * 1.0 * hours * 3600)
    assert daytime["breakdown"]["provisioned_gb_s"] <= 1.0 * 12 * 3600
    assert ec2["breakdown"]["instance_hours"] == pytest.approx(hours)


def test_over_budget_exits_4_after_the_report(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl"))
    result = run("--costs", "--source", source, "--budget", "1")
    assert result.exit_code == ExitCode.OVER_BUDGET
    assert "over the $1.00 budget" in result.output
    assert "Recommended:" in result.stdout
    assert run("--costs", "--source", source, "--budget", "1000000").exit_code == 0


def test_a_pricing_file_overrides_one_price_and_keeps_the_rest(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl"))
    prices = tmp_path / "prices.toml"
    prices.write_text("[aws.lambda.us-east-1]\nrequests_usd_per_million = 2.0\n")
    base = answer_of(run("--costs", "--format", "json", "--source", source))
    dear = answer_of(
        run("--costs", "--format", "json", "--source", source, "--pricing", str(prices))
    )
    before, after = base["functions"][0]["current"], dear["functions"][0]["current"]
    assert after["breakdown"]["requests_usd"] == pytest.approx(
        10 * before["breakdown"]["requests_usd"], rel=1e-4
    )
    assert after["breakdown"]["compute_usd"] == before["breakdown"]["compute_usd"]
    assert str(prices) in dear["pricing"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "provisioned:x"], "expected on-demand, provisioned:N"),
        (["--policy", "provisioned:2@20-8"], "0 <= H1 < H2 <= 24"),
        (["--policy", "always-on:2"], "--instance"),
        (["--region", "mars-1"], "no price for aws.lambda.mars-1"),
        (["--max-cold-start-rate", "2"], "--max-cold-start-rate"),
        (["--policy", "always-on:1", "--instance", "fargate:big"], "fargate:VCPUxGB"),
        (["--policy", "always-on:1", "--instance", "lmi:g5.xlarge"], "do not run on g5.xlarge"),
        (["--max-cold-start-rate", "nan"], "not a finite number"),
        (["--keep-alive-minutes", "inf"], "not a finite number"),
        (["--since", "2025-11-24T17:00Z", "--until", "2025-11-24T16:00Z"], "after --since"),
    ],
)
def test_bad_cost_arguments_are_one_clear_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=0.2))
    result = run("--costs", "--source", source, *args)
    assert result.exit_code == ExitCode.ERROR, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_broken_pricing_file_is_named(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=0.2))
    bad = tmp_path / "bad.toml"
    bad.write_text("[aws.lambda\n")
    result = run("--costs", "--source", source, "--pricing", str(bad))
    assert result.exit_code == ExitCode.ERROR
    assert f"{bad}: not a TOML file" in result.output
    other = tmp_path / "other.toml"
    other.write_text("[oracle]\nx = 1\n")
    result = run("--costs", "--source", source, "--pricing", str(other))
    assert "top-level keys must be providers" in result.output


def test_cost_options_without_costs_are_refused(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=0.2))
    for args in (["--format", "html"], ["--budget", "3"], ["--policy", "on-demand"]):
        result = run("--source", source, *args)
        assert result.exit_code == ExitCode.ERROR
        assert "goes with --costs" in result.output


def test_too_little_data_is_said_rather_than_guessed(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=0.2, rate=0.05))
    answer = answer_of(
        run("--costs", "--format", "json", "--source", source, "--max-cold-start-rate", "0.01")
    )
    advice = answer["functions"][0]["recommendation"]
    assert advice["policy"] is None
    assert "too little to decide" in advice["reason"]


def test_the_html_page_draws_a_schedule(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=30.0, rate=0.02))
    spec = "schedule:1@8-12,2@12-20"
    answer = answer_of(run("--costs", "--format", "json", "--source", source, "--policy", spec))
    (option,) = answer["functions"][0]["options"]
    assert option["policy"] == spec  # a policy's name is its spec
    assert option["breakdown"]["provisioned_gb_s"] <= (4 * 1 + 8 * 2) * 3600 * 2
    result = run("--costs", "--format", "html", "--source", source, "--policy", spec)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("<svg") == 3


def test_cloud_run_records_are_priced_by_cloud_run_rules(tmp_path: Path) -> None:
    """Request-based billing in 100 ms steps, min-instances at the idle rate, instance-based."""
    from inferobs.analyze.pricing import load

    source = tmp_path / "lines.jsonl"
    busy_function(source, hours=2.0, platform="gcp_cloud_run")
    answer = answer_of(
        run(
            "--costs",
            "--format",
            "json",
            "--source",
            str(source),
            "--policy",
            "on-demand",
            "--policy",
            "provisioned:2",
            "--policy",
            "always-on:2",
            "--instance",
            "cloudrun:1x2",
        )
    )
    assert (answer["provider"], answer["region"]) == ("gcp", "us-central1")
    on_demand, kept, always_on = answer["functions"][0]["options"]
    price = load().table("gcp", "cloud_run", "us-central1", "request_based")
    records = [json.loads(line) for line in source.read_text().splitlines()]
    # 1 GiB needs 1 vCPU; each request billed in 100 ms steps, a cold one with its init
    active = price["vcpu_usd_per_s"] + price["gib_usd_per_s"]
    assert on_demand["breakdown"]["requests_usd"] == pytest.approx(
        len(records) * price["requests_usd_per_million"] / 1e6, abs=1e-6
    )
    assert on_demand["breakdown"]["compute_usd"] == pytest.approx(
        sum(-(-r["duration_ms"] // 100) * 0.1 for r in records) * active, abs=1e-6
    )
    idle = price["idle_vcpu_usd_per_s"] + price["idle_gib_usd_per_s"]
    seconds = answer["window"]["seconds"]
    assert kept["breakdown"]["provisioned_usd"] == pytest.approx(2 * seconds * idle, abs=1e-6)
    instance = load().table("gcp", "cloud_run", "us-central1", "instance_based")
    per_hour = 3600 * (instance["vcpu_usd_per_s"] + 2 * instance["gib_usd_per_s"])
    assert always_on["breakdown"]["instances_usd"] == pytest.approx(
        2 * seconds / 3600 * per_hour, abs=1e-6
    )
    assert always_on["breakdown"]["load_balancer_usd"] == 0  # Cloud Run serves its own URL


def test_azure_records_are_priced_on_consumption_flex_and_premium(tmp_path: Path) -> None:
    from inferobs.analyze.pricing import load

    source = tmp_path / "lines.jsonl"
    busy_function(source, hours=2.0, platform="azure_functions")
    answer = answer_of(
        run(
            "--costs",
            "--format",
            "json",
            "--source",
            str(source),
            "--policy",
            "on-demand",
            "--policy",
            "provisioned:1",
            "--policy",
            "always-on:1",
            "--instance",
            "premium:EP1",
        )
    )
    assert (answer["provider"], answer["region"]) == ("azure", "eastus")
    on_demand, ready, premium = answer["functions"][0]["options"]
    prices = load()
    consumption = prices.table("azure", "functions_consumption", "eastus")
    records = [json.loads(line) for line in source.read_text().splitlines()]
    assert on_demand["breakdown"]["requests_usd"] == pytest.approx(
        len(records) * consumption["executions_usd_per_million"] / 1e6, abs=1e-6
    )
    flex = prices.table("azure", "functions_flex", "eastus")
    seconds = answer["window"]["seconds"]
    # Flex bills its instance size (1 GB of function needs the 2,048 MB instance) and at
    # least 1,000 ms an execution
    assert ready["breakdown"]["provisioned_usd"] == pytest.approx(
        1 * 2.0 * seconds * flex["always_ready_baseline_usd_per_gb_s"], abs=1e-6
    )
    assert ready["breakdown"]["compute_gb_s"] == pytest.approx(
        len(records) * max(flex["min_billed_ms"], 160) / 1000 * 2.0
    )
    ep1 = prices.table("azure", "functions_premium", "eastus", "EP1")
    assert premium["breakdown"]["instances_usd"] == pytest.approx(
        seconds / 3600 * ep1["usd_per_hour"], abs=1e-6
    )
    # --provider overrides what the records say
    aws = answer_of(
        run("--costs", "--format", "json", "--source", str(source), "--provider", "aws")
    )
    assert aws["provider"] == "aws" and aws["region"] == "us-east-1"


def write(path: Path, records: list[Invocation]) -> Path:
    path.write_text("".join(encode(r) + "\n" for r in records))
    return path


def test_a_warm_environment_kept_for_bursts_is_not_charged_the_inits_it_never_runs(
    tmp_path: Path,
) -> None:
    """Five 120 ms requests 250 ms apart every 15 minutes: one environment serves them all."""
    records = []
    for burst in range(40):
        for k in range(5):
            cold = k == 0
            records.append(
                Invocation(
                    id=f"b{burst}-{k}",
                    start=START + burst * 900 * 10**9 + k * 250 * 10**6,
                    duration_ms=120.0,
                    cold_start=cold or None,
                    init_ms=900.0 if cold else None,
                    function="classify",
                    memory_mb=1024,
                )
            )
    source = str(write(tmp_path / "bursts.jsonl", records))
    answer = answer_of(
        run(
            "--costs",
            "--format",
            "json",
            "--source",
            source,
            "--policy",
            "on-demand",
            "--policy",
            "provisioned:1",
        )
    )
    on_demand, kept = answer["functions"][0]["options"]
    # on demand each burst's first request inits for 900 ms: the next three arrive meanwhile
    assert on_demand["cold_starts"] >= 40
    assert kept["cold_starts"] == 0 and kept["breakdown"]["spilled_requests"] == 0


def test_capacity_kept_some_hours_costs_a_month_of_those_hours(tmp_path: Path) -> None:
    source = str(busy_function(tmp_path / "lines.jsonl", hours=3.0))  # 16:00 to 19:00 only
    answer = answer_of(
        run(
            "--costs",
            "--format",
            "json",
            "--source",
            source,
            "--policy",
            "provisioned:1",
            "--policy",
            "provisioned:1@16-19",
        )
    )
    all_day, evening = answer["functions"][0]["options"]
    from inferobs.analyze.pricing import load

    rate = load().table("aws", "lambda", "us-east-1", "x86_64")["provisioned_usd_per_gb_s"]
    # the same requests, served the same: the months differ by 21 hours a day kept
    difference = 21 * 3600 * 730 / 24 * 1.0 * rate
    assert all_day["monthly_usd"] - evening["monthly_usd"] == pytest.approx(difference, rel=1e-3)


def test_a_cold_start_just_after_since_is_priced(tmp_path: Path) -> None:
    records = [
        Invocation(
            id=f"r{n}",
            start=START + (n + 1) * 10**9,
            duration_ms=50.0,
            cold_start=n == 0 or None,
            init_ms=900.0 if n == 0 else None,
            function="f",
            memory_mb=512,
        )
        for n in range(200)
    ]
    source = str(write(tmp_path / "lines.jsonl", records))
    since = "2025-11-24T16:00:00.5Z"  # before the first start, after its arrival
    result = run("--costs", "--format", "json", "--source", source, "--since", since)
    answer = answer_of(result)
    assert answer["functions"][0]["requests"] == 200
