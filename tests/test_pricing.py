"""Prices as data, and Lambda's bill against the worked examples on its pricing page.

The examples, with the page's address and the snapshot read, are in
tests/data/lambda_pricing_examples.toml (docs/pricing.md says how they were read).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from inferobs.analyze.lambda_bill import LambdaPrices
from inferobs.analyze.pricing import PricingError, load, tiered

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

EXAMPLES = tomllib.loads(
    (Path(__file__).parent / "data" / "lambda_pricing_examples.toml").read_text()
)["example"]


def _kind(kind: str) -> list[dict[str, Any]]:
    return [e for e in EXAMPLES if e["kind"] == kind]


def _id(example: dict[str, Any]) -> str:
    return f"{example['name']} ({example['address']}, {example['snapshot']})"


@pytest.mark.parametrize("example", _kind("on_demand"), ids=_id)
def test_on_demand_examples_to_the_cent(example: dict[str, Any]) -> None:
    prices = LambdaPrices(load(), "us-east-1", example["arch"], free_tier=example["free_tier"])
    gb_s = example["requests"] * example["duration_ms"] / 1000 * example["memory_mb"] / 1024
    bill = prices.bill(months=1, requests=example["requests"], compute_gb_s=gb_s)
    assert round(bill["requests_usd"], 2) == example["expected_requests_usd"]
    assert round(bill["compute_usd"], 2) == example["expected_compute_usd"]
    assert round(bill["requests_usd"] + bill["compute_usd"], 2) == example["expected_total_usd"]


@pytest.mark.parametrize("example", _kind("provisioned"), ids=_id)
def test_provisioned_concurrency_examples_to_the_cent(example: dict[str, Any]) -> None:
    prices = LambdaPrices(load(), "us-east-1", example["arch"], free_tier=example["free_tier"])
    gb = example["memory_mb"] / 1024
    on_provisioned = example["requests_on_provisioned"]
    on_demand = example["requests"] - on_provisioned
    bill = prices.bill(
        months=1,
        requests=example["requests"],
        compute_gb_s=on_demand * example["duration_ms"] / 1000 * gb,
        provisioned_gb_s=example["provisioned_concurrency"]
        * gb
        * example["provisioned_hours"]
        * 3600,
        on_provisioned_gb_s=on_provisioned * example["duration_ms_on_provisioned"] / 1000 * gb,
    )
    assert round(bill["requests_usd"], 2) == example["expected_requests_usd"]
    assert round(bill["provisioned_usd"], 2) == example["expected_provisioned_usd"]
    assert round(bill["provisioned_compute_usd"], 2) == example["expected_compute_usd"]
    assert round(bill["compute_usd"], 2) == example["expected_on_demand_compute_usd"]
    total = sum(round(v, 2) for v in bill.values())
    assert round(total, 2) == example["expected_total_usd"]


def test_the_examples_of_both_kinds_are_there() -> None:
    assert len(_kind("on_demand")) >= 2 and len(_kind("provisioned")) >= 2


def test_tiers_charge_each_band_at_its_price() -> None:
    tiers = [(10.0, 1.0), (30.0, 0.5), (None, 0.1)]
    assert tiered(5, tiers) == 5
    assert tiered(25, tiers) == 10 + 7.5
    assert tiered(100, tiers) == 10 + 10 + 7.0
    assert tiered(10, tiers, already=25) == 2.5 + 0.5


def test_every_shipped_table_names_its_source_and_date() -> None:
    prices = load()

    def walk(node: dict[str, Any], path: str) -> None:
        numbers = [k for k, v in node.items() if isinstance(v, (int, float, list))]
        if numbers and path.count(".") >= 2:
            assert "source" in node and "as_of" in node, path
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{path}.{key}")

    for provider, data in prices.data.items():
        walk(data, provider)


def test_a_missing_price_is_named_with_the_files_read(tmp_path: Path) -> None:
    prices = load()
    with pytest.raises(PricingError, match=r"no price for aws\.lambda\.eu-north-9 in .*aws\.toml"):
        prices.number("aws", "lambda", "eu-north-9", "requests_usd_per_million")
    bad = tmp_path / "p.toml"
    bad.write_text('[aws.lambda.us-east-1]\nrequests_usd_per_million = "cheap"\n')
    with pytest.raises(PricingError, match="requests_usd_per_million='cheap'"):
        load(str(bad)).number("aws", "lambda", "us-east-1", "requests_usd_per_million")
    with pytest.raises(PricingError, match="cannot be read"):
        load(str(tmp_path / "absent.toml"))
