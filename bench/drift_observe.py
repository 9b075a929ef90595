"""Counting one invocation's drift observations, against whylogs profiling the same row.

    .venv/bin/python bench/drift_observe.py [--rounds 5] [--calls 20000]

One invocation = a 10-class probability vector (`observe_prediction`) and 20
numeric features (`observe_features`), counted into a baseline's 10 bins
each. whylogs (installed into bench/.venv-drift) tracks the same 30 values
into a kept `DatasetProfile`, and, for the one-off form, profiles a one-row
DataFrame with `why.log`. Each side runs in fresh processes, interleaved in
random order each round; the figures are medians of per-call times (batches
of ``--calls``), in microseconds.
"""

from __future__ import annotations

import argparse
import os
import random
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

OURS = (
    ROW
    + """
import sys, time
import numpy as np
from inferobs.drift.baseline import Baseline
from inferobs.drift.counting import DriftWindows
rng = np.random.default_rng(0)
columns = {f"f{i}": rng.normal(size=5000) for i in range(20)}
columns["p"] = list(rng.dirichlet([1] * 10, 5000))
baseline = Baseline.from_frame(columns, prediction="p", features=list(features), bins=10)
windows = DriftWindows(baseline, 300)
calls = int(sys.argv[1])
for _ in range(1000):
    windows.observe_prediction(vector); windows.observe_features(features)
start = time.perf_counter()
for _ in range(calls):
    windows.observe_prediction(vector); windows.observe_features(features)
print((time.perf_counter() - start) / calls * 1e6)
"""
)

WHYLOGS_KEPT = (
    ROW
    + """
import sys, time
from whylogs.core import DatasetProfile
row = {**features, **{f"p{k}": v for k, v in enumerate(vector)}}
profile = DatasetProfile()
calls = int(sys.argv[1]) // 10
for _ in range(100):
    profile.track(row=row)
start = time.perf_counter()
for _ in range(calls):
    profile.track(row=row)
print((time.perf_counter() - start) / calls * 1e6)
"""
)

WHYLOGS_ONE_OFF = (
    ROW
    + """
import sys, time
import pandas as pd
import whylogs as why
frame = pd.DataFrame([{**features, **{f"p{k}": v for k, v in enumerate(vector)}}])
calls = max(20, int(sys.argv[1]) // 1000)
for _ in range(5):
    why.log(frame)
start = time.perf_counter()
for _ in range(calls):
    why.log(frame)
print((time.perf_counter() - start) / calls * 1e6)
"""
)


def whylogs_python() -> str:
    exe = os.path.join(ENV_DIR, "bin", "python")
    if not os.path.exists(os.path.join(ENV_DIR, ".ready")):
        venv.create(ENV_DIR, with_pip=True)
        subprocess.run([exe, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
        open(os.path.join(ENV_DIR, ".ready"), "w").close()
    return exe


def run(python: str, code: str, calls: int) -> float:
    done = subprocess.run(
        [python, "-c", code, str(calls)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), "WHYLOGS_NO_ANALYTICS": "True"},
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    sides = {
        "inferobs (observe_prediction + observe_features)": (sys.executable, OURS),
        "whylogs DatasetProfile.track (kept profile)": (whylogs_python(), WHYLOGS_KEPT),
        "whylogs why.log (one-row DataFrame)": (whylogs_python(), WHYLOGS_ONE_OFF),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name in random.sample(list(sides), len(sides)):
            python, code = sides[name]
            times[name].append(run(python, code, args.calls))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    print("| per invocation | median µs |")
    print("|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):,.1f} |")


if __name__ == "__main__":
    main()
