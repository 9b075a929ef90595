"""Log Analytics and Azure Monitor metrics on 127.0.0.1, for the pull's tests.

An HTTP server answering the two APIs in their documented JSON shapes: the
Log Analytics query API (``POST /v1/workspaces/{id}/query``: ``{"tables":
[{"name", "columns": [{"name", "type"}], "rows"}]}``) and the metrics batch API
(``POST /subscriptions/{id}/metrics:getBatch``: ``{"values": [{"value":
[{"name", "timeseries": [{"data": [{"timeStamp", "total"}]}]}]}]}``). Of KQL
it reads what the pull's query says (the app, the time bounds, ``take``); a
metric the app does not have is the API's 400. Every request must carry the
test's bearer token; ``fail`` answers the next requests with an HTTP error.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken

TOKEN = "azure-test-bearer-token-marker"
WORKSPACE = "0f3c2a55-1b2c-4d5e-8f90-a1b2c3d4e5f6"
RESOURCE = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml/providers/"
    "Microsoft.Web/sites/scorer-app"
)


class StaticToken:
    """A TokenCredential that hands out the test's token (there is no Entra ID here)."""

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        return AccessToken(TOKEN, 4_102_444_800)


class AzurePeer:
    def __init__(self) -> None:
        # (time, app, table, message), any order
        self.rows: list[tuple[datetime, str, str, str]] = []
        self.metrics: dict[str, list[tuple[datetime, float]]] = {}  # name -> points
        self.faults: dict[str, list[int | None]] = {}  # "query" | "metrics" -> statuses
        self.requests: list[tuple[str, dict[str, Any], dict[str, list[str]]]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, route: str, status: int, times: int = 1, after: int = 0) -> None:
        with self.lock:
            self.faults.setdefault(route, []).extend([None] * after + [status] * times)

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body["query"]
        app = _found(r'AppRoleName =~ "([^"]*)"', text)
        low = _tick(_found(r"TimeGenerated >= datetime\(([^)]+)\)", text))
        high = _tick(_found(r"TimeGenerated < datetime\(([^)]+)\)", text))
        take = int(_found(r"take (\d+)", text))
        rows = sorted(
            (at, message)
            for at, row_app, _, message in self.rows
            if row_app.lower() == app.lower()
            and low <= _ticks(at) < high
            and ("inferobs.invocation" in message or "inferobs.drift_window" in message)
        )[:take]
        return {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [
                        {"name": "TimeGenerated", "type": "datetime"},
                        {"name": "Message", "type": "string"},
                    ],
                    "rows": [[_iso(at), message] for at, message in rows],
                }
            ]
        }

    def metric(self, resource: str, name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        start = datetime.fromisoformat(query["starttime"][0].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["endtime"][0].replace("Z", "+00:00"))
        data = [
            {"timeStamp": _iso(at), "total": value}
            for at, value in self.metrics[name]
            if start <= at < end
        ]
        return {
            "values": [
                {
                    "starttime": query["starttime"][0],
                    "endtime": query["endtime"][0],
                    "interval": query["interval"][0],
                    "namespace": "Microsoft.Web/sites",
                    "resourceregion": "eastus",
                    "resourceid": resource,
                    "value": [
                        {
                            "id": f"{resource}/providers/Microsoft.Insights/metrics/{name}",
                            "type": "Microsoft.Insights/metrics",
                            "name": {"value": name, "localizedValue": name},
                            "displayDescription": "",
                            "unit": "Count",
                            "timeseries": [{"metadatavalues": [], "data": data}],
                            "errorCode": "Success",
                        }
                    ],
                }
            ]
        }


def _handler(peer: AzurePeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            route = "metrics" if parts.path.endswith("metrics:getBatch") else "query"
            with peer.lock:
                peer.requests.append((route, body, query))
                queued = peer.faults.get(route)
                status = queued.pop(0) if queued else None
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
            elif status is not None:
                self._answer(status, {"error": {"code": f"Status{status}", "message": "a fault"}})
            elif route == "query" and parts.path.endswith(f"/workspaces/{WORKSPACE}/query"):
                self._answer(200, peer.query(body))
            elif route == "metrics":
                (resource,) = body["resourceids"]
                (name,) = query["metricnames"][0].split(",")
                if name not in peer.metrics:
                    error = {"code": "BadRequest", "message": f"Failed to find metric {name}"}
                    self._answer(400, {"error": error})
                else:
                    self._answer(200, peer.metric(resource, name, query))
            else:
                self._answer(404, {"error": {"code": "PathNotFoundError"}})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"the pull's query has no {pattern!r}: {text}"
    return match.group(1)


def _tick(text: str) -> int:
    """A KQL datetime literal's time, in ticks of 100 ns since 1970."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 10**7 + int((fraction + "0000000")[:7])


def _ticks(at: datetime) -> int:
    return int(at.timestamp()) * 10**7 + at.microsecond * 10


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@contextmanager
def azure_peer() -> Iterator[AzurePeer]:
    peer = AzurePeer()
    try:
        yield peer
    finally:
        peer.stop()
