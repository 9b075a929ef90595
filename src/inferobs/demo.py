"""`obs demo`: a real model served through an instrumented handler for a simulated day.

A scikit-learn classifier (trained at first use on the breast-cancer data set
that ships inside scikit-learn, so nothing is downloaded) is served by a
Lambda-style handler instrumented with inferobs. A day of requests arrives
on a simulated clock, in bursts and lulls shaped like the public Azure
Functions traces, and a simulated pool of execution environments serves them:
a request that finds no idle environment starts a new one, which goes through
the SDK's real cold-start path (a fresh `Runtime` whose init lasts the model's
measured load time), and environments idle for longer than the keep-alive are
reclaimed. Stage timings are the real ones, measured while the model runs.
Every record lands in the embedded store, ready for `obs report`.

Each request carries a batch of samples, and the handler counts its
predictions and four of its input features against a drift baseline built
from validation traffic. Part-way through the day a scanner recalibration
scales one feature ("worst texture"), which moves the class mix of the
predictions too: ``obs report --drift`` alerts on both, and not on the
features left alone. Environments reclaimed while idle take their open
drift window with them, as on Lambda without an extension, so the report's
coverage is below 100 %.

numpy and scikit-learn (the ``demo`` extra) are imported where the model is
made, so the ``obs`` command reads the demo's limits without them.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import inferobs as obs
from inferobs.record import Invocation

from .export.store import DATABASE, StoreExporter, connect

__all__ = ["Arrivals", "DemoResult", "NotTheDemosStore", "OutOfRange", "run_demo"]

MINUTE_NS = 60 * 1_000_000_000

# Arrival shape, calibrated on ../shared/data/traces (Azure Functions, CC-BY):
# in the 2021 invocation slice 60 % of the gaps between requests are under a
# second (requests come in bursts, 2.5 on average) with a median gap inside a
# burst of 0.14 s; the 2019 one-function day swings +-7 % around its mean over
# the day. The demo keeps that shape at a rate low enough that lulls outlast
# the keep-alive, which is where cold starts come from.
BURST_MEAN_SIZE = 2.5
BURST_GAP_S = 0.14
DIURNAL_AMPLITUDE = 0.068

# Drift: the features the handler counts, the one that shifts, by how much and
# when (a share of the simulated span), and how many samples a request holds
WATCHED = ("mean radius", "mean texture", "worst smoothness", "worst texture")
SHIFTED = "worst texture"
SHIFT_FACTOR = 1.8
SHIFT_AT = 0.6
BATCH = 32
DRIFT_WINDOW = "5m"
BASELINE_FILE = "baseline.json"  # in the demo's store folder, where `obs report --drift` looks

# Bounds that keep a run finite: the simulated span ends now and starts after
# 1970 whatever the rate, and about 3,000 requests are served a second, so the
# most requests allowed take minutes, not hours. No rate above a million
# bursts an hour fits in them for as much as a minute, and a keep-alive longer
# than the longest run is the same as one that never ends.
MAX_MINUTES = 366 * 24 * 60
MAX_REQUESTS = 1_000_000
MAX_BURSTS_PER_HOUR = 1_000_000
MAX_KEEP_ALIVE_MINUTES = MAX_MINUTES

# The demo empties its store before each run, so it marks the stores it makes
# with this row of their `meta` table, and empties no other store with records.
ORIGIN = ("origin", "demo")
DEMO_FUNCTION = "demo-classifier"  # what an older, unmarked demo store holds alone


class OutOfRange(ValueError):
    """A number `run_demo` was given is out of its range, alone or with the others."""


class NotTheDemosStore(ValueError):
    """The store folder holds records the demo did not write, which it would delete."""


class Arrivals:
    """Request times over a simulated day: bursts on a slow daily cycle."""

    def __init__(self, minutes: float, bursts_per_hour: float, seed: int = 7) -> None:
        self.minutes = minutes
        self.bursts_per_hour = bursts_per_hour
        self.random = random.Random(seed)

    def times_ns(self) -> list[int]:
        rng = self.random
        end_s = self.minutes * 60
        peak = self.bursts_per_hour * (1 + DIURNAL_AMPLITUDE) / 3600
        times: list[float] = []
        now = 0.0
        while True:  # a non-homogeneous Poisson process of bursts, by thinning
            now += rng.expovariate(peak)
            if now >= end_s:
                break
            rate = 1 + DIURNAL_AMPLITUDE * math.sin(2 * math.pi * now / 86400)
            if rng.random() > rate / (1 + DIURNAL_AMPLITUDE):
                continue
            size = 1 + int(rng.expovariate(1 / (BURST_MEAN_SIZE - 1)))
            at = now
            for _ in range(size):
                times.append(at)
                at += rng.expovariate(1 / BURST_GAP_S)
        return sorted(int(t * 1e9) for t in times if t < end_s)


class SimulatedClock(obs.Clock):
    """Simulated time that moves with real time while a handler runs.

    The simulation sets the time at each event; in between, real elapsed time is
    added, so what the handler measures (its stages) is real.
    """

    __slots__ = ("_base_ns", "_real_ns")

    def __init__(self, epoch_ns: int) -> None:
        self._base_ns = epoch_ns
        self._real_ns = time.perf_counter_ns()

    def set(self, at_ns: int) -> None:
        self._base_ns = at_ns
        self._real_ns = time.perf_counter_ns()

    def wall_ns(self) -> int:
        return self._base_ns + (time.perf_counter_ns() - self._real_ns)

    monotonic_ns = wall_ns


class Model:
    """The served model: scaler + logistic regression, as its pickled bytes."""

    def __init__(self) -> None:
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        data = load_breast_cancer()
        self.rows = data.data.astype("float64")
        self.labels = [str(name) for name in data.target_names]
        names = [str(name) for name in data.feature_names]
        self.watched = [names.index(name) for name in WATCHED]
        self.shifted = names.index(SHIFTED)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(self.rows, data.target)
        self.blob = pickle.dumps(model)
        self.load_ms = self._measure_load_ms()

    def load(self) -> Any:
        return pickle.loads(self.blob)

    def batch(self, rng: Any, shifted: bool) -> Any:
        """A request's samples: rows of the data set, each within 5 % of the original."""
        rows = self.rows[rng.integers(0, len(self.rows), BATCH)]
        rows = rows * rng.uniform(0.95, 1.05, (BATCH, 1))
        if shifted:
            rows[:, self.shifted] *= SHIFT_FACTOR
        return rows

    def baseline(self, path: str, rng: Any) -> None:
        """The drift baseline, from 20,000 samples of validation traffic (before the shift)."""
        from .drift.baseline import Baseline

        rows = self.rows[rng.integers(0, len(self.rows), 20_000)]
        rows = rows * rng.uniform(0.95, 1.05, (len(rows), 1))
        columns: dict[str, Any] = {"prediction": self.load().predict_proba(rows)}
        columns.update({name: rows[:, n] for name, n in zip(WATCHED, self.watched, strict=True)})
        Baseline.from_frame(
            columns, prediction="prediction", features=WATCHED, classes=self.labels
        ).save(path)

    def _measure_load_ms(self) -> float:
        """What a new environment spends before serving: importing the libraries
        (measured in a fresh interpreter) and loading the weights."""
        script = (
            "import time; t = time.perf_counter(); import numpy, sklearn.linear_model, "
            "sklearn.pipeline, sklearn.preprocessing; print(time.perf_counter() - t)"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        started = time.perf_counter()
        self.load()
        return float(done.stdout.strip()) * 1000 + (time.perf_counter() - started) * 1000


def make_handler(model: Model, runtime: obs.Runtime) -> Any:
    """The function's code, as a new execution environment would run it."""
    import numpy as np

    estimator = model.load()
    labels = model.labels
    watched = model.watched

    @obs.instrument(model="breast-cancer-lr", model_version="2026-11-01", runtime=runtime)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with obs.stage("preprocess"):
            x = np.asarray(event["features"], dtype=np.float64).reshape(-1, len(model.rows[0]))
        obs.observe_input(x)
        obs.observe_features(x[:, watched])  # in the baseline's feature order: a batch
        with obs.stage("inference"):
            probabilities = estimator.predict_proba(x)
        obs.observe_prediction(probabilities)  # a batch of class-probability vectors
        with obs.stage("postprocess"):
            best = probabilities.argmax(axis=1)
            return {
                "labels": [labels[k] for k in best.tolist()],
                "scores": [round(float(p), 4) for p in probabilities.max(axis=1)],
            }

    return handler


class Environment:
    """One simulated execution environment: its clock, its handler, when it is free."""

    __slots__ = ("busy_until", "clock", "handler", "last_used", "runtime")

    def __init__(self, clock: SimulatedClock, runtime: obs.Runtime, handler: Any) -> None:
        self.clock = clock
        self.runtime = runtime
        self.handler = handler
        self.busy_until = 0
        self.last_used = 0

    @classmethod
    def start(cls, model: Model, now: int, load_ns: int, number: int) -> Environment:
        """Environment ``number``, started at ``now``: its init lasts ``load_ns``."""
        clock = SimulatedClock(now)
        runtime = obs.Runtime(environ=_lambda_environ(number), clock=clock, process_start=now)
        clock.set(now + load_ns)  # the init: imports and weights, as measured
        return cls(clock, runtime, make_handler(model, runtime))


class Context:
    """What the demo's handler reads of a Lambda context."""

    __slots__ = ("aws_request_id",)

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


class DemoResult:
    """What the demo did, for its summary line."""

    __slots__ = ("cold_starts", "environments", "errors", "invocations")

    def __init__(self) -> None:
        self.invocations = 0
        self.errors = 0
        self.cold_starts = 0
        self.environments = 0


def run_demo(
    store_path: str,
    *,
    minutes: float = 24 * 60,
    bursts_per_hour: float = 15,
    keep_alive_minutes: float = 10,
    error_rate: float = 0.01,
    seed: int = 7,
    progress: Callable[[str], object] | None = None,
) -> DemoResult:
    """Serve a simulated day of requests into a fresh store at ``store_path``.

    Only the store's own files there are replaced, and only if the demo wrote
    them (or the store is empty); anything else in the folder is left alone.
    Everything that can be checked is checked before anything changes on disk:
    a number out of range is an `OutOfRange` naming it, a store holding records
    the demo did not write is `NotTheDemosStore` (both ValueErrors), and a bad
    ``INFEROBS_*`` variable a `ConfigError` (the demo records, so it is as
    strict as `inferobs.configure`); a store that cannot be read or made is an
    OSError or sqlite3.Error. ``progress`` is told, in a line, when the work
    begins; if the run is interrupted, the store writes what was served when
    the process exits.
    """
    _check("minutes", minutes, 0, MAX_MINUTES, low_open=True)
    _check("bursts_per_hour", bursts_per_hour, 0, MAX_BURSTS_PER_HOUR, low_open=True)
    _check("keep_alive_minutes", keep_alive_minutes, 0, MAX_KEEP_ALIVE_MINUTES)
    _check("error_rate", error_rate, 0, 1)
    expected = minutes / 60 * bursts_per_hour * BURST_MEAN_SIZE
    if expected > MAX_REQUESTS:
        raise OutOfRange(
            f"{minutes:g} minutes at {bursts_per_hour:g} bursts per hour is about "
            f"{expected:,.0f} requests; the demo serves at most {MAX_REQUESTS:,}"
        )
    _check_own_store(store_path)
    result = DemoResult()
    store = StoreExporter(store_path, batch_size=512)
    # enabled: the demo exists to record, whatever INFEROBS_ENABLED says
    # (and a bad INFEROBS_* variable shows before the store is touched)
    settings: dict[str, Any] = {"enabled": True, "exporters": [store, _Counter(result)]}
    obs.configure(**settings, service="demo")
    _fresh_store(store_path)
    if progress is not None:
        progress(
            "Serving a scikit-learn classifier through an instrumented handler for "
            f"{minutes:g} simulated minutes..."
        )
    import numpy as np

    model = Model()
    _count_drift(model, store_path, settings, seed)
    rng = random.Random(seed)
    samples = np.random.default_rng(seed)
    epoch = time.time_ns() - int(minutes * MINUTE_NS)  # the simulated day ends now
    shift_at = epoch + int(SHIFT_AT * minutes * MINUTE_NS)
    keep_alive = int(keep_alive_minutes * MINUTE_NS)
    load_ns = int(model.load_ms * 1e6)
    pool: list[Environment] = []
    for n, offset in enumerate(Arrivals(minutes, bursts_per_hour, seed).times_ns()):
        now = epoch + offset
        pool = _reclaim(pool, now, keep_alive)
        free = [env for env in pool if env.busy_until <= now]
        if free:
            env = max(free, key=lambda e: e.last_used)  # the most recently used stays warm
        else:  # a new execution environment: the request waits for its init
            result.environments += 1
            env = Environment.start(model, now, load_ns, result.environments)
            pool.append(env)
            now += load_ns
        event: dict[str, Any] = {"features": model.batch(samples, now >= shift_at).tolist()}
        if rng.random() < error_rate:
            event = {"feature": event["features"]}  # a malformed request: KeyError
        env.clock.set(now)
        try:
            env.handler(event, Context(f"demo-{n}"))
        except KeyError:
            result.errors += 1
        finished = env.clock.monotonic_ns()
        env.busy_until = env.last_used = finished
        result.invocations += 1
    _flush_drift()
    store.flush()
    return result


def _count_drift(model: Model, store_path: str, settings: dict[str, Any], seed: int) -> None:
    """Build the drift baseline from validation traffic, and count against it from now on."""
    import numpy as np

    path = os.path.join(store_path, BASELINE_FILE)
    model.baseline(path, np.random.default_rng(seed + 1))
    obs.configure(**settings, service="demo", baseline=path, drift_window=DRIFT_WINDOW)


def _reclaim(pool: list[Environment], now: int, keep_alive: int) -> list[Environment]:
    """The environments still up at ``now``; those idle past the keep-alive are reclaimed,
    and their open drift windows are lost with them, as on Lambda without an extension."""
    from .context import drift

    kept = [env for env in pool if now - env.last_used <= keep_alive or env.busy_until > now]
    if drift.monitor is not None and len(kept) < len(pool):
        for env in pool:
            if env not in kept:
                drift.monitor.discard(env.runtime)
    return kept


def _flush_drift() -> None:
    """The open windows of the environments still up: they deliver them with the next window."""
    from .context import drift

    if drift.monitor is not None:
        drift.monitor.flush()


def _check(
    name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = False
) -> None:
    """A ValueError naming ``name`` unless ``value`` is a finite number within the bounds."""
    fits = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not fits:
        bounds = f"{'above' if low_open else 'at least'} {low:,g}"
        if high < math.inf:
            bounds += f" and at most {high:,.0f}" if high == int(high) else f" and at most {high:g}"
        raise OutOfRange(f"{name}={value!r}: expected a finite number {bounds}")


def _check_own_store(store_path: str) -> None:
    """`NotTheDemosStore` unless the store at ``store_path`` is the demo's, empty or absent.

    The demo's stores carry the `ORIGIN` mark; one an older demo wrote before
    the mark existed holds nothing but the demo function's records.
    """
    database = os.path.join(store_path, DATABASE)
    if not os.path.isfile(database):
        return  # nothing to lose; a folder in its place fails where the store is made
    connection = sqlite3.connect(database)
    try:
        tables = {name for (name,) in connection.execute(_TABLES)}
        if "meta" in tables and connection.execute(_MARKED, ORIGIN).fetchone():
            return
        for table in sorted(tables - {"meta"}):
            quoted = '"' + table.replace('"', '""') + '"'
            query = f"SELECT 1 FROM {quoted} LIMIT 1"
            if table == "invocations":
                query = f"SELECT 1 FROM {quoted} WHERE function IS NOT '{DEMO_FUNCTION}' LIMIT 1"
            if connection.execute(query).fetchone():
                raise NotTheDemosStore(
                    f"{store_path} holds records that obs demo did not write; "
                    "choose another --store (the demo empties its store first)"
                )
    finally:
        connection.close()


_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
_MARKED = "SELECT 1 FROM meta WHERE key = ? AND value = ?"


def _fresh_store(store_path: str) -> None:
    """The demo's own store, emptied: only its files are removed, then it is made and marked."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(store_path, DATABASE + suffix))
    connection = connect(store_path)  # the store exists even if no request arrives
    try:
        connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", ORIGIN)
    finally:
        connection.close()


class _Counter:
    """An exporter that counts the cold starts the demo announces before its report."""

    def __init__(self, result: DemoResult) -> None:
        self.result = result

    def export(self, record: Invocation) -> None:
        self.result.cold_starts += record.cold_start


def _lambda_environ(number: int) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": DEMO_FUNCTION,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/11/27/[$LATEST]{number:032x}",
    }
