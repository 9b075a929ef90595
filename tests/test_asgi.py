"""The ASGI middleware under a real uvicorn server on 127.0.0.1, driven over HTTP by httpx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

import inferobs as obs

from .helpers import Collect, collecting
from .http_surfaces import by_route, check_load, load, send_markers, settled

MARKER = "privacy-marker-7f3a"


def app_under_test() -> FastAPI:
    app = FastAPI()
    app.add_middleware(obs.InferobsMiddleware, model="ranker", model_version="3")

    @app.post("/predict/{model}")
    async def predict(model: str, request: Request) -> dict[str, Any]:
        asked = await request.json()
        obs.tag(n=asked["n"])
        for name, ms in asked["stages"].items():
            with obs.stage(name):
                await asyncio.sleep(ms / 1000)
        return {"model": model, "n": asked["n"]}

    @app.post("/threaded/{model}")
    def threaded(model: str, asked: dict[str, Any]) -> dict[str, Any]:
        obs.tag(n=asked["n"])  # a plain def: Starlette runs it in a thread of its pool
        for name, ms in asked["stages"].items():
            with obs.stage(name):
                time.sleep(ms / 1000)
        return {"model": model, "n": asked["n"]}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                time.sleep(0.05)
                yield b"x" * 1000

        return StreamingResponse(chunks())

    @app.get("/forever")
    async def forever() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(200):
                yield b"y" * 100
                await asyncio.sleep(0.02)

        return StreamingResponse(chunks())

    @app.get("/unavailable")
    async def unavailable() -> Response:
        return Response(status_code=503)

    @app.get("/missing")
    async def missing() -> Response:
        raise HTTPException(status_code=404)

    @app.get("/boom")
    async def boom() -> Response:
        raise ValueError("the handler's own bug")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.4)
        return {"done": "late"}

    return app


class Served:
    """uvicorn serving ``app`` on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def sink() -> Collect:
    return collecting()


@pytest.fixture
def served(sink: Collect) -> Iterator[Served]:
    running = Served(app_under_test())
    try:
        yield running
    finally:
        running.stop()


def test_a_request_is_recorded_with_its_route_template_status_and_sizes(
    served: Served, sink: Collect
) -> None:
    body = {"n": 1, "stages": {"preprocess": 5, "inference": 20}}
    answer = httpx.post(f"{served.url}/predict/bert?user=someone", json=body)
    assert answer.status_code == 200
    settled(sink, 1)
    (record,) = sink.records
    assert record.status == "ok" and record.model == "ranker" and record.model_version == "3"
    assert record["http"] == {
        "method": "POST",
        "route": "/predict/{model}",
        "status_code": 200,
        "request_bytes": len(answer.request.content),
        "response_bytes": len(answer.content),
    }
    assert record.stages["preprocess"] >= 5 and record.stages["inference"] >= 20
    assert record.tags == {"n": 1} and record.id and len(record.id) == 24


def test_server_errors_are_errors_client_errors_are_not_and_an_exception_is_named(
    served: Served, sink: Collect
) -> None:
    with httpx.Client(base_url=served.url) as client:
        assert client.get("/unavailable").status_code == 503
        assert client.get("/missing").status_code == 404
        assert client.get("/boom").status_code == 500
    settled(sink, 3)
    unavailable, missing, boom = (
        by_route(sink, r)[0] for r in ("/unavailable", "/missing", "/boom")
    )
    assert (unavailable.status, unavailable.error_type) == ("error", None)
    assert unavailable["http"]["status_code"] == 503
    assert (missing.status, missing["http"]["status_code"]) == ("ok", 404)
    assert (boom.status, boom.error_type, boom["http"]["status_code"]) == (
        "error",
        "ValueError",
        500,
    )


def test_a_streamed_response_is_timed_to_its_last_byte(served: Served, sink: Collect) -> None:
    answer = httpx.get(f"{served.url}/stream")
    assert len(answer.content) == 5000
    settled(sink, 1)  # the client may have the last byte before the server's send returns
    (record,) = by_route(sink, "/stream")
    assert record.duration_ms >= 250  # five chunks 50 ms apart, not the handler's return
    assert record["http"]["response_bytes"] == 5000


