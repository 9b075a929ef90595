"""`obs report --drift` as a user runs it: from a store and a saved log, every format, exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from inferobs.cli import main
from inferobs.drift.baseline import Baseline
from inferobs.exit_codes import ExitCode

SERVE = """
import sys
import numpy as np
import inferobs as obs

store, baseline, shift = sys.argv[1], sys.argv[2], float(sys.argv[3])
obs.configure(
    exporters=["stdout", "store"], store_path=store, baseline=baseline,
    drift_every_invocation=True,
)
rng = np.random.default_rng(5)

@obs.instrument(model="scorer")
def handler(event, context):
    x = rng.normal(0.0, 1.0, (50, 2))
    x[:, 0] += event["mean"]  # only the first feature moves
    obs.observe_features(x)  # a batch, in the baseline's feature order
    obs.observe_prediction((x[:, 0] > 0).astype(int).astype(str))
    return "ok"

class Context:
    def __init__(self, n):
        self.aws_request_id = f"req-{n}"

for n in range(40):
    handler({"mean": shift}, Context(n))
"""


def serve(tmp_path: Path, baseline: Path, shift: float) -> tuple[Path, Path]:
    """A process that counts 2,000 rows against the baseline; its store and its stdout log."""
    store, log = tmp_path / "store", tmp_path / "stdout.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SERVE), str(store), str(baseline), str(shift)],
            stdout=out,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("INFEROBS_")},
        )
    return store, log


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (20_000, 2))
    path = tmp_path / "baseline.json"
    Baseline.from_frame(
        {"label": (x[:, 0] > 0).astype(int).astype(str), "a": x[:, 0], "b": x[:, 1]},
        prediction="label",
        features=["a", "b"],
    ).save(str(path))
    return path


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["report", *args])


def test_a_shift_alerts_and_exits_3_reading_the_store_and_its_log_once(
    tmp_path: Path, baseline: Path
) -> None:
    store, log = serve(tmp_path, baseline, shift=1.0)
    args = ["--drift", "--baseline", str(baseline), "--format", "json"]
    result = run(*args, "--source", str(store), "--source", str(log))
    assert result.exit_code == ExitCode.ALERT  # type: ignore[attr-defined]
    answer = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert answer["schema"] == "inferobs.drift/1"
    alerted = {f["subject"] for f in answer["findings"] if f["level"] == "alert"}
    assert alerted == {"a", "label"}  # b never moved
    (group,) = answer["groups"]
    (a,) = [c for c in group["columns"] if c["column"] == "a"]
    assert a["observations"] == 2000  # the store and its log hold the same windows: once
    assert answer["coverage"]["share"] == 1.0  # every window was delivered
    assert "1 alert" in result.stderr or "alert finding" in result.stderr  # type: ignore[attr-defined]


def test_no_shift_no_alert_and_every_format_says_so(tmp_path: Path, baseline: Path) -> None:
    store, _ = serve(tmp_path, baseline, shift=0.0)
    base = ["--drift", "--source", str(store), "--baseline", str(baseline)]
    answer = json.loads(run(*base, "--format", "json").stdout)  # type: ignore[attr-defined]
    assert answer["findings"] == [] and answer["alert"] is False
    table = run(*base)
    assert table.exit_code == 0  # type: ignore[attr-defined]
    assert "No rule fired." in table.stdout  # type: ignore[attr-defined]
    markdown = run(*base, "--format", "markdown").stdout  # type: ignore[attr-defined]
    assert "## Drift per 1h" in markdown and "| label |" in markdown.replace("  ", " ")
    page = run(*base, "--format", "html").stdout  # type: ignore[attr-defined]
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_the_baseline_is_found_beside_the_store_or_from_the_environment(
    tmp_path: Path, baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = serve(tmp_path, baseline, shift=0.0)
    result = run("--drift", "--source", str(store))
    assert result.exit_code == ExitCode.ERROR  # type: ignore[attr-defined]
    assert "--drift needs the baseline" in result.output  # type: ignore[attr-defined]
    monkeypatch.setenv("INFEROBS_BASELINE", str(baseline))
    assert run("--drift", "--source", str(store)).exit_code == 0  # type: ignore[attr-defined]
    monkeypatch.delenv("INFEROBS_BASELINE")
    (store / "baseline.json").write_bytes(baseline.read_bytes())
    assert run("--drift", "--source", str(store)).exit_code == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift", "--baseline", "BASELINE", "--window", "5 minutes"], "--window"),
        (["--baseline", "BASELINE"], "--baseline goes with --drift"),
        (["--window", "2h"], "--window goes with --drift"),
        (["--drift", "--costs", "--baseline", "BASELINE"], "separate reports"),
        (["--drift", "--baseline", "BASELINE", "--rules", "missing.toml"], "missing.toml"),
    ],
)
def test_bad_drift_options_are_named(
    tmp_path: Path, baseline: Path, args: list[str], message: str
) -> None:
    given = [str(baseline) if arg == "BASELINE" else arg for arg in args]
    result = run("--source", str(tmp_path), *given)
    assert result.exit_code == ExitCode.ERROR  # type: ignore[attr-defined]
    assert message in result.output  # type: ignore[attr-defined]


def test_a_broken_baseline_is_named_with_its_field(tmp_path: Path, baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    data["features"]["a"]["proportions"] = [0.5]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    result = run("--drift", "--source", str(tmp_path), "--baseline", str(broken))
    assert result.exit_code == ExitCode.ERROR  # type: ignore[attr-defined]
    assert "features.a" in result.output  # type: ignore[attr-defined]


def test_plain_report_judges_the_operations_rules_and_exits_3_on_an_alert(
    tmp_path: Path,
) -> None:
    from inferobs.record import Invocation

    start = 1_796_000_400 * 10**9  # on a 15-minute boundary
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        "".join(
            Invocation(
                id=f"r{n}",
                start=start + n * 10**9,
                duration_ms=20.0,
                status="error" if n % 10 == 0 else "ok",
                error_type="ValueError" if n % 10 == 0 else None,
                function="api",
            ).to_json()
            + "\n"
            for n in range(200)
        )
    )
    result = run("--source", str(lines), "--format", "json")
    assert result.exit_code == ExitCode.ALERT  # type: ignore[attr-defined]
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    (fired,) = report["alert rules that fired"]
    assert (fired["rule"], fired["level"], fired["subject"]) == ("errors", "alert", "api")
    assert fired["value"] == pytest.approx(0.1) and fired["samples"] == 200
    calm = tmp_path / "calm.toml"
    calm.write_text('[[rule]]\nmetric = "error_rate"\nalert = 0.5\nwindow = "15m"\n')
    assert run("--source", str(lines), "--rules", str(calm)).exit_code == 0  # type: ignore[attr-defined]


def test_many_rules_fired_still_give_one_json_document(tmp_path: Path) -> None:
    from inferobs.record import Invocation

    start = 1_796_000_400 * 10**9
    lines = tmp_path / "lines.jsonl"
    with lines.open("w") as out:
        for function in range(35):
            for n in range(100):
                out.write(
                    Invocation(
                        id=f"{function}-{n}",
                        start=start + n * 10**9,
                        duration_ms=5.0,
                        status="error",
                        error_type="KeyError",
                        function=f"fn-{function}",
                    ).to_json()
                    + "\n"
                )
    result = run("--source", str(lines), "--format", "json")
    assert result.exit_code == ExitCode.ALERT  # type: ignore[attr-defined]
    fired = json.loads(result.stdout)["alert rules that fired"]  # type: ignore[attr-defined]
    assert len(fired) == 35  # every finding, though the table shows 30


def test_a_baseline_nested_too_deeply_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    result = run("--drift", "--source", str(tmp_path), "--baseline", str(deep))
    assert result.exit_code == ExitCode.ERROR  # type: ignore[attr-defined]
    assert "nested too deeply" in result.output  # type: ignore[attr-defined]


def test_windows_of_another_baseline_give_no_coverage_figure(
    tmp_path: Path, baseline: Path
) -> None:
    store, _ = serve(tmp_path, baseline, shift=0.0)
    other = tmp_path / "other.json"
    Baseline.from_frame({"label": ["x", "y"] * 50}, prediction="label").save(str(other))
    result = run("--drift", "--source", str(store), "--baseline", str(other), "--format", "json")
    answer = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert answer["windows"] == 0 and answer["other_baseline_windows"] > 0
    assert answer["coverage"] is None  # not 0 %: those observations went to another baseline
