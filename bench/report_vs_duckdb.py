"""`obs report` against DuckDB's own aggregate over the same file of our JSON lines.

    .venv/bin/python bench/report_vs_duckdb.py [--lines 200000 2000000] [--rounds 3]
                                               [--parquet 10000000]

Both sides run in fresh processes, interleaved, on the same file: `obs report
--format json` (every reader rule kept: prefixes, records anywhere on a line,
problems with file and line, a record seen twice counted once) and DuckDB's
``read_json`` computing the per-function counts, duration percentiles and
cold-start rate. Each process reports its wall time and peak RSS; the table
gives medians and the ratio of medians. ``--parquet N`` also times `obs
report` over N invocation rows in a Parquet file (the budget: 10 million in
under 20 s and 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

from inferobs.export.lines import encode  # noqa: E402
from inferobs.record import Invocation  # noqa: E402

TIMED = """
import resource, sys, time
start = time.perf_counter()
{body}
took = time.perf_counter() - start
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

OURS = """
from click.testing import CliRunner
from inferobs.cli import main
result = CliRunner().invoke(main, ["report", "--format", "json", "--source", sys.argv[1]])
assert result.exit_code == 0, result.output
"""

DUCKDB = """
import duckdb
duckdb.sql(
    "SELECT function, count(*), quantile_disc(duration_ms, [0.5, 0.95, 0.99]),"
    " avg(coalesce(cold_start, false)::int)"
    " FROM read_json(?, format = 'newline_delimited') GROUP BY function",
    params=[sys.argv[1]],
).fetchall()
"""


def write_lines(path: str, count: int) -> None:
    """Records shaped like a busy function's: 20 functions, 5 % cold starts, stages, input."""
    rng = random.Random(7)
    start = 1_764_000_000_000_000_000
    with open(path, "w") as out:
        for n in range(count):
            start += rng.randint(1, 10**8)
            cold = rng.random() < 0.05
            record = Invocation(
                id=f"{rng.getrandbits(128):032x}",
                trace_id="1-6b09e60a-585592935df74177ba7314a5",
                start=start,
                duration_ms=round(rng.lognormvariate(3, 1), 3),
                status="ok" if rng.random() > 0.01 else "error",
                cold_start=cold or None,
                init_ms=round(rng.uniform(100, 2000), 3) if cold else None,
                model="sentiment",
                model_version="2026-11-01",
                stages={"preprocess": 0.1, "inference": round(rng.uniform(1, 9), 3)},
                input={"kind": "ndarray", "shape": [1, 256], "dtype": "float32", "nbytes": 1024},
                max_rss_mb=40.6,
                platform="aws_lambda",
                function=f"fn-{n % 20}",
                version="$LATEST",
                memory_mb=1024,
                init_type="on-demand",
                instance_id="2026/11/27/[$LATEST]3111bfe204cd4c56a72a85cd565cbbf0:2709",
            )
            out.write(encode(record) + "\n")


def write_parquet(path: str, count: int) -> None:
    """Invocation rows as a warehouse export holds them: 20 functions, 5 % cold starts."""
    import duckdb

    duckdb.sql(
        "COPY (SELECT 1764000000000000000 + i * 1000000 AS start,"
        " random() * 100 AS duration_ms, 1024 AS memory_mb, random() < 0.05 AS cold_start,"
        " CASE WHEN random() < 0.05 THEN random() * 1000 END AS init_ms,"
        f" 'fn-' || (i % 20) AS function FROM range({int(count)}) AS t(i)) TO '"
        + path.replace("'", "''")
        + "' (FORMAT parquet)"
    )


def timed(body: str, path: str) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body), path],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")},
    )
    seconds, peak_mb = done.stdout.split()[-2:]
    return float(seconds), float(peak_mb)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parquet", type=int, nargs="*", default=[])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    print("| lines | file MB | obs report s | peak MB | DuckDB s | peak MB | ratio |")
    print("|---|---|---|---|---|---|---|")
    for count in args.lines:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "records.jsonl")
            write_lines(path, count)
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for _ in range(args.rounds):
                for side in random.sample(["ours", "theirs"], 2):
                    if side == "ours":
                        ours.append(timed(OURS, path))
                    else:
                        theirs.append(timed(DUCKDB, path))
            size = os.path.getsize(path) / 1e6
        ours_s = statistics.median(s for s, _ in ours)
        theirs_s = statistics.median(s for s, _ in theirs)
        print(
            f"| {count:,} | {size:,.0f} | {ours_s:.2f} | {max(m for _, m in ours):,.0f} "
            f"| {theirs_s:.2f} | {max(m for _, m in theirs):,.0f} | {ours_s / theirs_s:.1f} |"
        )
    for count in args.parquet:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "invocations.parquet")
            write_parquet(path, count)
            runs = [timed(OURS, path) for _ in range(args.rounds)]
        print()
        print(
            f"Parquet, {count:,} rows: obs report {statistics.median(s for s, _ in runs):.1f} s, "
            f"peak {max(m for _, m in runs):,.0f} MB"
        )
    print()
    print(json.dumps({"rounds": args.rounds}))


if __name__ == "__main__":
    main()
