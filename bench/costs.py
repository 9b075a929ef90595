"""`obs report --costs` at scale: the policy search on 10M requests, and on 30 days of minutes.

    .venv/bin/python bench/costs.py [--requests 10000000] [--days 30] [--rounds 3]

Each run is a fresh process timing `obs report --costs --format json` from
the file to the finished answer (reading, placing every request, the sweep
over every N from 0 to the peak, the hourly schedule, every always-on
candidate, with a cold-start target so the search has work to do), and
reporting its peak resident memory. Medians of the rounds.

The requests: one function, a week of Poisson arrivals whose rate swings with
the hour of day (6 to 30 a second), durations lognormal around 400 ms, 3 %
recorded cold starts with their init; the peak is several dozen at once. The
minutes: one function, 30 days of per-minute counts with the same swing, in
Azure's 2019 layout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TIMED = """
import resource, sys, time
start = time.perf_counter()
from click.testing import CliRunner
from inferobs.cli import main
result = CliRunner().invoke(main, ["report", "--costs", "--format", "json",
    "--max-cold-start-rate", "0.01", "--p99-ms", "2000",
    *[a for path in sys.argv[1:] for a in ("--source", path)]])
assert result.exit_code == 0, result.output
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # a placement's fork
print(time.perf_counter() - start, own, child)
"""


def write_requests(path: str, count: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    # arrivals: thin a 30-a-second Poisson stream by a diurnal acceptance
    gaps = rng.exponential(1 / 30, int(count * 1.8))
    start_s = np.cumsum(gaps)
    hour = (start_s / 3600) % 24
    keep = rng.random(len(start_s)) < (0.2 + 0.8 * np.sin(np.pi * hour / 24) ** 2)
    start_s = start_s[keep][:count]
    n = len(start_s)
    cold = rng.random(n) < 0.03
    table = pa.table(
        {
            "start": (1_764_000_000 * 10**9 + start_s * 1e9).astype(np.int64),
            "duration_ms": np.round(rng.lognormal(np.log(400), 0.5, n), 3),
            "memory_mb": np.full(n, 2048, dtype=np.int32),
            "cold_start": cold,
            "init_ms": pa.array(np.round(rng.uniform(800, 3000, n), 3), mask=~cold),
            "function": np.full(n, "classify"),
        }
    )
    pq.write_table(table, path)


def write_minutes(folder: str, days: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(5)
    minutes = np.arange(days * 1440)
    hour = (minutes / 60) % 24
    rate = 6000 + 24000 * np.sin(np.pi * hour / 24) ** 2  # a minute
    counts = rng.poisson(rate)
    paths = []
    for day in range(days):
        name = os.path.join(folder, f"invocations_per_function_md.anon.d{day + 1:02d}.csv")
        cells = ",".join(str(c) for c in counts[day * 1440 : (day + 1) * 1440])
        header = ",".join(str(m) for m in range(1, 1441))
        with open(name, "w") as out:
            out.write(f"HashOwner,HashApp,HashFunction,Trigger,{header}\n")
            out.write(f"o,a,f,http,{cells}\n")
        paths.append(name)
    with open(os.path.join(folder, "durations.csv"), "w") as out:
        out.write(
            "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
            "percentile_Average_1,percentile_Average_25,percentile_Average_50,"
            "percentile_Average_75,percentile_Average_99,percentile_Average_100\n"
            "o,a,f,120,1000,10,900,10,20,80,110,150,600,900\n"
        )
    return paths


def timed(*paths: str) -> tuple[float, float, float]:
    done = subprocess.run(
        [sys.executable, "-c", TIMED, *paths],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")},
    )
    seconds, own, child = done.stdout.split()[-3:]
    return float(seconds), float(own), float(child)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "requests.parquet")
        write_requests(path, args.requests)
        runs = [timed(path) for _ in range(args.rounds)]
        print(
            f"{args.requests:,} requests: {statistics.median(s for s, _, _ in runs):.1f} s, "
            f"peak {max(m for _, m, _ in runs):,.0f} MB "
            f"(the forked placement's peak: {max(c for _, _, c in runs):,.0f} MB, "
            "most of it pages shared with this process)"
        )
    with tempfile.TemporaryDirectory() as folder:
        paths = write_minutes(folder, args.days)
        runs = [timed(*paths) for _ in range(args.rounds)]
        print(
            f"{args.days} days of minutes: {statistics.median(s for s, _, _ in runs):.2f} s, "
            f"peak {max(m for _, m, _ in runs):,.0f} MB"
        )


if __name__ == "__main__":
    main()
