"""Platform detection: what each platform's variables make of the record, and Cloud Run's
instance id from a metadata server on loopback (``GCE_METADATA_HOST``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import inferobs as obs
from inferobs.config import Settings
from inferobs.runtime import platform_of

from .helpers import collecting, noop

INSTANCE = "00bf4bf02d1c8b2e9f7a0b7dd3c8e1a6f5d4c3b2a1"


def test_each_platform_is_told_by_its_own_variables() -> None:
    assert platform_of({"AWS_LAMBDA_FUNCTION_NAME": "f"}) == "aws_lambda"
    assert platform_of({"K_SERVICE": "s", "K_REVISION": "s-1"}) == "gcp_cloud_run"
    assert platform_of({"FUNCTIONS_EXTENSION_VERSION": "~4"}) == "azure_functions"
    assert platform_of({"HOSTNAME": "abc"}) == "local"
    # on a platform the disk is not for keeping: no embedded store by default
    assert Settings.from_env({"K_SERVICE": "s"}).exporters == ("stdout",)
    assert Settings.from_env({}).exporters == ("stdout", "store")


def test_azure_functions_names_the_app_its_runtime_and_its_instance() -> None:
    runtime = obs.Runtime(
        environ={
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "WEBSITE_SITE_NAME": "scorer-app",
            "WEBSITE_INSTANCE_ID": "a1b2c3",
        }
    )
    assert (runtime.platform, runtime.function, runtime.version) == (
        "azure_functions",
        "scorer-app",
        "~4",
    )
    assert runtime.instance_id == f"a1b2c3:{os.getpid()}" and runtime.init_type == "on-demand"


class Metadata:
    """A metadata server on loopback that answers the instance id, as Google's does: only
    to requests with ``Metadata-Flavor: Google``, and saying so in its answer."""

    def __init__(self, delay_s: float = 0.0) -> None:
        asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                asked.append(self.path)
                time.sleep(delay_s)
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.send_response(403)
                    self.end_headers()
                    return
                body = INSTANCE.encode() if self.path.endswith("/instance/id") else b""
                self.send_response(200 if body else 404)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.asked = asked
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata() -> Iterator[Metadata]:
    server = Metadata()
    try:
        yield server
    finally:
        server.stop()


def cloud_run(host: str) -> obs.Runtime:
    return obs.Runtime(
        environ={"K_SERVICE": "ranker", "K_REVISION": "ranker-00042-xyz", "GCE_METADATA_HOST": host}
    )


def test_cloud_run_records_carry_the_instance_id_the_metadata_server_gives(
    metadata: Metadata,
) -> None:
    sink = collecting()
    runtime = cloud_run(metadata.host)
    handler = obs.instrument(noop, runtime=runtime)  # init: asks once
    deadline = time.monotonic() + 5
    while runtime.instance_id.startswith("gcp_cloud_run:"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    handler({}, None)
    handler({}, None)
    first, second = sink.records
    assert first.instance_id == second.instance_id == f"{INSTANCE}:{os.getpid()}"
    assert (first.platform, first.function, first.version) == (
        "gcp_cloud_run",
        "ranker",
        "ranker-00042-xyz",
    )
    assert first.cold_start and not second.cold_start
    assert metadata.asked == ["/computeMetadata/v1/instance/id"]  # once, at init


def test_a_slow_metadata_server_never_holds_a_request_up() -> None:
    slow = Metadata(delay_s=2.0)
    try:
        sink = collecting()
        runtime = cloud_run(slow.host)
        handler = obs.instrument(noop, runtime=runtime)
        handler({}, None)  # at once: had it waited for the answer, it would carry the id
    finally:
        slow.stop()
    (record,) = sink.records
    assert record.instance_id == f"gcp_cloud_run:{os.getpid()}"


def test_no_metadata_server_leaves_the_process_as_the_instance() -> None:
    import socket

    from inferobs.gcp_instance import instance_id

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    host = f"127.0.0.1:{probe.getsockname()[1]}"
    probe.close()  # nothing listens there now
    assert instance_id(host) is None
