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
