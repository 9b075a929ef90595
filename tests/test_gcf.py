"""``@obs.instrument`` on Google Cloud Run functions, under functions-framework's own app
served on 127.0.0.1 and driven over HTTP: HTTP and CloudEvent functions, with and
without ``Function-Execution-Id``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import httpx
import pytest

from .helpers import Collect, collecting
from .http_surfaces import ThreadedServer, check_load, load, send_markers, settled

SOURCE = """
import functions_framework
import inferobs as obs


@functions_framework.http
@obs.instrument(model="ranker")
def score(request):
    with obs.stage("inference"):
        body = request.get_json(silent=True) or {}
    if body.get("fail"):
        return "no", 503
    return {"score": 0.5}


@functions_framework.http
@obs.instrument
def staged(request):
    import time
    asked = request.get_json()
    obs.tag(n=asked["n"])
    for name, ms in asked["stages"].items():
        with obs.stage(name):
            time.sleep(ms / 1000)
    return {"n": asked["n"]}


@functions_framework.cloud_event
@obs.instrument(model="ranker")
def on_upload(cloud_event):
    with obs.stage("inference"):
        pass
"""


@pytest.fixture
def sink() -> Collect:
    return collecting()


def served(tmp_path: Path, target: str, signature: str) -> ThreadedServer:
    source = tmp_path / "main.py"
    source.write_text(SOURCE)
    return ThreadedServer(functions_framework.create_app(target, str(source), signature))  # type: ignore[no-untyped-call]


@pytest.fixture
def http_function(tmp_path: Path, sink: Collect) -> Iterator[ThreadedServer]:
    running = served(tmp_path, "score", "http")
    yield running
    running.stop()


def test_an_http_function_is_named_by_its_execution_id_with_its_status(
    http_function: ThreadedServer, sink: Collect
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with httpx.Client(base_url=http_function.url) as client:
        client.post("/", json={}, headers={"Function-Execution-Id": "exec-1"})
        # functions-framework gives a request without one an execution id of its own
        client.post("/", json={}, headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"})
        assert client.post("/", json={"fail": True}).status_code == 503
    settled(sink, 3)
    executed, traced, failed = sink.records
    assert (executed.id, executed["http"]["id_source"]) == ("exec-1", "execution")
    assert traced["http"]["id_source"] == "execution" and traced.trace_id == trace
    assert executed["http"]["status_code"] == 200 and executed["http"]["method"] == "POST"
    assert "inference" in executed.stages and executed.model == "ranker"
    assert (failed.status, failed["http"]["status_code"]) == ("error", 503)


def test_without_an_execution_id_the_trace_then_a_generated_id_names_a_request() -> None:
    from flask import Request
    from werkzeug.test import EnvironBuilder

    from inferobs.instrument.function_requests import request_of

    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [("X-Cloud-Trace-Context", f"{trace}/9")]
    traced = Request(EnvironBuilder(headers=headers).get_environ())
    assert request_of(traced) == (trace, trace, {"method": "GET", "id_source": "trace"})
    plain = Request(EnvironBuilder(method="POST").get_environ())
    generated, no_trace, http = request_of(plain)
    assert generated is not None and len(generated) == 24 and no_trace is None
    assert http == {"method": "POST", "id_source": "generated"}


def test_a_cloudevent_function_is_named_by_its_event_id(tmp_path: Path, sink: Collect) -> None:
    running = served(tmp_path, "on_upload", "cloudevent")
    try:
        headers = {
            "ce-id": "event-77",
            "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
            "ce-type": "google.cloud.storage.object.v1.finalized",
            "ce-specversion": "1.0",
            "Content-Type": "application/json",
        }
        answer = httpx.post(running.url, content=json.dumps({"name": "x.jpg"}), headers=headers)
        assert answer.status_code == 200
    finally:
        running.stop()
    settled(sink, 1)
    (record,) = sink.records
    assert record.id == "event-77" and "inference" in record.stages and "http" not in record


MARKER = "privacy-marker-gcf-0e1d"


def test_nothing_from_bodies_headers_or_query_strings_reaches_a_record(
    http_function: ThreadedServer, sink: Collect
) -> None:
    send_markers(http_function.url, MARKER)
    settled(sink, 1)
    (record,) = sink.records
    assert MARKER not in record.to_json()


def test_many_requests_at_once_each_keep_their_own_stages_and_tags(
    tmp_path: Path, sink: Collect
) -> None:
    running = served(tmp_path, "staged", "http")
    try:
        asked = load(running.url, lambda n: "/", 10_000, 64, 14)
    finally:
        running.stop()
    check_load(sink, asked)
