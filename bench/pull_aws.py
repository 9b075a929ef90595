"""`obs pull aws` from moto's server on 127.0.0.1: throughput, and peak memory as the pull grows.

    .venv/bin/python bench/pull_aws.py [--lines 250000 500000 1000000] [--reports]

moto's server runs in a process of its own (its memory is not the pull's),
seeded for each size with that many of our JSON lines (EMF members and all, as
Lambda's stdout carries them) in one log group, spread over the last 12 hours
(moto refuses events older than 14 days); ``--reports`` adds a REPORT line
per invocation. Each pull runs in a fresh process, into an empty store, and
reports its wall time and peak RSS. A pull is streamed (one page of 10,000
events at a time, committed as it comes), so the peak should stay flat as the
lines grow: the table shows it beside the throughput.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

import boto3  # noqa: E402

from inferobs.export.lines import LineExporter  # noqa: E402
from inferobs.record import Invocation  # noqa: E402
from inferobs_aws.emf import EMFExporter  # noqa: E402

PULL = """
import resource, sys, time
from click.testing import CliRunner
from inferobs.cli import main
start = time.perf_counter()
result = CliRunner().invoke(main, sys.argv[1:], catch_exceptions=False)
took = time.perf_counter() - start
assert result.exit_code == 0, result.output
print(result.output, file=sys.stderr)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""
HOURS_MS = 12 * 3_600_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seed(url: str, group: str, lines: int, reports: bool) -> None:
    logs = boto3.client(
        "logs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="bench")
    exporter_stream = io.StringIO()
    exporter = LineExporter(exporter_stream, riders=(EMFExporter(environ={}),))
    now = time.time_ns() // 1_000_000
    first = now - HOURS_MS
    step = HOURS_MS / lines
    batch: list[dict[str, object]] = []
    size = 0
    for index in range(lines):
        start_ms = first + int(index * step)
        record = Invocation(
            id=f"req-{index}",
            start=start_ms * 1_000_000,
            duration_ms=35.0 + index % 17,
            function="bench",
            model="ranker",
            model_version="4",
            platform="aws_lambda",
            cold_start=index % 500 == 0,
            init_ms=800.0 if index % 500 == 0 else None,
            stages={"preprocess": 4.0, "inference": 28.0, "postprocess": 3.0},
        )
        exporter.export(record)
        events = [(start_ms + 40, exporter_stream.getvalue().rstrip("\n"))]
        exporter_stream.seek(0)
        exporter_stream.truncate()
        if reports:
            events.append(
                (
                    start_ms + 41,
                    f"REPORT RequestId: req-{index}\tDuration: {record.duration_ms:.2f} ms\t"
                    f"Billed Duration: {int(record.duration_ms) + 1} ms\tMemory Size: 1024 MB\t"
                    "Max Memory Used: 210 MB\t",
                )
            )
        for at, message in events:
            cost = len(message) + 26
            if len(batch) == 10_000 or size + cost > 1_000_000:
                logs.put_log_events(logGroupName=group, logStreamName="bench", logEvents=batch)
                batch, size = [], 0
            batch.append({"timestamp": at, "message": message})
            size += cost
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName="bench", logEvents=batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--reports", action="store_true")
    args = parser.parse_args()
    rows = []
    for lines in args.lines:
        port = free_port()
        moto = subprocess.Popen(
            [
                os.path.join(os.path.dirname(sys.executable), "moto_server"),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            began = time.perf_counter()
            seed(url, "/aws/lambda/bench", lines, args.reports)
            seeded = time.perf_counter() - began
            with tempfile.TemporaryDirectory() as store:
                env = dict(
                    os.environ,
                    AWS_ENDPOINT_URL=url,
                    AWS_REGION="us-east-1",
                    AWS_ACCESS_KEY_ID="bench",
                    AWS_SECRET_ACCESS_KEY="bench",
                )
                done = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        PULL,
                        "pull",
                        "aws",
                        "--function",
                        "bench",
                        "--since",
                        "13h",
                        "--store",
                        store,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                took, cpu, peak = (float(x) for x in done.stdout.split())
                size = os.path.getsize(os.path.join(store, "records.db"))
        finally:
            moto.terminate()
            moto.wait()
        rows.append((lines, seeded, took, lines / took, cpu, peak, size / 1e6))
        print(done.stderr.strip(), file=sys.stderr)
    print("| our lines | seeding moto | pull | lines/s | pull's CPU | pull's peak RSS | store |")
    print("|---|---|---|---|---|---|---|")
    for count, seeded, took, rate, cpu, peak, megabytes in rows:
        print(
            f"| {count:,} | {seeded:.0f} s | {took:.1f} s | {rate:,.0f} | {cpu:.1f} s "
            f"| {peak:,.0f} MB | {megabytes:,.0f} MB |"
        )


if __name__ == "__main__":
    main()
