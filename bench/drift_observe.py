"""Counting one invocation's drift observations, against whylogs profiling the same row.

    .venv/bin/python bench/drift_observe.py [--rounds 5] [--calls 20000] [--instructions]

One invocation's observations = a 10-class probability vector
(`observe_prediction`) and 20 numeric features (`observe_features`), counted
into a baseline's 10 bins each.

The headline is the public path: the extra time an instrumented invocation
takes when its handler calls ``inferobs.observe_prediction`` and
``inferobs.observe_features`` (the context lookup, the monitor's lock and model
arm, the row's conversion and the counting), against the same instrumented
handler that observes nothing, with ``configure(baseline=..., drift_window="5m")``
and one exporter that does nothing, so that counting is measured and not I/O.
Once as plain Python (a list and a dict of floats), once as numpy (a 1-D
vector and a 1-D row). The handlers run in batches, in random order, and the
figure is the median of the per-batch differences per invocation. Next to it,
`DriftWindows` called directly: the counting alone.

whylogs (installed into bench/.venv-drift) tracks the same 30 values into a
kept `DatasetProfile`, and, for the one-off form, profiles a one-row
DataFrame with `why.log`. Each side runs in fresh processes, interleaved in
random order each round; the table gives the medians over the rounds, in
microseconds. ``--instructions`` also counts, with callgrind, the CPU
instructions an observing invocation executes beyond a plain one: a figure
that does not move with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV_DIR = os.path.join(HERE, ".venv-drift")
PACKAGES = ["whylogs==1.6.4", "pandas", "numpy"]

ROW = """
import random
random.seed(1)
features = {f"f{i}": random.gauss(0, 1) for i in range(20)}
weights = [random.random() for _ in range(10)]
vector = [w / sum(weights) for w in weights]
"""

BASELINE = """
import numpy as np
from inferobs.drift.baseline import Baseline
rng = np.random.default_rng(0)
columns = {f"f{i}": rng.normal(size=5000) for i in range(20)}
columns["p"] = list(rng.dirichlet([1] * 10, 5000))
baseline = Baseline.from_frame(columns, prediction="p", features=list(features), bins=10)
vector_np, row_np = np.array(vector), np.array(list(features.values()))
"""

# argv: "time" CALLS, or "calls" HANDLER N (N calls after warm-up, for callgrind)
PUBLIC = (
    ROW
    + BASELINE
    + """
import json, os, statistics, sys, tempfile, time
import inferobs as obs

class Discard:
    "Takes invocations and drift windows and keeps nothing: no I/O is measured."
    def export(self, record): pass
    def export_window(self, window): pass

folder = tempfile.mkdtemp()
path = os.path.join(folder, "baseline.json")
baseline.save(path)
obs.configure(baseline=path, drift_window="5m", exporters=[Discard()])

@obs.instrument(model="bench")
def plain(event, context):
    return None

@obs.instrument(model="bench")
def lists(event, context):
    obs.observe_prediction(vector)
    obs.observe_features(features)

@obs.instrument(model="bench")
def arrays(event, context):
    obs.observe_prediction(vector_np)
    obs.observe_features(row_np)

handlers = {"plain": plain, "lists": lists, "numpy": arrays}
for handler in handlers.values():
    for _ in range(1000):
        handler({}, None)
if sys.argv[1] == "calls":
    handler = handlers[sys.argv[2]]
    for _ in range(int(sys.argv[3])):
        handler({}, None)
    sys.exit()

