"""The ASGI and WSGI middleware against the same app uninstrumented, side by side.

    .venv/bin/python bench/http_surfaces.py [--rounds 5] [--seconds 4]

Each app answers one route after 2 ms of waiting (the "handler"), behind a
real server in a process of its own on 127.0.0.1: uvicorn for a FastAPI app,
werkzeug's threaded server for a Flask app. The instrumented copy has the
middleware and writes every record to stdout (sent to /dev/null), as on Cloud
Run. Two measures, each side by side in alternating rounds, medians quoted:

- **latency** at an open-loop 100 requests a second (well below saturation):
  each request is sent at its scheduled time whatever the others do, and its
  time to the whole answer is taken; p50 and p99 per side, and what the
  middleware adds;
- **throughput** at 64 requests in flight (closed loop): answers a second.

The client (httpx, asyncio) runs in this process; it costs both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

APPS = """
import asyncio, time
import inferobs as obs
from fastapi import FastAPI
from flask import Flask

def fastapi_app(instrumented):
    app = FastAPI()
    if instrumented:
        app.add_middleware(obs.InferobsMiddleware, model="bench")

    @app.post("/predict/{model}")
    async def predict(model: str, body: dict):
        with obs.stage("inference"):
            await asyncio.sleep(0.002)
        return {"model": model}

    return app

def flask_app(instrumented):
    app = Flask(__name__)
    if instrumented:
        app.wsgi_app = obs.InferobsWSGIMiddleware(app.wsgi_app, model="bench")

    @app.post("/predict/<model>")
    def predict(model):
        with obs.stage("inference"):
            time.sleep(0.002)
        return {"model": model}

    return app

asgi_plain, asgi_instrumented = fastapi_app(False), fastapi_app(True)
wsgi_plain, wsgi_instrumented = flask_app(False), flask_app(True)
"""

WSGI_SERVER = """
import sys
from werkzeug.serving import make_server
import apps
server = make_server("127.0.0.1", int(sys.argv[2]), getattr(apps, sys.argv[1]), threaded=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(folder: str, surface: str, app: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=folder, INFEROBS_EXPORTERS="stdout")
    if surface == "asgi":
        command = [sys.executable, "-m", "uvicorn", f"apps:{app}", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
    else:
        command = [sys.executable, os.path.join(folder, "wsgi_server.py"), app, str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=folder)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def open_loop(url: str, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of requests sent every 1/rate s whatever the answers do."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def one() -> None:
            began = time.perf_counter()
            answer = await client.post("/predict/m", json={"x": [1, 2, 3]})
            answer.raise_for_status()
            latencies.append((time.perf_counter() - began) * 1000)

        await client.post("/predict/m", json={"x": []})  # a connection, and a warm server
        tasks = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies


async def closed_loop(url: str, in_flight: int, seconds: float) -> float:
    """Answers a second with ``in_flight`` requests always outstanding."""
    done = 0
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                answer = await client.post("/predict/m", json={"x": [1, 2, 3]})
                answer.raise_for_status()
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return done / (time.perf_counter() - began)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "apps.py"), "w") as out:
            out.write(APPS)
        with open(os.path.join(folder, "wsgi_server.py"), "w") as out:
            out.write(WSGI_SERVER)
        rows = []
        for surface in ("asgi", "wsgi"):
            ports = {side: free_port() for side in ("plain", "instrumented")}
            servers = [serve(folder, surface, f"{surface}_{s}", p) for s, p in ports.items()]
            try:
                p50: dict[str, list[float]] = {"plain": [], "instrumented": []}
                p99: dict[str, list[float]] = {"plain": [], "instrumented": []}
                rate: dict[str, list[float]] = {"plain": [], "instrumented": []}
                for round_ in range(args.rounds):
                    order = ("plain", "instrumented") if round_ % 2 else ("instrumented", "plain")
                    for side in order:
                        url = f"http://127.0.0.1:{ports[side]}"
                        latencies = asyncio.run(open_loop(url, 100, args.seconds))
                        p50[side].append(percentile(latencies, 0.5))
                        p99[side].append(percentile(latencies, 0.99))
                    for side in order:
                        url = f"http://127.0.0.1:{ports[side]}"
                        rate[side].append(asyncio.run(closed_loop(url, 64, args.seconds)))
            finally:
                for server in servers:
                    server.terminate()
                    server.wait()
            median = {
                name: {side: statistics.median(v) for side, v in series.items()}
                for name, series in (("p50", p50), ("p99", p99), ("rate", rate))
            }
            rows.append((surface, median))
    print(
        "| surface | p50 plain | p50 with | added p50 | p99 plain | p99 with | added p99 "
        "| rps plain | rps with | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for surface, m in rows:
        p50m, p99m, ratem = m["p50"], m["p99"], m["rate"]
        print(
            f"| {surface} | {p50m['plain']:.3f} ms | {p50m['instrumented']:.3f} ms "
            f"| {(p50m['instrumented'] - p50m['plain']) * 1000:+.0f} µs "
            f"| {p99m['plain']:.3f} ms | {p99m['instrumented']:.3f} ms "
            f"| {(p99m['instrumented'] - p99m['plain']) * 1000:+.0f} µs "
            f"| {ratem['plain']:,.0f} | {ratem['instrumented']:,.0f} "
            f"| {ratem['instrumented'] / ratem['plain']:.3f} |"
        )


if __name__ == "__main__":
    main()
