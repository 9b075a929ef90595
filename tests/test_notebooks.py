"""The notebooks run headless, top to bottom, and compute what their prose says.

Each notebook is executed in a Jupyter kernel of this interpreter (so it
imports the inferobs under test) with its own folder as the working
directory, as Jupyter opens it; any cell error fails the test. What a reader
relies on is then read back from the kernel's variables, not from printed
text, by one extra cell appended to the in-memory copy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COST_EXPLORER = NOTEBOOKS / "cost_explorer.ipynb"
DRIFT_ALERTING = NOTEBOOKS / "drift_alerting.ipynb"
TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"

_PROBE = """
import json as _json, sys as _sys
print(_json.dumps({
    "executable": _sys.executable,
    "demo": demo_answer,
    "p99": {str(ms): answer for ms, answer in p99_answers.items()},
    "slice": slice_answer,
    "day": day_answer,
}))
"""


_DRIFT_PROBE = """
import json as _json, sys as _sys
print(_json.dumps({
    "executable": _sys.executable,
    "shifted": SHIFTED,
    "untouched": UNTOUCHED,
    "same_windows": same_windows,
    "gaps": gaps,
    "default_levels": default_levels,
    "tuned": tuned,
    "instance_alarm": instance_alarm,
    "cli_exit": cli_exit,
    "cli_alerts": cli_alerts,
    "alarms": alarm_definitions,
}))
"""


def execute(path: Path, probe: str) -> dict[str, Any]:
    """Run the notebook at ``path`` in a fresh kernel, then ``probe``; its stdout, as JSON."""
    # nbformat has no annotations: its two calls are the only untyped ones here
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    notebook.cells.append(new_code_cell(probe))  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # the kernel starts from the defaults, as every test here does (conftest.py)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("INFEROBS_", "AWS_LAMBDA_", "_X_AMZN"))
    }
    client.execute(env=env)  # CellExecutionError, naming the cell, on any error
    printed = [
        output["text"]
        for output in notebook.cells[-1].outputs
        if output["output_type"] == "stream" and output["name"] == "stdout"
    ]
    found: dict[str, Any] = json.loads("".join(printed))
    return found


@pytest.fixture(scope="module")
def cost_explorer() -> dict[str, Any]:
    return execute(COST_EXPLORER, _PROBE)


def test_the_notebook_ran_in_this_interpreter(cost_explorer: dict[str, Any]) -> None:
    # a kernelspec of another Python would test another inferobs
    assert Path(cost_explorer["executable"]).resolve() == Path(sys.executable).resolve()


def test_the_demo_is_recommended_the_cheapest_option_with_at_most_one_percent_cold(
    cost_explorer: dict[str, Any],
) -> None:
    (entry,) = cost_explorer["demo"]["functions"]
    assert entry["function"] == "demo-classifier"
    assert cost_explorer["demo"]["slo"]["max_cold_start_rate"] == 0.01
    # on-demand leaves the demo's lulls cold, so the target has to buy warm capacity
    assert entry["current"]["policy"] == "on-demand"
    assert entry["current"]["cold_start_rate"] > 0.01
    chosen = entry["recommendation"]["policy"]
    assert chosen not in (None, "on-demand"), entry["recommendation"]
    by_policy = {option["policy"]: option for option in entry["options"]}
    meeting = [option for option in entry["options"] if option["meets_slo"]]
    assert by_policy[chosen]["meets_slo"]
    assert by_policy[chosen]["cold_start_rate"] <= 0.01
    assert by_policy[chosen]["monthly_usd"] == min(option["monthly_usd"] for option in meeting)


def test_a_p99_target_under_the_init_time_buys_warm_capacity_and_one_over_it_does_not(
    cost_explorer: dict[str, Any],
) -> None:
    answers = cost_explorer["p99"]
    tight, loose = (answers[ms] for ms in sorted(answers, key=float))
    (under,) = tight["functions"]
    (over,) = loose["functions"]
    assert under["recommendation"]["policy"] not in (None, "on-demand"), under["recommendation"]
    assert over["recommendation"]["policy"] == "on-demand", over["recommendation"]


@pytest.mark.skipif(
    not TRACES.exists() and not os.environ.get("CI"), reason="../shared/data/traces is absent"
)
def test_on_the_real_traces_sparse_functions_and_the_busy_one_stay_on_demand(
    cost_explorer: dict[str, Any],
) -> None:
    functions = cost_explorer["slice"]["functions"]
    assert len(functions) == 49
    sparse = [f for f in functions if f["requests"] <= 60 and f["peak_concurrency"] == 1]
    assert len(sparse) >= 30
    assert {f["recommendation"]["policy"] for f in sparse} == {"on-demand"}
    (busy,) = cost_explorer["day"]["functions"]
    # 20.8 million requests of a few ms: the request charge is most of the bill
    bill = busy["current"]["breakdown"]
    assert bill["requests_usd"] > busy["current"]["cost_usd"] / 2
    assert busy["recommendation"]["policy"] == "on-demand", busy["recommendation"]


def test_notebooks_are_committed_without_outputs() -> None:
    """Outputs belong to a run (this machine's timings, a temporary path), not to the source."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths
    for path in paths:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path.name


@pytest.fixture(scope="module")
def drift_alerting() -> dict[str, Any]:
    return execute(DRIFT_ALERTING, _DRIFT_PROBE)


def test_the_drift_notebook_reads_the_store_and_its_pulled_log_alike(
    drift_alerting: dict[str, Any],
) -> None:
    assert Path(drift_alerting["executable"]).resolve() == Path(sys.executable).resolve()
    assert drift_alerting["same_windows"]


def test_psi_and_jensen_shannon_by_hand_equal_compares(drift_alerting: dict[str, Any]) -> None:
    gaps = drift_alerting["gaps"]
    # every (hour, column) of compare() was computed by hand, and nothing more
    assert gaps["by_hand"] == gaps["compare"] == gaps["matched"] > 0
    assert gaps["psi"] <= 1e-9
    assert gaps["jensen_shannon"] <= 1e-9


def test_the_shipped_rules_alert_on_the_shifted_feature_only(
    drift_alerting: dict[str, Any],
) -> None:
    levels = drift_alerting["default_levels"]
    assert drift_alerting["shifted"] == "worst texture"
    assert levels["worst texture"] == "alert"
    untouched = drift_alerting["untouched"]
    assert untouched == ["mean radius", "mean texture", "worst smoothness"]
    assert {levels[name] for name in untouched} == {None}


def test_the_tuned_rule_catches_the_incident_without_a_false_alarm(
    drift_alerting: dict[str, Any],
) -> None:
    tuned = drift_alerting["tuned"]
    # judged by load_rules and judge on the rules file the notebook wrote
    assert tuned["before_shift"] == 0
    assert tuned["on_untouched"] == []
    assert tuned["detected"]
    assert 0 < tuned["delay_min"] <= 120
    assert tuned["warn"] <= tuned["alert"]


def test_obs_report_drift_exits_3_on_the_shifted_feature(drift_alerting: dict[str, Any]) -> None:
    assert drift_alerting["cli_exit"] == 3
    alerts = set(drift_alerting["cli_alerts"])
    assert "worst texture" in alerts
    assert not alerts & set(drift_alerting["untouched"])


def test_the_per_instance_alarm_is_tuned_with_a_margin_over_the_noise(
    drift_alerting: dict[str, Any],
) -> None:
    chosen = drift_alerting["instance_alarm"]
    assert chosen["false_alarms"] == 0
    assert chosen["threshold"] >= 2 * chosen["noise"]
    assert chosen["delay_min"] > 0


def test_the_alarm_definitions_hold_what_each_api_requires(drift_alerting: dict[str, Any]) -> None:
    alarms, chosen = drift_alerting["alarms"], drift_alerting["instance_alarm"]
    # CloudWatch Logs PutMetricFilter and CloudWatch PutMetricAlarm, as boto3 keyword arguments
    metric_filter = alarms["put_metric_filter"]
    assert {"logGroupName", "filterName", "filterPattern", "metricTransformations"} <= set(
        metric_filter
    )
    pattern = metric_filter["filterPattern"]
    assert pattern.startswith("{") and pattern.endswith("}")
    assert '$.event = "inferobs.drift_window"' in pattern
    assert f"$.observations >= {chosen['min_observations']}" in pattern
    (transformation,) = metric_filter["metricTransformations"]
    assert {"metricName", "metricNamespace", "metricValue"} <= set(transformation)
    assert transformation["metricValue"].startswith("$.instance_psi.")
    assert "worst texture" in transformation["metricValue"]
    assert alarms["test_metric_filter"]["filterPattern"] == pattern
    alarm = alarms["put_metric_alarm"]
    required = {"AlarmName", "Namespace", "MetricName", "Statistic", "Period"}
    assert required | {"EvaluationPeriods", "Threshold", "ComparisonOperator"} <= set(alarm)
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["metricNamespace"],
        transformation["metricName"],
    )
    assert [d["Name"] for d in alarm["Dimensions"]] == list(transformation["dimensions"])
    assert alarm["Threshold"] == chosen["threshold"]
    # Cloud Logging logs-based metric and Cloud Monitoring alert policy
    log_metric, policy = alarms["log_metric"], alarms["alert_policy"]
    assert log_metric["valueExtractor"] == 'EXTRACT(jsonPayload.instance_psi."worst texture")'
    assert log_metric["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert chosen["threshold"] in log_metric["bucketOptions"]["explicitBuckets"]["bounds"]
    (condition,) = policy["conditions"]
    threshold = condition["conditionThreshold"]
    assert f'"logging.googleapis.com/user/{log_metric["name"]}"' in threshold["filter"]
    assert threshold["thresholdValue"] == chosen["threshold"]
    # Azure Monitor scheduled query rule (a log search alert)
    rule = alarms["scheduled_query_rule"]
    assert rule["kind"] == "LogAlert"
    properties = rule["properties"]
    assert {"severity", "enabled", "scopes", "evaluationFrequency", "windowSize"} <= set(properties)
    (criterion,) = properties["criteria"]["allOf"]
    assert f"{criterion['metricMeasureColumn']} = " in criterion["query"]
    assert criterion["threshold"] == chosen["threshold"]