def test_a_client_that_leaves_mid_response_is_recorded_as_disconnected(
    served: Served, sink: Collect
) -> None:
    with httpx.Client() as client, client.stream("GET", f"{served.url}/forever") as answer:
        next(answer.iter_bytes())  # one chunk, then away
    deadline = time.monotonic() + 5
    while not by_route(sink, "/forever"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (record,) = by_route(sink, "/forever")
    assert record["http"]["disconnected"] is True
    assert record["http"]["response_bytes"] < 200 * 100
    assert record.duration_ms < 3000  # not the four seconds the whole stream takes


def test_a_request_past_its_deadline_gets_its_timeout_line(sink: Collect) -> None:
    obs.configure(exporters=[sink], request_timeout_s=0.2, timeout_margin_ms=50)
    running = Served(app_under_test())
    try:
        assert httpx.get(f"{running.url}/slow").status_code == 200
    finally:
        running.stop()
    (timeout,) = sink.records  # the timeout line is the request's record: no second one
    assert (timeout.kind, timeout.status, timeout["http"]["method"]) == ("timeout", "error", "GET")


def test_the_callers_trace_is_joined_and_its_request_id_kept(served: Served, sink: Collect) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    httpx.get(
        f"{served.url}/missing",
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01", "x-request-id": "req-42"},
    )
    httpx.get(f"{served.url}/missing", headers={"x-cloud-trace-context": f"{trace.upper()}/1;o=1"})
    settled(sink, 2)
    first, second = sink.records
    assert (first.trace_id, first.id) == (trace, "req-42")
    assert second.trace_id == trace and second.id != "req-42"


def test_nothing_from_bodies_headers_or_query_strings_reaches_a_record(
    served: Served, sink: Collect
) -> None:
    send_markers(served.url, MARKER)
    settled(sink, 1)
    (record,) = sink.records
    assert MARKER not in record.to_json()


def test_many_requests_at_once_each_keep_their_own_stages_and_tags(
    served: Served, sink: Collect
) -> None:
    asked = load(served.url, lambda n: "/threaded/m" if n % 3 == 0 else "/predict/m", 10_000, 64, 5)
    check_load(sink, asked)


def test_opentelemetrys_context_is_left_as_it_is(sink: Collect) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("the app's own")
    app = FastAPI()
    app.add_middleware(obs.InferobsMiddleware)
    seen: dict[str, Any] = {}

    @app.get("/x")
    async def x() -> dict[str, str]:
        seen["inside"] = trace.get_current_span()
        return {}

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        # what OpenTelemetry's ASGI instrumentation does: a server span around the app
        with tracer.start_as_current_span("GET /x") as span:
            seen["outer"] = span
            await app(scope, receive, send)

    async def call() -> None:
        transport = httpx.ASGITransport(app=traced)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await client.get("/x", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})

    asyncio.run(call())
    assert seen["inside"] is seen["outer"]  # their context, untouched by ours
    (record,) = sink.records
    assert record.trace_id == "ab" * 16


def test_a_request_made_in_process_inside_another_is_a_record_of_its_own(sink: Collect) -> None:
    inner = FastAPI()
    inner.add_middleware(obs.InferobsMiddleware, model="inner")

    @inner.get("/fails")
    async def fails() -> Response:
        return Response(status_code=500)

    outer = FastAPI()
    outer.add_middleware(obs.InferobsMiddleware, model="outer")

    @outer.get("/calls")
    async def calls() -> dict[str, int]:
        transport = httpx.ASGITransport(app=inner)
        async with httpx.AsyncClient(transport=transport, base_url="http://inner") as client:
            code = (await client.get("/fails")).status_code  # handled: the outer answers 200
        return {"inner": code}

    async def call() -> None:
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://outer") as client:
            assert (await client.get("/calls")).json() == {"inner": 500}

    asyncio.run(call())
    by_model = {r.model: r for r in sink.records}
    assert by_model["inner"].status == "error" and by_model["inner"]["http"]["status_code"] == 500
    assert by_model["outer"].status == "ok" and by_model["outer"]["http"]["status_code"] == 200
