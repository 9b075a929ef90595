"""`obs report --drift` over a month of drift windows: its time and peak memory, and how they scale.

    .venv/bin/python bench/drift_report.py [--days 30] [--instances 20] [--rounds 3]
                                           [--prediction classes|numeric] [--periods 1h 5m]

The store: 30 days of 5-minute windows from 20 instances (each instance one
window every 5 minutes: 172,800 windows), against a baseline of 20 numeric
features in 10 bins each and a 10-class probability vector (``--prediction
numeric``: one number in 10 bins). Each window counts a few hundred
invocations (Poisson, swinging with the hour of day), drawn from the
baseline's own proportions with a few missing values; in the last three days
three features shift towards their upper bins and the classes' prior moves,
so the report has findings to make. The window records are those the SDK
emits (model arm, instance, ``window_id``, ``instance_psi``), written straight
into the store's ``drift_windows`` table in one transaction, each row packed
by the store's own exporter code, after `connect` laid the store out.
Smaller stores (a quarter and half of the days; half the instances) are
copied out of the full one. All of them are kept under bench/.cache, so a
rerun only measures.

Each measurement is the real CLI in a fresh interpreter, ``obs report --drift
--source STORE --baseline FILE --format json`` (``--window`` each of
``--periods``), from start to exit: wall time, user and system CPU time
(system time is mostly the kernel handing over fresh memory, which on a
virtual machine can be most of the run), and peak resident memory (GNU
time's, or the child's own from `os.wait4` where there is no /usr/bin/time).
Medians of ``--rounds``; the stores and periods are interleaved in random
order each round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from inferobs.drift.baseline import Baseline, Categorical, ClassScores, Numeric
from inferobs.drift.counting import DRIFT_EVENT, DRIFT_SCHEMA
from inferobs.drift.monitor import instance_psi
from inferobs.export import store

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache", "drift_report")
WINDOW_S = 300
FEATURES = [f"f{i}" for i in range(20)]
SHIFTS = {"f0": 2.5, "f1": 1.5, "f2": 0.8}  # these move in the last days, this far
SHIFT_DAYS = 3
CLASSES = [f"c{i}" for i in range(10)]
START_NS = 1_793_491_200 * 10**9  # 2026-11-01 00:00 UTC: a fixed month, so the cache holds
MISSING = 0.002  # share of values that are None or NaN
GNU_TIME = "/usr/bin/time"

Shares = npt.NDArray[np.float64]
Counts = list[list[int]]  # per window, its counts for one column


def build_baseline(prediction: str) -> Baseline:
    """20 numeric features in 10 quantile bins, and the prediction, from 20,000 reference rows."""
    rng = np.random.default_rng(7)
    n = 20_000
    columns: dict[str, Any] = {
        name: rng.normal(i, 1 + i / 10, n) for i, name in enumerate(FEATURES)
    }
    if prediction == "classes":
        columns["p"] = list(rng.dirichlet(np.linspace(1, 3, len(CLASSES)), n))
    else:
        columns["p"] = rng.gamma(2.0, 1.0, n)
    return Baseline.from_frame(
        columns,
        prediction="p",
        features=FEATURES,
        bins=10,
        classes=CLASSES if prediction == "classes" else None,
    )


def numeric_shares(spec: Numeric, shift: float = 0.0) -> Shares:
    """A numeric column's bucket shares (bins, missing, invalid), tilted up by ``shift``."""
    bins = np.asarray(spec.proportions, dtype=np.float64)
    bins = bins * np.exp(shift * np.arange(len(bins)) / len(bins))
    return np.concatenate([bins / bins.sum() * (1 - MISSING), [MISSING, 0.0]])


def category_shares(spec: Categorical, tilt: float = 0.0) -> Shares:
    """A categorical column's shares (categories, other, missing), tilted towards the last."""
    shares = np.asarray(spec.proportions, dtype=np.float64)
    shares = shares * np.exp(tilt * np.arange(len(shares)) / len(shares))
    return np.concatenate([shares / shares.sum() * (1 - MISSING), [MISSING]])


