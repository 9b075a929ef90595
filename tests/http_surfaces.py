"""What the ASGI and WSGI tests share: finding records, and the load and privacy drives."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from inferobs.record import Invocation

from .helpers import Collect


class ThreadedServer:
    """A WSGI app behind werkzeug's threaded server, on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def by_route(sink: Collect, route: str) -> list[Invocation]:
    return [r for r in sink.records if (r.get("http") or {}).get("route") == route]


def settled(sink: Collect, count: int) -> None:
    """Wait for ``count`` records: a server may close a response after the client has it."""
    deadline = time.monotonic() + 10
    while len(sink.records) < count:
        assert time.monotonic() < deadline, f"{len(sink.records)} of {count} records"
        time.sleep(0.01)


def send_markers(url: str, marker: str) -> None:
    """One request with ``marker`` in its path value, query, body, headers and cookie."""
    httpx.post(
        f"{url}/predict/{marker}?q={marker}",
        json={"n": 2, "stages": {}, "text": marker},
        headers={"x-user": marker, "cookie": f"session={marker}"},
    )


def load(
    url: str, path: Callable[[int], str], total: int, in_flight: int, seed: int
) -> list[dict[str, Any]]:
    """``total`` requests, ``in_flight`` at once, each asking for its own stages (names and
    milliseconds) and tagging its number; the bodies sent."""
    rng = random.Random(seed)
    asked = [
        {"n": n, "stages": {f"s{n % 7}": rng.choice((0, 1, 2)), f"t{n % 5}": rng.choice((0, 1))}}
        for n in range(total)
    ]

    async def drive() -> None:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        gate = asyncio.Semaphore(in_flight)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

            async def one(body: dict[str, Any]) -> None:
                async with gate:
                    answer = await client.post(path(body["n"]), json=body)
                assert answer.json()["n"] == body["n"]

            await asyncio.gather(*(one(body) for body in asked))

    asyncio.run(drive())
    return asked


def check_load(sink: Collect, asked: list[dict[str, Any]]) -> None:
    """Exactly one record per request, each with exactly its own stages and tag."""
    settled(sink, len(asked))
    assert len(sink.records) == len(asked)  # none lost, none twice
    for record in sink.records:
        wanted = asked[record.tags["n"]]["stages"]
        assert set(record.stages) == set(wanted), (record.tags, record.stages)
        for name, ms in wanted.items():
            assert record.stages[name] >= ms * 0.9
    assert sorted(r.tags["n"] for r in sink.records) == list(range(len(asked)))
