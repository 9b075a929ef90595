"""Alert rules: read from TOML, judged on drift periods and on operations per window alike."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from inferobs.analyze.figures import by_window
from inferobs.analyze.frames import read_frames
from inferobs.analyze.rules import RuleError, judge, load_rules
from inferobs.drift.compare import ColumnDrift, Period
from inferobs.export.lines import encode
from inferobs.record import Invocation

HOUR = 3600.0


def period(psi: float, observations: int, column: str = "x") -> Period:
    return Period(
        ("f", "m", None, None),
        0,
        int(HOUR * 1e9),
        4,
        [ColumnDrift(column, observations, 0, 0, psi=psi, jensen_shannon=0.01)],
    )


def test_the_shipped_rules_warn_and_alert_on_effect_size_with_enough_samples() -> None:
    rules = load_rules()
    assert {r.metric for r in rules} >= {"psi", "jensen_shannon", "p99_ms", "error_rate"}
    findings = judge(rules, drift={HOUR: [period(0.3, 10_000), period(0.15, 10_000, "y")]})
    levels = {(f.subject, f.metric): f.level for f in findings}
    assert levels == {("x", "psi"): "alert", ("y", "psi"): "warn"}
    # the same shift over too few samples fires nothing
    assert judge(rules, drift={HOUR: [period(0.9, 50)]}) == []


def test_operations_rules_fire_on_windows_of_records(tmp_path: Path) -> None:
    rng = random.Random(1)
    lines = []
    for n in range(400):
        late = n >= 200  # the second quarter hour: slow and failing
        lines.append(
            encode(
                Invocation(
                    id=f"r{n}",
                    start=1_764_000_000 * 10**9 + n * 4_500_000_000,
                    duration_ms=rng.uniform(4000, 5000) if late else rng.uniform(10, 20),
                    status="error" if late and n % 10 == 0 else "ok",
                    function="f",
                )
            )
        )
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n")
    frames = read_frames([str(path)])
    windows = by_window(frames, 900)
    assert [w["requests"] for w in windows] == [200, 200]
    findings = judge(load_rules(), operations={900.0: windows})
    fired = {(f.metric, f.level, f.start_ns) for f in findings}
    second = windows[1]["start_ns"]
    assert fired == {("p99_ms", "alert", second), ("error_rate", "alert", second)}


def test_a_rules_file_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nname = "only the prediction"\nmetric = "ks"\ncolumns = ["prediction"]\n'
        'alert = 0.2\nwindow = "30m"\nmin_samples = 10\n'
    )
    (rule,) = load_rules(str(path))
    assert rule.window_s == 1800 and rule.warn is None
    drift = {1800.0: [period(0.0, 100, "prediction"), period(0.0, 100, "x")]}
    drift[1800.0][0].columns[0].ks = 0.3
    drift[1800.0][1].columns[0].ks = 0.3
    assert [f.subject for f in judge([rule], drift=drift)] == ["prediction"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nmetric = "p-value"\nalert = 0.05\n', "metric='p-value'"),
        ('[[rule]]\nmetric = "psi"\n', "alert: every rule needs"),
        ('[[rule]]\nmetric = "psi"\nwarn = 0.5\nalert = 0.2\n', "warn=0.5 is above alert=0.2"),
        ('[[rule]]\nmetric = "psi"\nalert = 0.2\nwindow = "forever"\n', "window:"),
        ('[[rule]]\nmetric = "psi"\nalert = 0.2\nmin_samples = -1\n', "min_samples=-1"),
        ("title = 'no rules'\n", "expected [[rule]] tables"),
        ("[[rule\n", "not a TOML file"),
    ],
)
def test_a_bad_rules_file_is_named_with_its_rule(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_rules(str(path))