class Draw:
    """Counts per window: multinomial draws of each window's observations, from the baseline's
    shares until the last days and from shifted ones after."""

    def __init__(self, days: int, instances: int) -> None:
        self.per_instance = days * 86_400 // WINDOW_S
        slot = np.tile(np.arange(self.per_instance), instances)  # instance after instance
        hour = (slot * WINDOW_S / 3600) % 24
        self.rng = np.random.default_rng(11)
        # invocations per window, swinging with the hour of day
        self.n = self.rng.poisson(150 + 300 * np.sin(np.pi * hour / 24) ** 2)
        self.late = slot >= self.per_instance - SHIFT_DAYS * 86_400 // WINDOW_S

    def __call__(self, shares: Shares, shifted: Shares) -> Counts:
        counts = np.empty((len(self.n), len(shares)), dtype=np.int64)
        counts[~self.late] = self.rng.multinomial(self.n[~self.late], shares)
        counts[self.late] = self.rng.multinomial(self.n[self.late], shifted)
        listed: Counts = counts.tolist()
        return listed


def write_store(folder: str, days: int, instances: int, prediction: str) -> None:
    """The full store: every instance's windows, straight into drift_windows, one transaction."""
    baseline = build_baseline(prediction)
    baseline.save(os.path.join(folder, "baseline.json"))
    draw = Draw(days, instances)
    features: dict[str, Counts] = {}
    for name, column in baseline.features.items():
        assert isinstance(column, Numeric)
        features[name] = draw(numeric_shares(column), numeric_shares(column, SHIFTS.get(name, 0)))
    spec = baseline.prediction[1]
    if isinstance(spec, ClassScores):
        scores = [draw(numeric_shares(s), numeric_shares(s)) for s in spec.scores]
        labels = draw(category_shares(spec.label), category_shares(spec.label, 1.5))
    else:
        assert isinstance(spec, Numeric)
        predictions = draw(numeric_shares(spec), numeric_shares(spec, 0.5))
    observations = (2 * draw.n).tolist()  # one prediction and one feature row per invocation
    baseline_hash = baseline.hash  # a property that hashes the file: once

    def rows() -> Iterator[tuple[object, ...]]:
        for w, counted in enumerate(observations):
            instance, number = divmod(w, draw.per_instance)
            start = START_NS + number * WINDOW_S * 10**9
            window: dict[str, Any] = {
                "window_start": start,
                "window_end": start + WINDOW_S * 10**9,
                "baseline_hash": baseline_hash,
                "observations": counted,
                "prediction": {
                    "p": (
                        {"scores": [s[w] for s in scores], "label": labels[w], "invalid": 0}
                        if isinstance(spec, ClassScores)
                        else predictions[w]
                    )
                },
                "features": {name: features[name][w] for name in FEATURES},
            }
            record = {
                "event": DRIFT_EVENT,
                "schema": DRIFT_SCHEMA,
                "function": "classify",
                "model": "classifier",
                "model_version": "3",
                "instance_id": f"2026/11/01/[$LATEST]{instance:032x}",
                "window_id": f"{instance:012x}-{number}",
                **window,
                "instance_psi": instance_psi(baseline, window),
            }
            yield store.WindowRow(record).row  # packed as the store's exporter packs a window

    connection = store.connect(folder)
    connection.execute("BEGIN")
    connection.executemany(store._INSERT_WINDOW, rows())
    connection.execute("COMMIT")
    connection.close()


def copy_store(full: str, folder: str, where: str) -> None:
    """A smaller store: the full store's windows that ``where`` selects."""
    connection = store.connect(folder)
    connection.execute("ATTACH DATABASE ? AS full", (os.path.join(full, store.DATABASE),))
    connection.execute("BEGIN")
    connection.execute(f"INSERT INTO drift_windows SELECT * FROM full.drift_windows WHERE {where}")
    connection.execute("COMMIT")
    connection.execute("DETACH DATABASE full")
    shutil.copy(os.path.join(full, "baseline.json"), os.path.join(folder, "baseline.json"))
    connection.close()


