"""Drift counting in the handler: `obs.observe_*`, window records, and what a user relies on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inferobs as obs
from inferobs.drift.baseline import Baseline, Categorical, Numeric
from inferobs.drift.counting import DRIFT_EVENT
from inferobs.drift.monitor import instance_psi
from inferobs.drift.statistics import psi
from inferobs.record import Invocation

from .helpers import Context, ManualClock
from .test_drift_counting import anything

RNG = np.random.default_rng(3)


class Sink:
    """An exporter that keeps invocations and drift windows apart."""

    def __init__(self) -> None:
        self.records: list[Invocation] = []
        self.windows: list[dict[str, Any]] = []

    def export(self, record: Invocation) -> None:
        self.records.append(record)

    def export_window(self, window: dict[str, Any]) -> None:
        self.windows.append(window)


def build_baseline(path: Path, *, classes: bool = False) -> Path:
    n = 5000
    prediction = (
        RNG.dirichlet([1, 1, 1], n) if classes else RNG.choice(["cat", "dog"], n, p=[0.7, 0.3])
    )
    built = Baseline.from_frame(
        {
            "p": list(prediction) if classes else prediction,
            "age": RNG.normal(40, 10, n),
            "country": RNG.choice(["de", "fr"], n),
        },
        prediction="p",
        features=["age", "country"],
        bins=5,
        classes=["a", "b", "c"] if classes else None,
    )
    target = path / "baseline.json"
    built.save(str(target))
    return target


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return build_baseline(tmp_path)


def test_counts_leave_as_window_records_and_each_invocation_says_how_many_it_made(
    baseline: Path,
) -> None:
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_every_invocation=True)

    @obs.instrument(model="pets", model_version="3", variant="B")
    def handler(event: Any, context: Any) -> str:
        obs.observe_features({"age": event["age"], "country": event["country"]})
        obs.observe_prediction("dog")
        return "dog"

    for n in range(4):
        assert handler({"age": 30 + n, "country": "de"}, Context(f"r{n}")) == "dog"
    assert [r.drift_observations for r in sink.records] == [2, 2, 2, 2]
    total = {"observations": 0}
    for window in sink.windows:
        assert window["event"] == DRIFT_EVENT
        assert (window["model"], window["model_version"], window["variant"]) == ("pets", "3", "B")
        assert window["instance_id"] == sink.records[0].instance_id
        assert window["window_start"] % (300 * 10**9) == 0  # aligned to the clock
        total["observations"] += window["observations"]
    assert total["observations"] == 8  # every observation made reached a window
    dogs = sum(w["prediction"]["p"][1] for w in sink.windows)  # categories sorted: cat, dog
    assert dogs == 4
    assert all(json.loads(json.dumps(w)) == w for w in sink.windows)  # plain JSON data


def test_a_window_leaves_once_the_clock_has_moved_past_it(baseline: Path) -> None:
    clock = ManualClock(wall=1_000_000 * 10**9)
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_window="1m")

    @obs.instrument(runtime=obs.Runtime(environ={}, clock=clock))
    def handler(event: Any, context: Any) -> None:
        obs.observe_prediction(["cat", "cat", "dog"])  # a batch: every row counts

    handler({}, None)
    handler({}, None)
    assert sink.windows == []  # the minute is still open
    clock.advance(60_000)
    handler({}, None)
    (window,) = sink.windows
    assert window["observations"] == 6
    assert window["window_end"] - window["window_start"] == 60 * 10**9
    assert window["prediction"]["p"][:2] == [4, 2]


def test_arms_of_an_ab_test_count_apart(baseline: Path) -> None:
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_every_invocation=True)

    @obs.instrument(model="pets")
    def handler(event: Any, context: Any) -> None:
        obs.set_model(variant=event)
        obs.observe_prediction("cat" if event == "A" else "dog")

    for arm in "ABAB":
        handler(arm, None)
    by_arm: dict[str, list[int]] = {}
    for window in sink.windows:
        counts = by_arm.setdefault(window["variant"], [0, 0])
        counts[0] += window["prediction"]["p"][0]
        counts[1] += window["prediction"]["p"][1]
    assert by_arm == {"A": [2, 0], "B": [0, 2]}


def test_a_class_probability_baseline_reads_a_2d_batch_as_vectors(tmp_path: Path) -> None:
    sink = Sink()
    path = build_baseline(tmp_path, classes=True)
    obs.configure(exporters=[sink], baseline=str(path), drift_every_invocation=True)

    @obs.instrument
    def handler(event: Any, context: Any) -> None:
        obs.observe_prediction(np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]]))
        obs.observe_prediction(np.array([0.1, 0.8, 0.1]))  # one vector
        obs.observe_prediction(np.array([0.5, 0.5]))  # the wrong length: counted as invalid

    handler({}, None)
    (window,) = sink.windows
    counts = window["prediction"]["p"]
    assert counts["label"][:3] == [1, 2, 1]
    assert counts["invalid"] == 1
    assert sink.records[0].drift_observations == 5


def test_without_a_baseline_or_outside_a_handler_nothing_happens(
    capsys: pytest.CaptureFixture[str], baseline: Path
) -> None:
    obs.observe_prediction(1.0)  # no handler at all
    sink = Sink()
    obs.configure(exporters=[sink])

    @obs.instrument
    def handler(event: Any, context: Any) -> int:
        obs.observe_prediction("cat")
        return 1

    assert handler({}, None) == 1
    assert sink.windows == [] and "drift_observations" not in sink.records[0]
    assert capsys.readouterr().err == ""  # no baseline configured is no fault


def test_a_bad_baseline_is_refused_at_configure_naming_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    data = json.loads(build_baseline(tmp_path).read_text())
    data["features"]["age"]["edges"] = [3.0, 1.0, 2.0, 4.0]
    broken.write_text(json.dumps(data))
    with pytest.raises(obs.ConfigError, match=r"baseline: .*features\.age\.edges: not increasing"):
        obs.configure(baseline=str(broken))
    with pytest.raises(obs.ConfigError, match="drift_window"):
        obs.configure(drift_window="5 minutes")


def test_a_bad_baseline_from_the_environment_is_a_fault_and_the_handler_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFEROBS_BASELINE", str(tmp_path / "missing.json"))
    monkeypatch.setenv("INFEROBS_EXPORTERS", "stdout")

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        obs.observe_prediction("cat")
        obs.observe_features({"age": 3})
        return "still here"

    assert handler({}, None) == "still here"
    assert handler({}, None) == "still here"
    err = capsys.readouterr().err
    faults = [json.loads(line) for line in err.splitlines() if "inferobs.fault" in line]
    assert [f["kind"] for f in faults] == ["drift_baseline"]  # said once
    assert "missing.json: cannot be read" in faults[0]["message"]


class Hostile:
    """An object that fails whatever is asked of it."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("no")

    def __iter__(self) -> Any:
        raise RuntimeError("no")

    def __float__(self) -> float:
        raise RuntimeError("no")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prediction=anything | st.just(Hostile()), features=anything | st.just(Hostile()))