batch = 200
per_call = {name: [] for name in handlers}
for _ in range(max(1, int(sys.argv[2]) // batch)):
    for name in random.sample(list(handlers), len(handlers)):
        handler = handlers[name]
        start = time.perf_counter()
        for _ in range(batch):
            handler({}, None)
        per_call[name].append((time.perf_counter() - start) / batch * 1e6)
plain_us = per_call.pop("plain")
out = {"plain": statistics.median(plain_us)}
for name, times in per_call.items():
    out[name] = statistics.median(t - p for t, p in zip(times, plain_us))
print(json.dumps(out))
"""
)

DIRECT = (
    ROW
    + BASELINE
    + """
import json, sys, time
from inferobs.drift.counting import DriftWindows
windows = DriftWindows(baseline, 300)
calls = int(sys.argv[2])
out = {}
for name, (prediction, row) in {"lists": (vector, features), "numpy": (vector_np, row_np)}.items():
    for _ in range(1000):
        windows.observe_prediction(prediction); windows.observe_features(row)
    start = time.perf_counter()
    for _ in range(calls):
        windows.observe_prediction(prediction); windows.observe_features(row)
    out[name] = (time.perf_counter() - start) / calls * 1e6
print(json.dumps(out))
"""
)

WHYLOGS_KEPT = (
    ROW
    + """
import json, sys, time
from whylogs.core import DatasetProfile
row = {**features, **{f"p{k}": v for k, v in enumerate(vector)}}
profile = DatasetProfile()
calls = int(sys.argv[2]) // 10
for _ in range(100):
    profile.track(row=row)
start = time.perf_counter()
for _ in range(calls):
    profile.track(row=row)
print(json.dumps({"kept": (time.perf_counter() - start) / calls * 1e6}))
"""
)

WHYLOGS_ONE_OFF = (
    ROW
    + """
import json, sys, time
import pandas as pd
import whylogs as why
frame = pd.DataFrame([{**features, **{f"p{k}": v for k, v in enumerate(vector)}}])
calls = max(20, int(sys.argv[2]) // 1000)
for _ in range(5):
    why.log(frame)
start = time.perf_counter()
for _ in range(calls):
    why.log(frame)
print(json.dumps({"one-off": (time.perf_counter() - start) / calls * 1e6}))
"""
)

CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
ROWS = {  # (side, figure): the table's line
    ("public", "lists"): "inferobs public path: observe_prediction(list) + observe_features(dict)",
    ("public", "numpy"): "inferobs public path: observe_prediction(1-D array) + "
    "observe_features(1-D array)",
    ("direct", "lists"): "inferobs DriftWindows directly (the counting alone): list + dict",
    ("direct", "numpy"): "inferobs DriftWindows directly (the counting alone): 1-D arrays",
    ("whylogs kept", "kept"): "whylogs DatasetProfile.track (kept profile)",
    ("whylogs one-off", "one-off"): "whylogs why.log (one-row DataFrame)",
}


def whylogs_python() -> str:
    exe = os.path.join(ENV_DIR, "bin", "python")
    if not os.path.exists(os.path.join(ENV_DIR, ".ready")):
        venv.create(ENV_DIR, with_pip=True)
        subprocess.run([exe, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
        open(os.path.join(ENV_DIR, ".ready"), "w").close()
    return exe


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFEROBS_")}
    env.update(
        PYTHONPATH=os.path.join(ROOT, "src"),
        WHYLOGS_NO_ANALYTICS="True",
        # numpy's thread pool spinning would add noise (and instructions)
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        PYTHONHASHSEED="0",
    )
    return env


def run(python: str, code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [python, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env=environment(),
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def instructions(handler: str) -> int:
    """CPU instructions one invocation of ``handler`` executes, counted by callgrind: the
    difference between 2,200 and 200 calls, so that start-up cancels out."""

    def collected(calls: int) -> int:
        command = [*CALLGRIND, sys.executable, "-c", PUBLIC, "calls", handler, str(calls)]
        done = subprocess.run(
            command, check=False, env=environment(), capture_output=True, text=True
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode or found is None:
            raise SystemExit(f"callgrind failed: {done.stderr[-2000:]}")
        return int(found.group(1))

    return (collected(2200) - collected(200)) // 2000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args()
    sides = {
        "public": (sys.executable, PUBLIC),
        "direct": (sys.executable, DIRECT),
        "whylogs kept": (whylogs_python(), WHYLOGS_KEPT),
        "whylogs one-off": (whylogs_python(), WHYLOGS_ONE_OFF),
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for side in random.sample(list(sides), len(sides)):
            python, code = sides[side]
            for figure, value in run(python, code, "time", str(args.calls)).items():
                times.setdefault((side, figure), []).append(value)
    medians = {key: statistics.median(values) for key, values in times.items()}
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"plain instrumented invocation: {medians['public', 'plain']:,.1f} µs")
    print()
    print("| per invocation | median µs | whylogs kept profile / this |")
    print("|---|---|---|")
    kept = medians["whylogs kept", "kept"]
    for key, name in ROWS.items():
        ratio = "-" if key[0].startswith("whylogs") else f"{kept / medians[key]:,.0f}"
        print(f"| {name} | {medians[key]:,.1f} | {ratio} |")
    print()
    print(
        "rounds:", json.dumps({f"{s} {f}": [round(v, 1) for v in t] for (s, f), t in times.items()})
    )
    if args.instructions:
        plain = instructions("plain")
        print()
        print(f"| instructions per invocation (plain: {plain:,}) | beyond plain |")
        print("|---|---|")
        for handler in ("lists", "numpy"):
            print(f"| public path, {handler} | {instructions(handler) - plain:,} |")


if __name__ == "__main__":
    main()