def stores(
    days: int, instances: int, prediction: str, *, smaller: bool = True
) -> dict[str, tuple[str, int, float]]:
    """The stores measured, made if not cached: name -> (folder, instances, days); the full
    one, and with ``smaller`` those copied out of it."""
    tag = f"{prediction}-layout{store.STORE_SCHEMA_VERSION}"
    full = os.path.join(CACHE, f"{tag}-{instances}x{days}d")
    out: dict[str, tuple[str, int, float]] = {"full": (full, instances, days)}
    if not os.path.exists(os.path.join(full, ".ready")):
        shutil.rmtree(full, ignore_errors=True)
        os.makedirs(full)
        began = time.perf_counter()
        # in a process of its own: this one stays small, and its memory out of the figures
        writer = multiprocessing.get_context("spawn").Process(
            target=write_store, args=(full, days, instances, prediction)
        )
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the store {full} failed")
        open(os.path.join(full, ".ready"), "w").close()
        print(f"wrote {full} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    per_day = 86_400 * 10**9
    parts = {
        "1/4 of the days": (instances, days / 4),
        "1/2 of the days": (instances, days / 2),
        "1/2 of the instances": (instances // 2, days),
    }
    for name, (kept, span) in parts.items() if smaller else ():
        folder = f"{full}-{kept}x{span:g}d"
        since = START_NS + int((days - span) * per_day)
        where = (
            f"window_start >= {since} AND instance_id IN (SELECT DISTINCT instance_id FROM "
            f"full.drift_windows ORDER BY instance_id LIMIT {kept})"
        )
        if not os.path.exists(os.path.join(folder, ".ready")):
            shutil.rmtree(folder, ignore_errors=True)
            copy_store(full, folder, where)
            open(os.path.join(folder, ".ready"), "w").close()
        out[name] = (folder, kept, span)
    return out


class Run(NamedTuple):
    """One `obs report --drift`: wall, user and system seconds, and peak resident MB."""

    seconds: float
    user_s: float
    system_s: float
    peak_mb: float


def measure(folder: str, period: str) -> tuple[Run, dict[str, object]]:
    """One fresh `obs report --drift`, and what it answered.

    The peak comes from GNU time where there is one: a child of this process
    would report this process's own peak too (Linux counts the memory a
    process had before its exec into its maximum). User and system time are
    the child's with its own children, as `os.wait4` gives them.
    """
    obs = os.path.join(os.path.dirname(sys.executable), "obs")
    out_path = os.path.join(folder, f"report-{period}.json")
    peak_path = os.path.join(folder, "peak-kb")
    command = [obs, "report", "--drift", "--source", folder, "--format", "json"]
    command += ["--baseline", os.path.join(folder, "baseline.json"), "--window", period]
    if os.path.exists(GNU_TIME):
        command = [GNU_TIME, "--format", "%M", "--output", peak_path, *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFEROBS_")}
    with open(out_path, "w") as out:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):  # 3: an alert rule fired, as the shift means it to
        errors = child.stderr.read().decode() if child.stderr else ""
        raise SystemExit(f"obs report failed ({code}): {errors}")
    peak_kb = float(usage.ru_maxrss)
    if os.path.exists(GNU_TIME):
        with open(peak_path) as handle:
            peak_kb = float(handle.read().split()[-1])
    with open(out_path) as handle:
        answer: dict[str, object] = json.load(handle)
    return Run(seconds, usage.ru_utime, usage.ru_stime, peak_kb / 1024), answer


def windows_in(folder: str) -> int:
    import sqlite3

    with sqlite3.connect(os.path.join(folder, store.DATABASE)) as connection:
        count: int = connection.execute("SELECT count(*) FROM drift_windows").fetchone()[0]
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prediction", choices=["classes", "numeric"], default="classes")
    parser.add_argument("--periods", nargs="+", default=["1h", "5m"])
    parser.add_argument("--only-full", action="store_true", help="measure the full store only")
    args = parser.parse_args()
    found = stores(args.days, args.instances, args.prediction, smaller=not args.only_full)
    cases = [(name, period) for name in found for period in args.periods]
    results: dict[tuple[str, str], list[Run]] = {case: [] for case in cases}
    answers: dict[tuple[str, str], dict[str, object]] = {}
    for _ in range(args.rounds):
        for case in random.sample(cases, len(cases)):
            run, answers[case] = measure(found[case[0]][0], case[1])
            results[case].append(run)
    full = found["full"][0]
    size = os.path.getsize(os.path.join(full, "records.db")) / 2**20
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"full store: {windows_in(full):,} windows, {size:,.0f} MB ({full})")
    print()
    print("| store | instances | days | windows | --window | s | user s | system s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, period in cases:
        folder, instances, days = found[name]
        runs = results[name, period]
        seconds, user, system, peak = (statistics.median(f) for f in zip(*runs, strict=True))
        print(
            f"| {name} | {instances} | {days:g} | {windows_in(folder):,} | {period} | "
            f"{seconds:.2f} | {user:.2f} | {system:.2f} | {peak:,.0f} |"
        )
    print()
    for (name, period), answer in answers.items():
        findings = answer.get("findings")
        count = len(findings) if isinstance(findings, list) else 0
        print(f"{name}, {period}: {count} findings, alert: {answer.get('alert')}")
    rounds = {
        f"{n} {p}": [[round(x, 2) for x in run] for run in r] for (n, p), r in results.items()
    }
    print("rounds (s, user s, system s, peak MB):", json.dumps(rounds))


if __name__ == "__main__":
    main()