def test_nothing_given_to_observe_reaches_the_handler_as_an_exception(
    tmp_path_factory: pytest.TempPathFactory, prediction: Any, features: Any
) -> None:
    sink = Sink()
    path = build_baseline(tmp_path_factory.mktemp("b"))
    obs.configure(exporters=[sink], baseline=str(path), drift_every_invocation=True)

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        obs.observe_prediction(prediction)
        obs.observe_features(features)
        return "ok"

    assert handler({}, None) == "ok"
    assert sink.records[-1].status == "ok"


def test_threads_of_one_process_deliver_every_observation_once(baseline: Path) -> None:
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_window="1s")

    @obs.instrument
    def handler(event: Any, context: Any) -> None:
        for _ in range(20):
            obs.observe_prediction("cat")

    def work() -> None:
        for _ in range(50):
            handler({}, None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    from inferobs.context import drift

    assert drift.monitor is not None
    drift.monitor.flush()
    made = sum(r.drift_observations for r in sink.records)
    assert made == 4 * 50 * 20
    assert sum(w["observations"] for w in sink.windows) == made
    assert sum(w["prediction"]["p"][0] for w in sink.windows) == made


def test_the_instance_local_psi_is_the_analyzers_psi_of_one_window(baseline: Path) -> None:
    built = Baseline.load(str(baseline))
    window = {
        "prediction": {"p": [30, 10, 0, 1]},
        "features": {"age": [5, 0, 9, 1, 2, 0, 0], "country": [4, 4, 2, 0]},
    }
    local = instance_psi(built, window)
    label, age = built.prediction[1], built.features["age"]
    assert isinstance(label, Categorical) and isinstance(age, Numeric)
    assert local["p"] == pytest.approx(psi(label.proportions, [30, 10, 0]), abs=1e-6)
    assert local["age"] == pytest.approx(psi(age.proportions, [5, 0, 9, 1, 2]), abs=1e-6)


def printed_windows(code: str, baseline: Path) -> list[dict[str, Any]]:
    """The drift windows a Python script (given the baseline's path) printed, once it ended."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(baseline)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if DRIFT_EVENT in line]


HANDLER = """
import sys, time
import inferobs as obs

obs.configure(baseline=sys.argv[1], drift_window="1h", exporters=["stdout"])

@obs.instrument
def handler(event, context):
    obs.observe_prediction("cat")
    obs.observe_features({"age": 41.0, "country": "fr"})

handler({}, None)
print("ready", flush=True)
time.sleep(60)
"""


def test_sigterm_flushes_the_open_window_then_ends_the_process(baseline: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HANDLER), str(baseline)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ready"):
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM  # it still ends as SIGTERM ends it
    windows = [json.loads(line) for line in rest.splitlines() if DRIFT_EVENT in line]
    assert len(windows) == 1 and windows[0]["observations"] == 2


def test_a_normal_exit_flushes_the_open_window(baseline: Path) -> None:
    code = HANDLER.replace("time.sleep(60)", "")
    windows = printed_windows(code, baseline)
    assert [w["observations"] for w in windows] == [2]


def test_windows_that_only_look_alike_all_count_and_a_copy_counts_once(
    baseline: Path, tmp_path: Path
) -> None:
    """Two replicas whose processes share a pid (PID 1 in containers), and parts of one
    window in rotated log files, are different windows; the same line twice is one."""
    from inferobs.analyze.frames import read_frames

    built = Baseline.load(str(baseline))
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_every_invocation=True)
    runtime = obs.Runtime(environ={"AWS_LAMBDA_LOG_STREAM_NAME": "same"}, clock=ManualClock())

    @obs.instrument(runtime=runtime)
    def handler(event: Any, context: Any) -> None:
        obs.observe_prediction("cat")

    for _ in range(4):
        handler({}, None)
    lines = [json.dumps(w) for w in sink.windows]
    assert len({w["window_id"] for w in sink.windows}) == 4  # one id per emission
    first, second = tmp_path / "app.log.1", tmp_path / "app.log"
    first.write_text("\n".join(lines[:2]) + "\n")
    second.write_text("\n".join(lines[2:]) + "\n" + lines[3] + "\n")  # and one line twice
    frames = read_frames([str(first), str(second)], baseline=built)
    assert frames.windows is not None and len(frames.windows) == 4
    assert int(frames.windows.observations.sum()) == 4


FORKED = """
import os, sys, json
import inferobs as obs

obs.configure(baseline=sys.argv[1], drift_window="1h", exporters=["stdout"])

@obs.instrument
def handler(event, context):
    obs.observe_prediction("cat")

for _ in range(10):
    handler({}, None)
sys.stdout.flush()
child = os.fork()
if child == 0:
    handler({}, None)
    sys.stdout.flush()
    sys.exit(0)
os.waitpid(child, 0)
"""


def test_a_forked_child_counts_only_what_it_saw(baseline: Path) -> None:
    windows = printed_windows(FORKED, baseline)
    assert sorted(w["observations"] for w in windows) == [1, 10]  # not 11 and 10


POOL = """
import sys
from multiprocessing import get_context
import inferobs as obs

obs.configure(baseline=sys.argv[1], drift_window="1h", exporters=["stdout"])

@obs.instrument
def handler(event, context):
    obs.observe_prediction("cat")
    return event

if __name__ == "__main__":
    with get_context("fork").Pool(2) as pool:
        pool.starmap(handler, [({}, None)] * 40, chunksize=5)
"""


def test_pool_workers_deliver_their_windows(baseline: Path) -> None:
    windows = printed_windows(POOL, baseline)
    assert sum(w["observations"] for w in windows) == 40


SIGTERM_MID_COUNT = """
import os, signal, sys, threading
import numpy as np
import inferobs as obs

obs.configure(baseline=sys.argv[1], drift_window="1h", exporters=["stdout"])
values = np.full(200_000, 40.0)

@obs.instrument
def handler(event, context):
    obs.observe_features({"age": 40.0, "country": "de"})
    for _ in range(1000):
        obs.observe_features([{"age": v} for v in values[:2000].tolist()])

threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
handler({}, None)
"""


def test_sigterm_in_the_middle_of_counting_still_ends_the_process(baseline: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SIGTERM_MID_COUNT), str(baseline)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == -signal.SIGTERM


def test_arms_seen_once_are_not_held_forever(baseline: Path) -> None:
    from inferobs.context import drift

    clock = ManualClock()
    obs.configure(exporters=[Sink()], baseline=str(baseline), drift_window="1m")

    @obs.instrument(runtime=obs.Runtime(environ={}, clock=clock))
    def handler(event: Any, context: Any) -> None:
        obs.set_model(variant=event)
        obs.observe_prediction("cat")

    for n in range(500):
        handler(f"user-{n}", None)
        clock.advance(1000)
    assert drift.monitor is not None
    assert len(drift.monitor._arms) <= 61  # the arms of the last minute, at most


def test_what_is_observed_after_set_model_counts_for_the_arm_it_names(baseline: Path) -> None:
    sink = Sink()
    obs.configure(exporters=[sink], baseline=str(baseline), drift_every_invocation=True)

    @obs.instrument(model="pets", variant="A")
    def handler(event: Any, context: Any) -> None:
        obs.observe_prediction("cat")
        obs.set_model(variant="shadow")  # the handler routes to another model
        obs.observe_prediction(["dog", "dog"])

    handler({}, None)
    arms = {w["variant"]: w["prediction"]["p"][:2] for w in sink.windows}
    assert arms == {"A": [1, 0], "shadow": [0, 2]}
