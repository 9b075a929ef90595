"""The overhead budgets, measured side by side with Powertools: cold-start tax and warm overhead.

    make bench              (or: .venv/bin/python bench/run.py [--rounds N] [--variants a,b])

Powertools (with aws-xray-sdk, which its Tracer drives) is installed into a
throwaway virtual environment (bench/.venv-bench) together with the Lambda
runtime client and numpy; inferobs and inferobs-aws run from src/ and
exporters/aws/src/. Every figure is a median over fresh processes (cold) or
over batches of calls (warm), with the variants interleaved in random order
each round, so machine noise hits all of them alike; taxes and overheads are
medians of the per-round differences from the variant's baseline (the bare
handler, or for traced variants the bare handler given the same per-call trace
header). Traced variants send to a stand-in X-Ray daemon on 127.0.0.1 that
counts what arrives. Results go to stdout as Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV_DIR = os.path.join(HERE, ".venv-bench")
AWS_SRC = os.path.join(ROOT, "exporters", "aws", "src")
PACKAGES = [
    "awslambdaric==4.2.2",
    "aws-lambda-powertools==3.37.0",
    "aws-xray-sdk==2.15.0",
    "numpy",
]
# what a traced invocation on Lambda has: the code's root (aws-xray-sdk reads it to
# enter its Lambda mode) and a sampled trace header, renewed by probe.py before each call
TRACED = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
}


@dataclass(frozen=True)
class Variant:
    """A handler module, the environment it runs with, and what its overhead is measured from."""

    module: str
    env: Mapping[str, str] = field(default_factory=dict)
    baseline: str | None = "bare"


VARIANTS = {
    "bare": Variant("bare", baseline=None),
    "inferobs": Variant("with_inferobs"),
    "powertools": Variant("with_powertools"),
    "powertools+metric": Variant("with_powertools_emf"),
    "inferobs+emf": Variant("with_inferobs", {"INFEROBS_EXPORTERS": "aws.emf"}),
    "powertools+stages": Variant("with_powertools_stages"),
    "bare+trace": Variant("bare", TRACED, baseline=None),
    "inferobs+emf+xray": Variant(
        "with_inferobs", {**TRACED, "INFEROBS_EXPORTERS": "aws.emf,aws.xray"}, "bare+trace"
    ),
    "powertools+stages+tracer": Variant("with_powertools_tracer", TRACED, "bare+trace"),
}
# (inferobs, Powertools emitting the same figures, the budget for the ratio)
PAIRS = [
    ("inferobs", "powertools", "cold-start tax at most 0.2"),
    ("inferobs+emf", "powertools+stages", "instructions and time at most 1/2"),
    ("inferobs+emf+xray", "powertools+stages+tracer", "at most 1/3"),
]
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_REGION": "us-east-1",
}


class Daemon:
    """A stand-in for the X-Ray daemon on 127.0.0.1 that counts the datagrams sent to it.

    A thread drains the socket while a probe runs (a full buffer would drop
    datagrams); `take` then sends the socket a mark and waits for the thread
    to reach it, so everything the finished probe sent has been counted.

    By default the thread reads what has arrived every millisecond, so no
    sender finds a reader waiting: a datagram to a waiting reader also pays
    for waking it, which on this 2-CPU VM cost the sender 20 to 30 µs a
    wake, a cost of the host's scheduler rather than of the exporter.
    ``wake=True`` keeps the reader waiting in ``recv``, as a real daemon
    does, to measure that too.
    """

    _MARK = b"\0mark"
    POLL_S = 0.001

    def __init__(self, *, wake: bool = False) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(wake)
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._documents = self._bytes = 0
        self._marked = threading.Event()
        self._thread = threading.Thread(target=self._drain, args=(wake,), daemon=True)
        self._thread.start()

    def _drain(self, wake: bool) -> None:
        while True:
            if not wake:
                time.sleep(self.POLL_S)
            try:
                while True:  # until nothing is left (polling), or for ever (waking)
                    data = self._sock.recv(1 << 16)
                    if data == self._MARK:
                        self._marked.set()
                    else:
                        self._documents += 1
                        self._bytes += len(data)
            except BlockingIOError:
                pass

    def take(self) -> tuple[int, int]:
        """Documents and bytes received since the last take."""
        self._marked.clear()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(self._MARK, self._sock.getsockname())
        if not self._marked.wait(10):
            raise RuntimeError("the stand-in X-Ray daemon stopped draining")
        taken = self._documents, self._bytes
        self._documents = self._bytes = 0
        return taken

    def dropped(self) -> int:
        """Datagrams the kernel dropped for a full buffer (the last column of /proc/net/udp)."""
        port = f"{self._sock.getsockname()[1]:04X}"
        with open("/proc/net/udp") as table:
            for row in table:
                fields = row.split()
                if fields[1].endswith(":" + port):
                    return int(fields[-1])
        return 0


@dataclass
class Sent:
    """What one variant sent the stand-in daemon in its warm runs."""

    calls: int = 0
    documents: int = 0
    bytes: int = 0


def python() -> str:
    exe = os.path.join(ENV_DIR, "bin", "python")
    ready = os.path.join(ENV_DIR, ".ready")  # holds the packages it was made with
    wanted = "\n".join(PACKAGES)
    made = None
    if os.path.exists(ready):
        with open(ready) as marker:
            made = marker.read()
    if made != wanted:
        venv.create(ENV_DIR, with_pip=True, clear=True)
        subprocess.run([exe, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
        with open(ready, "w") as marker:
            marker.write(wanted)
    # pip compiles what it installs; compile ours too, or the cold figures would
    # count inferobs's bytecode compilation, which an installed package never pays
    subprocess.run(
        [
            exe,
            "-m",
            "compileall",
            "-q",
            os.path.join(ROOT, "src", "inferobs"),
            os.path.join(AWS_SRC, "inferobs_aws"),
            os.path.join(HERE, "handlers"),
        ],
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    return exe


def probe_env(variant: str, daemon: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("INFEROBS_", "AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN_", "PYTHONDONTWRITEBYTECODE")
        )
    }
    env.update(LAMBDA_ENV)
    env["AWS_XRAY_DAEMON_ADDRESS"] = daemon
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "src"), AWS_SRC, os.path.join(HERE, "handlers")]
    )
    env.update(VARIANTS[variant].env)
    return env


@dataclass
class Bench:
    """One run's shared parts: the interpreter, the probes' output, the daemon, what was sent."""

    exe: str
    out_dir: str
    daemon: Daemon
    sent: dict[str, Sent]

    def probe(self, mode: str, variant: str) -> float:
        with open(os.path.join(self.out_dir, f"{variant}.stdout"), "a") as stdout:
            done = subprocess.run(
                [self.exe, os.path.join(HERE, "probe.py"), mode, VARIANTS[variant].module],
                env=probe_env(variant, self.daemon.address),
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                check=True,
            )
        result = json.loads(done.stderr.strip().splitlines()[-1])
        documents, size = self.daemon.take()
        if mode == "warm":
            sent = self.sent[variant]
            sent.calls += result["calls"]
            sent.documents += documents
            sent.bytes += size
        return float(result["ms" if mode == "cold" else "us"])

    def rounds(self, mode: str, count: int, variants: list[str]) -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(count):
            order = list(variants)
            random.shuffle(order)
            for variant in order:
                samples[variant].append(self.probe(mode, variant))
        return samples

    def instructions_per_call(self, variant: str) -> int:
        """CPU instructions one warm call executes, counted by callgrind: noise-free.

        The difference between 2,200 and 200 calls, so start-up cancels out; numpy's
        thread pool is kept to one thread, whose spinning would add noise.
        """
        env = {
            **probe_env(variant, self.daemon.address),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        counts = []
        for calls in (200, 2200):
            done = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--callgrind-out-file=/dev/null",
                    self.exe,
                    os.path.join(HERE, "probe.py"),
                    "calls",
                    VARIANTS[variant].module,
                    str(calls),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=True,
            )
            self.daemon.take()
            line = next(x for x in done.stderr.splitlines() if "Collected" in x)
            counts.append(int(line.split()[-1]))
        return (counts[1] - counts[0]) // 2000


def line_sizes(path: str) -> list[int]:
    """Sizes of the inferobs lines a variant printed, newline excluded."""
    with open(path, "rb") as handle:
        return [len(line) - 1 for line in handle if line.startswith(b'{"schema"')]


def paired(samples: dict[str, list[float]], variants: list[str]) -> dict[str, float]:
    """Each variant's median difference from its baseline, paired within each round.

    Pairs are taken in the same round (same moment, same machine state).
    """
    out = {}
    for v in variants:
        base = VARIANTS[v].baseline
        if base is not None:
            out[v] = statistics.median(
                a - b for a, b in zip(samples[v], samples[base], strict=True)
            )
    return out


def chosen(names: str | None) -> list[str]:
    """The variants asked for, with the baselines they are measured from, in table order."""
    if names is None:
        return list(VARIANTS)
    asked = {n.strip() for n in names.split(",") if n.strip()}
    unknown = asked - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    asked |= {b for n in asked if (b := VARIANTS[n].baseline) is not None}
    return [v for v in VARIANTS if v in asked]


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.3f}"


def print_times(
    variants: list[str], cold: dict[str, list[float]], warm: dict[str, list[float]]
) -> tuple[dict[str, float], dict[str, float]]:
    """The cold and warm table; returns the cold-start taxes and warm overheads."""
    tax, over = paired(cold, variants), paired(warm, variants)
    print(
        "| variant | baseline | cold: import + first call (ms) | cold-start tax (ms) "
        "| warm: per call (µs) | warm overhead (µs) |\n|---|---|---|---|---|---|"
    )
    for v in variants:
        t = f"{tax[v]:.1f}" if v in tax else "-"
        o = f"{over[v]:.1f}" if v in over else "-"
        print(
            f"| {v} | {VARIANTS[v].baseline or '-'} | {statistics.median(cold[v]):.1f} | {t} "
            f"| {statistics.median(warm[v]):.1f} | {o} |"
        )
    if "bare+trace" in variants:
        print(
            "\nbare+trace: the bare handler with the per-call trace header set "
            "(the traced variants' baseline)"
        )
    return tax, over


def print_instructions(bench: Bench, variants: list[str]) -> dict[str, int]:
    """The instructions table; returns the count per call of each variant."""
    counts = {v: bench.instructions_per_call(v) for v in variants}
    print("\n| variant | instructions per warm call | overhead |\n|---|---|---|")
    for v, count in counts.items():
        base = VARIANTS[v].baseline
        extra = "-" if base is None else f"{count - counts[base]:,}"
        print(f"| {v} | {count:,} | {extra} |")
    return counts


def print_ratios(
    variants: list[str],
    warm: dict[str, list[float]],
    tax: dict[str, float],
    over: dict[str, float],
    counts: dict[str, int],
) -> None:
    """inferobs over Powertools emitting the same figures, for each budget of the issues."""

    def median(v: str) -> float:
        return statistics.median(warm[v])

    def extra(v: str) -> int | None:
        base = VARIANTS[v].baseline
        return None if v not in counts or base is None else counts[v] - counts[base]

    print(
        "\n| inferobs / Powertools | cold-start tax | warm per call | warm overhead "
        "| instructions per call | instruction overhead | budget |\n|---|---|---|---|---|---|---|"
    )
    for ours, theirs, budget in PAIRS:
        if ours in variants and theirs in variants:
            print(
                f"| {ours} / {theirs} | {ratio(tax[ours], tax[theirs])} "
                f"| {ratio(median(ours), median(theirs))} | {ratio(over[ours], over[theirs])} "
                f"| {ratio(counts.get(ours), counts.get(theirs))} "
                f"| {ratio(extra(ours), extra(theirs))} | {budget} |"
            )
    if {"inferobs", "powertools+metric"} <= set(variants):
        print(
            "\nwarm overhead, inferobs / powertools+metric: "
            f"{over['inferobs'] / over['powertools+metric']:.2f}"
        )
    if "inferobs" in over:
        print(f"inferobs warm overhead: {over['inferobs']:.1f} µs (budget: at most 25 µs)")


def print_output(sizes: dict[str, list[int]], sent: dict[str, Sent], daemon: Daemon) -> None:
    """What each variant wrote: inferobs's line, and the documents the daemon received."""
    print("\n| variant | inferobs line: median bytes (min, max) | lines |\n|---|---|---|")
    for v, found in sizes.items():
        middle = statistics.median(found)
        print(f"| {v} | {middle:.0f} ({min(found)}, {max(found)}) | {len(found)} |")
    print("\n| variant | X-Ray documents per warm call | bytes per document |\n|---|---|---|")
    for v, s in sent.items():
        size = f"{s.bytes / s.documents:.0f}" if s.documents else "-"
        print(f"| {v} | {s.documents / s.calls:.2f} | {size} |")
    print(f"\ndatagrams the stand-in daemon dropped (full buffer): {daemon.dropped()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="fresh processes per variant")
    parser.add_argument("--warm-rounds", type=int, default=7)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per call (valgrind)"
    )
    parser.add_argument(
        "--variants",
        help=f"comma-separated subset (their baselines are added): {', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--daemon-wakes",
        action="store_true",
        help="the stand-in X-Ray daemon waits in recv, woken by each datagram (default: it polls)",
    )
    args = parser.parse_args()
    variants = chosen(args.variants)
    exe = python()
    daemon = Daemon(wake=args.daemon_wakes)
    with tempfile.TemporaryDirectory() as out_dir:
        bench = Bench(exe, out_dir, daemon, {v: Sent() for v in variants})
        cold = bench.rounds("cold", args.rounds, variants)
        warm = bench.rounds("warm", args.warm_rounds, variants)
        sizes = {
            v: line_sizes(os.path.join(out_dir, f"{v}.stdout"))
            for v in variants
            if VARIANTS[v].module == "with_inferobs"
        }
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
        f"{args.rounds} cold rounds, {args.warm_rounds} warm rounds; the stand-in X-Ray daemon "
        f"{'waits in recv' if args.daemon_wakes else 'polls every millisecond'}\n"
    )
    tax, over = print_times(variants, cold, warm)
    counts = print_instructions(bench, variants) if args.instructions else {}
    print_ratios(variants, warm, tax, over, counts)
    print_output(sizes, bench.sent, daemon)


if __name__ == "__main__":
    main()
