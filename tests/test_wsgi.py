"""The WSGI middleware under a real threaded WSGI server (werkzeug's) on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, Response, abort, request, stream_with_context

import inferobs as obs

from .helpers import Collect, collecting
from .http_surfaces import ThreadedServer, by_route, check_load, load, send_markers, settled

MARKER = "privacy-marker-wsgi-51c2"


def app_under_test() -> Flask:
    app = Flask(__name__)
    app.wsgi_app = obs.InferobsWSGIMiddleware(app.wsgi_app, model="ranker")  # type: ignore[method-assign]

    @app.post("/predict/<model>")
    def predict(model: str) -> dict[str, Any]:
        asked = request.get_json()
        obs.tag(n=asked["n"])
        for name, ms in asked["stages"].items():
            with obs.stage(name):
                time.sleep(ms / 1000)
        return {"model": model, "n": asked["n"]}

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                time.sleep(0.05)
                with obs.stage("chunk"):
                    yield b"x" * 1000

        return Response(stream_with_context(chunks()))

    @app.get("/forever")
    def forever() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(200):
                yield b"y" * 4096
                time.sleep(0.02)

        return Response(chunks())

    @app.get("/unavailable")
    def unavailable() -> tuple[str, int]:
        return "", 503

    @app.get("/missing")
    def missing() -> str:
        abort(404)

    @app.get("/slow")
    def slow() -> dict[str, str]:
        time.sleep(0.4)
        return {"done": "late"}

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("the handler's own bug")

    return app


@pytest.fixture
def sink() -> Collect:
    return collecting()


@pytest.fixture
def served(sink: Collect) -> Iterator[ThreadedServer]:
    running = ThreadedServer(app_under_test())
    try:
        yield running
    finally:
        running.stop()


def test_a_request_is_recorded_with_its_route_template_status_and_sizes(
    served: ThreadedServer, sink: Collect
) -> None:
    body = {"n": 1, "stages": {"preprocess": 5, "inference": 20}}
    answer = httpx.post(f"{served.url}/predict/bert?user=someone", json=body)
    assert answer.status_code == 200
    settled(sink, 1)
    (record,) = sink.records
    assert record.status == "ok" and record.model == "ranker"
    assert record["http"] == {
        "method": "POST",
        "route": "/predict/<model>",
        "status_code": 200,
        "request_bytes": len(answer.request.content),
        "response_bytes": len(answer.content),
    }
    assert record.stages["preprocess"] >= 5 and record.stages["inference"] >= 20


def test_server_errors_are_errors_and_client_errors_are_not(
    served: ThreadedServer, sink: Collect
) -> None:
    with httpx.Client(base_url=served.url) as client:
        assert client.get("/unavailable").status_code == 503
        assert client.get("/missing").status_code == 404
        assert client.get("/boom").status_code == 500  # Flask answers 500 for the exception
    settled(sink, 3)
    unavailable, missing, boom = (
        by_route(sink, r)[0] for r in ("/unavailable", "/missing", "/boom")
    )
    assert (unavailable.status, unavailable["http"]["status_code"]) == ("error", 503)
    assert (missing.status, missing["http"]["status_code"]) == ("ok", 404)
    assert (boom.status, boom["http"]["status_code"]) == ("error", 500)


def test_a_streamed_body_is_timed_to_its_last_byte_with_its_stages(
    served: ThreadedServer, sink: Collect
) -> None:
    assert len(httpx.get(f"{served.url}/stream").content) == 5000
    settled(sink, 1)
    (record,) = by_route(sink, "/stream")
    assert record.duration_ms >= 250
    assert record["http"]["response_bytes"] == 5000
    assert "chunk" in record.stages  # stages held while the body streams are the request's


def test_a_request_past_its_deadline_gets_its_timeout_line_and_no_other(sink: Collect) -> None:
    obs.configure(exporters=[sink], request_timeout_s=0.2, timeout_margin_ms=50)
    running = ThreadedServer(app_under_test())
    try:
        assert httpx.get(f"{running.url}/slow").status_code == 200
    finally:
        running.stop()
    settled(sink, 1)
    (timeout,) = sink.records
    assert (timeout.kind, timeout.status, timeout["http"]["method"]) == ("timeout", "error", "GET")


def test_a_client_that_leaves_mid_response_is_recorded_as_disconnected(
    served: ThreadedServer, sink: Collect
) -> None:
    with httpx.Client() as client, client.stream("GET", f"{served.url}/forever") as answer:
        next(answer.iter_bytes())
    settled(sink, 1)
    (record,) = by_route(sink, "/forever")
    assert record["http"]["disconnected"] is True
    assert record["http"]["response_bytes"] < 200 * 4096


def test_nothing_from_bodies_headers_or_query_strings_reaches_a_record(
    served: ThreadedServer, sink: Collect
) -> None:
    send_markers(served.url, MARKER)
    settled(sink, 1)
    (record,) = sink.records
    assert MARKER not in record.to_json()


def test_many_requests_at_once_each_keep_their_own_stages_and_tags(
    served: ThreadedServer, sink: Collect
) -> None:
    asked = load(served.url, lambda n: "/predict/m", 10_000, 64, 9)
    check_load(sink, asked)


def test_a_body_nobody_closes_is_recorded_at_its_last_byte(sink: Collect) -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Response as Adapted

    app = app_under_test()
    environ = EnvironBuilder(path="/stream", method="GET").get_environ()
    answer = Adapted.from_app(app.wsgi_app, environ)  # what serverless-wsgi does: no close()
    assert answer.get_data() == b"x" * 5000
    (record,) = sink.records
    assert record["http"]["route"] == "/stream" and record["http"]["response_bytes"] == 5000
    assert "disconnected" not in record["http"]
