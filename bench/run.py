"""The budgets of issue 2, measured side by side: cold-start tax and warm overhead.

    make bench              (or: .venv/bin/python bench/run.py [--rounds N])

Powertools is installed into a throwaway virtual environment (bench/.venv-bench)
together with the Lambda runtime client and numpy; inferobs runs from src/.
Every figure is a median over fresh processes (cold) or over batches of calls
(warm), with the variants interleaved in random order each round, so machine
noise hits all of them alike; taxes and overheads are medians of the per-round
differences from the bare handler. Results go to stdout as a Markdown table.
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
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV_DIR = os.path.join(HERE, ".venv-bench")
PACKAGES = ["awslambdaric==4.2.2", "aws-lambda-powertools==3.37.0", "numpy"]
VARIANTS = {
    "bare": "bare",
    "inferobs": "with_inferobs",
    "powertools": "with_powertools",
    "powertools+metric": "with_powertools_emf",
}
COMPARED = [v for v in VARIANTS if v != "bare"]
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_REGION": "us-east-1",
}


def python() -> str:
    exe = os.path.join(ENV_DIR, "bin", "python")
    if not os.path.exists(os.path.join(ENV_DIR, ".ready")):
        venv.create(ENV_DIR, with_pip=True)
        subprocess.run([exe, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
        open(os.path.join(ENV_DIR, ".ready"), "w").close()
    # pip compiles what it installs; compile ours too, or the cold figures would
    # count inferobs's bytecode compilation, which an installed package never pays
    subprocess.run(
        [
            exe,
            "-m",
            "compileall",
            "-q",
            os.path.join(ROOT, "src", "inferobs"),
            os.path.join(HERE, "handlers"),
        ],
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    return exe


def probe_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INFEROBS_", "AWS_", "PYTHONDONTWRITEBYTECODE"))
    }
    env.update(LAMBDA_ENV)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "src"), os.path.join(HERE, "handlers")])
    return env


def probe(exe: str, mode: str, variant: str, out_dir: str) -> float:
    env = probe_env()
    with open(os.path.join(out_dir, f"{variant}.stdout"), "a") as stdout:
        done = subprocess.run(
            [exe, os.path.join(HERE, "probe.py"), mode, VARIANTS[variant]],
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    return float(result["ms" if mode == "cold" else "us"])


def rounds(exe: str, mode: str, count: int, out_dir: str) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(count):
        order = list(VARIANTS)
        random.shuffle(order)
        for variant in order:
            samples[variant].append(probe(exe, mode, variant, out_dir))
    return samples


def instructions_per_call(exe: str, variant: str) -> int:
    """CPU instructions one warm call executes, counted by callgrind: noise-free.

    The difference between 2,200 and 200 calls, so start-up cancels out; numpy's
    thread pool is kept to one thread, whose spinning would add noise.
    """
    env = {**probe_env(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    counts = []
    for calls in (200, 2200):
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                exe,
                os.path.join(HERE, "probe.py"),
                "calls",
                VARIANTS[variant],
                str(calls),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        line = next(x for x in done.stderr.splitlines() if "Collected" in x)
        counts.append(int(line.split()[-1]))
    return (counts[1] - counts[0]) // 2000


def line_sizes(path: str) -> list[int]:
    """Sizes of the inferobs lines a variant printed, newline excluded."""
    with open(path, "rb") as handle:
        return [len(line) - 1 for line in handle if line.startswith(b'{"schema"')]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="fresh processes per variant")
    parser.add_argument("--warm-rounds", type=int, default=7)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per call (valgrind)"
    )
    args = parser.parse_args()
    exe = python()
    with tempfile.TemporaryDirectory() as out_dir:
        cold = rounds(exe, "cold", args.rounds, out_dir)
        warm = rounds(exe, "warm", args.warm_rounds, out_dir)
        sizes = line_sizes(os.path.join(out_dir, "inferobs.stdout"))
    med = {v: statistics.median(s) for v, s in cold.items()}
    wmed = {v: statistics.median(s) for v, s in warm.items()}
    # paired within each round (same moment, same machine state), then the median
    tax = {
        v: statistics.median(a - b for a, b in zip(cold[v], cold["bare"], strict=True))
        for v in COMPARED
    }
    over = {
        v: statistics.median(a - b for a, b in zip(warm[v], warm["bare"], strict=True))
        for v in COMPARED
    }
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
        f"{args.rounds} cold rounds, {args.warm_rounds} warm rounds\n"
    )
    print(
        "| variant | cold: import + first call (ms) | cold-start tax (ms) "
        "| warm: per call (µs) | warm overhead (µs) |"
    )
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        t = f"{tax[variant]:.1f}" if variant in tax else "-"
        o = f"{over[variant]:.1f}" if variant in over else "-"
        print(f"| {variant} | {med[variant]:.1f} | {t} | {wmed[variant]:.1f} | {o} |")
    print(
        f"\ncold-start tax, inferobs / Powertools: {tax['inferobs'] / tax['powertools']:.3f}"
        " (budget: at most 0.2)"
    )
    for other in ("powertools", "powertools+metric"):
        print(f"warm overhead, inferobs / {other}: {over['inferobs'] / over[other]:.2f}")
    print(f"inferobs warm overhead: {over['inferobs']:.1f} µs (budget: at most 25 µs)")
    print(
        f"inferobs line size: median {statistics.median(sizes):.0f} bytes "
        f"(min {min(sizes)}, max {max(sizes)}, {len(sizes)} lines)"
    )
    if args.instructions:
        counts = {v: instructions_per_call(exe, v) for v in VARIANTS}
        print("\n| variant | instructions per warm call | overhead |\n|---|---|---|")
        for variant, count in counts.items():
            extra = "-" if variant == "bare" else f"{count - counts['bare']:,}"
            print(f"| {variant} | {count:,} | {extra} |")


if __name__ == "__main__":
    main()
