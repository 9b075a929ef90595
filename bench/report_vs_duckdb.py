"""`obs report` against DuckDB's own aggregate over the same file of our JSON lines.

    .venv/bin/python bench/report_vs_duckdb.py [--lines 200000 2000000] [--rounds 3]
                                               [--parquet 10000000]

Every side runs in fresh processes, interleaved, on the same file: `obs report
--format json` (every reader rule kept: prefixes, records anywhere on a line,
problems with file and line, a record seen twice counted once), DuckDB's
``read_json`` computing the same figures the report prints, and DuckDB's
narrower per-function counts, duration percentiles and cold-start rate.
Each process reports its wall time and peak RSS; the table gives medians and
the ratios of medians. ``--parquet N`` also times `obs
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

# The same figures `obs report` prints, in DuckDB's own SQL over its own reader:
# each record once (id, start, kind), per function and model the counts, errors,
# timeouts, cold starts, warm-ups, duration and init percentiles, per stage the
# stage percentiles, and the per-window figures of the default alert rules (1 h
# and 15 min). DuckDB's reader is lenient where ours is strict (it reads "12"
# into a number column as 12) and has no line numbers: it does less.
DUCKDB = """
import duckdb
qs = "[0.5, 0.95, 0.99]"
db = duckdb.connect()
db.execute(
    "CREATE TEMP TABLE once AS SELECT id, start, kind, status, function, model,"
    " model_version, duration_ms, init_ms, cold_start, stages"
    " FROM read_json(?, format = 'newline_delimited')"
    " QUALIFY row_number() OVER (PARTITION BY id, start, kind) = 1",
    [sys.argv[1]],
)
db.sql(
    "SELECT function, model, model_version, count(*) FILTER (WHERE kind <> 'warmup'),"
    " count(*) FILTER (WHERE kind <> 'warmup' AND status = 'error'),"
    " count(*) FILTER (WHERE kind = 'timeout'),"
    " count(*) FILTER (WHERE kind <> 'warmup' AND cold_start),"
    " count(*) FILTER (WHERE kind = 'warmup'),"
    f" quantile_disc(duration_ms, {qs}) FILTER (WHERE kind NOT IN ('warmup', 'timeout')),"
    f" quantile_disc(init_ms, {qs}) FILTER (WHERE kind <> 'warmup' AND cold_start)"
    " FROM once GROUP BY ALL"
).fetchall()
db.sql(
    f"SELECT function, model, model_version, e.key, quantile_disc(e.value, {qs}) FROM ("
    " SELECT function, model, model_version, unnest(map_entries(json_transform("
    "   to_json(stages), '\\"MAP(VARCHAR, DOUBLE)\\"'))) AS e"
    " FROM once WHERE kind NOT IN ('warmup', 'timeout') AND stages IS NOT NULL)"
    " GROUP BY ALL"
).fetchall()
for window in (3_600_000_000_000, 900_000_000_000):
    db.sql(
        f"SELECT function, start // {window}, count(*) FILTER (WHERE kind <> 'warmup'),"
        " count(*) FILTER (WHERE kind <> 'warmup' AND status = 'error'),"
        " count(*) FILTER (WHERE kind <> 'warmup' AND cold_start),"
        " quantile_disc(duration_ms, [0.95, 0.99]) FILTER (WHERE kind NOT IN ('warmup', 'timeout'))"
        " FROM once GROUP BY ALL ORDER BY 2, 1"
    ).fetchall()
"""

# The narrower aggregate the issue first measured: per-function counts, duration
# percentiles and cold-start rate, every record counted as often as it appears.
DUCKDB_COUNTS = """
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
    print(
        "| lines | file MB | obs report s | peak MB | DuckDB, same figures s | peak MB | ratio "
        "| DuckDB, counts only s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for count in args.lines:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "records.jsonl")
            write_lines(path, count)
            runs: dict[str, list[tuple[float, float]]] = {"ours": [], "same": [], "counts": []}
            bodies = {"ours": OURS, "same": DUCKDB, "counts": DUCKDB_COUNTS}
            for _ in range(args.rounds):
                for side in random.sample(list(bodies), len(bodies)):
                    runs[side].append(timed(bodies[side], path))
            size = os.path.getsize(path) / 1e6
        took = {side: statistics.median(s for s, _ in done) for side, done in runs.items()}
        peak = {side: max(m for _, m in done) for side, done in runs.items()}
        print(
            f"| {count:,} | {size:,.0f} | {took['ours']:.2f} | {peak['ours']:,.0f} "
            f"| {took['same']:.2f} | {peak['same']:,.0f} | {took['ours'] / took['same']:.1f} "
            f"| {took['counts']:.2f} | {took['ours'] / took['counts']:.1f} |"
        )
    for count in args.parquet:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "invocations.parquet")
            write_parquet(path, count)
            parquet = [timed(OURS, path) for _ in range(args.rounds)]
        seconds = statistics.median(s for s, _ in parquet)
        print()
        print(
            f"Parquet, {count:,} rows: obs report {seconds:.1f} s, "
            f"peak {max(m for _, m in parquet):,.0f} MB"
        )
    print()
    print(json.dumps({"rounds": args.rounds}))


if __name__ == "__main__":
    main()
