"""AWS on 127.0.0.1 for the pull's tests: moto's server, behind a small proxy of ours.

moto's server speaks the real wire protocols of CloudWatch Logs, CloudWatch
and Lambda, so boto3 is pointed at it (``AWS_ENDPOINT_URL``) and nothing
leaves loopback. Two things moto cannot do are done by the proxy in front of
it, which forwards everything else unchanged:

- Lambda's provisioned-concurrency calls (moto 5 does not implement them):
  ``GET /2019-09-30/functions/NAME/provisioned-concurrency`` is answered in
  the API's documented JSON shape (``ProvisionedConcurrencyConfigs``) from
  what the test set in `AwsPeer.provisioned`;
- faults: the next requests of an operation can be answered with an AWS
  error (throttling, expired credentials) in the JSON protocol's shape.

moto refuses log events older than 14 days: tests seed recent ones.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


class AwsPeer:
    """moto on a loopback port and the proxy that tests point boto3 at (`url`)."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_address = (host, port)
        # function name -> [{qualifier, requested, allocated, status}]
        self.provisioned: dict[str, list[dict[str, Any]]] = {}
        # operation (X-Amz-Target's, else the path) -> what to answer its next requests with,
        # in order: an error (status, code), or None to pass one request through
        self.faults: dict[str, list[tuple[int, str] | None]] = {}
        self.requests: list[tuple[str, bytes]] = []  # every operation asked, and its body
        self.lock = threading.Lock()
        self.proxy = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.proxy.daemon_threads = True
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.proxy.server_address[1]}"

    def stop(self) -> None:
        self.proxy.shutdown()
        self.proxy.server_close()
        self.moto.stop()

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto, for seeding (faults never apply)."""
        return boto3.client(
            service,
            endpoint_url=f"http://{self.moto_address[0]}:{self.moto_address[1]}",
            region_name=REGION,
            aws_access_key_id="seeding",
            aws_secret_access_key="seeding",
        )

    def fail(self, operation: str, status: int, code: str, times: int = 1, after: int = 0) -> None:
        """Answer ``times`` requests of ``operation`` with error ``code``, after letting
        ``after`` more through."""
        with self.lock:
            queue = self.faults.setdefault(operation, [])
            queue.extend([None] * after + [(status, code)] * times)

    def function(
        self,
        name: str,
        *,
        memory_mb: int = 1024,
        arch: str = "x86_64",
        timeout_s: int = 30,
        environment: dict[str, str] | None = None,
    ) -> None:
        """A Lambda function as moto keeps it (its code is never run)."""
        iam = self.client("iam")
        try:
            role = iam.get_role(RoleName="inferobs-test")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName="inferobs-test", AssumeRolePolicyDocument="{}")
            role = role["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
            MemorySize=memory_mb,
            Architectures=[arch],
            Timeout=timeout_s,
            Environment={"Variables": environment or {}},
        )

    def invocations_metric(self, function: str, value: float, ago: timedelta) -> None:
        """One point of Lambda's ``Invocations`` for ``function``, ``ago`` from now."""
        self.client("cloudwatch").put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    "Value": value,
                    "Timestamp": datetime.now(timezone.utc) - ago,
                }
            ],
        )

    def log_events(self, group: str, stream: str, events: Iterable[tuple[int, str]]) -> int:
        """Put (epoch ms, message) events into ``group``/``stream``, in timestamp order and
        in PutLogEvents-sized calls; how many were put."""
        logs = self.client("logs")
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        count = 0
        for batch in _batches(sorted(events, key=lambda e: e[0])):
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": t, "message": m} for t, m in batch],
            )
            count += len(batch)
        return count


def _batches(events: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """PutLogEvents' limits: 10,000 events, 1 MB (each event counted with 26 bytes more)."""
    batch: list[tuple[int, str]] = []
    size = 0
    for event in events:
        cost = len(event[1].encode()) + 26
        if batch and (len(batch) == 10_000 or size + cost > 1_000_000):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += cost
    if batch:
        yield batch


def _handler(peer: AwsPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = self.headers.get("X-Amz-Target", "")
            operation = target.rsplit(".", 1)[-1] if target else self.path.split("?")[0]
            with peer.lock:
                peer.requests.append((operation, body))
                queued = peer.faults.get(operation)
                fault = queued.pop(0) if queued else None
            if fault is not None:
                status, code = fault
                self._answer(status, {"__type": code, "message": f"{code} (a test's fault)"})
                return
            if "/provisioned-concurrency" in self.path:
                name = self.path.split("/functions/", 1)[1].split("/", 1)[0]
                configs = [
                    {
                        "FunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{name}:"
                        f"{entry['qualifier']}",
                        "RequestedProvisionedConcurrentExecutions": entry["requested"],
                        "AvailableProvisionedConcurrentExecutions": entry["allocated"],
                        "AllocatedProvisionedConcurrentExecutions": entry["allocated"],
                        "Status": entry.get("status", "READY"),
                        "LastModified": "2026-11-30T10:00:00+0000",
                    }
                    for entry in peer.provisioned.get(name, [])
                ]
                self._answer(200, {"ProvisionedConcurrencyConfigs": configs})
                return
            upstream = http.client.HTTPConnection(*peer.moto_address, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-ErrorType", str(document.get("__type", "")))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _relay

    return Handler


@contextmanager
def aws_peer() -> Iterator[AwsPeer]:
    peer = AwsPeer()
    try:
        yield peer
    finally:
        peer.stop()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def asked(peer: AwsPeer, operation: str) -> list[dict[str, Any]]:
    """The JSON bodies of the ``operation`` requests the peer got, in order."""
    return [json.loads(body) for name, body in peer.requests if name == operation]
