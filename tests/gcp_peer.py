"""Cloud Logging and Cloud Monitoring on 127.0.0.1, for the pull's tests.

gRPC servers built with ``grpc.method_handlers_generic_handler`` and the
client libraries' own message classes for (de)serialisation (the wheels ship
proto-plus classes, not ``.proto`` files or server stubs). They hold entries
and series the test gives them, and answer the part of Cloud Logging's filter
language the pull speaks (the service's name, the time bounds; our event
names are matched by the payload) with real page tokens, so the official
clients page through them on an insecure channel. ``fail`` answers the next
requests of a method with a gRPC status instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.cloud.logging_v2.types import ListLogEntriesRequest, ListLogEntriesResponse, LogEntry
from google.cloud.monitoring_v3.types import (
    ListTimeSeriesRequest,
    ListTimeSeriesResponse,
    Point,
    TimeSeries,
)

LOGGING = "google.logging.v2.LoggingServiceV2"
MONITORING = "google.monitoring.v3.MetricService"


class GcpPeer:
    """One gRPC server serving both services on a loopback port (`address`)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []  # in timestamp order
        self.series: dict[str, list[TimeSeries]] = {}  # metric type -> its series
        self.faults: dict[str, list[grpc.StatusCode | None]] = {}
        self.requests: list[tuple[str, Any]] = []  # method, request
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    LOGGING,
                    {
                        "ListLogEntries": grpc.unary_unary_rpc_method_handler(
                            self._list_log_entries,
                            request_deserializer=ListLogEntriesRequest.deserialize,
                            response_serializer=ListLogEntriesResponse.serialize,
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    MONITORING,
                    {
                        "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                            self._list_time_series,
                            request_deserializer=ListTimeSeriesRequest.deserialize,
                            response_serializer=ListTimeSeriesResponse.serialize,
                        )
                    },
                ),
            )
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.stop(grace=None)

    def fail(self, method: str, code: grpc.StatusCode, times: int = 1, after: int = 0) -> None:
        with self.lock:
            self.faults.setdefault(method, []).extend([None] * after + [code] * times)

    def _fault(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.requests.append((method, request))
            queued = self.faults.get(method)
            code = queued.pop(0) if queued else None
        if code is not None:
            context.abort(code, f"{code.name} (a test's fault)")

    def _list_log_entries(
        self, request: ListLogEntriesRequest, context: grpc.ServicerContext
    ) -> ListLogEntriesResponse:
        self._fault("ListLogEntries", request, context)
        if list(request.resource_names) != [f"projects/{PROJECT}"]:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not this test's project")
        service, low, high = (
            _found(pattern, request.filter)
            for pattern in (
                'service_name = "([^"]+)"',
                'timestamp >= "([^"]+)"',
                'timestamp < "([^"]+)"',
            )
        )
        if not (service and low and high) or request.order_by != "timestamp asc":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a filter this peer does not read")
        start, end = _moment(low), _moment(high)
        matching = [
            entry
            for entry in self.entries
            if entry.resource.labels["service_name"] == service
            and start <= entry.timestamp < end
            and _ours(entry)
        ]
        offset = int(request.page_token) if request.page_token else 0
        if offset > len(matching):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page token expired")
        size = request.page_size or 50
        page = matching[offset : offset + size]
        more = offset + size < len(matching)
        return ListLogEntriesResponse(
            entries=page, next_page_token=str(offset + size) if more else ""
        )

    def _list_time_series(
        self, request: ListTimeSeriesRequest, context: grpc.ServicerContext
    ) -> ListTimeSeriesResponse:
        self._fault("ListTimeSeries", request, context)
        metric = _found('metric.type = "([^"]+)"', request.filter)
        if not metric or not request.aggregation.alignment_period:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a filter this peer does not read")
        start, end = request.interval.start_time, request.interval.end_time
        found = []
        for series in self.series.get(metric, []):
            points = [p for p in series.points if start < p.interval.end_time <= end]
            if points:
                found.append(
                    TimeSeries(metric=series.metric, resource=series.resource, points=points)
                )
        return ListTimeSeriesResponse(time_series=found)


PROJECT = "inferobs-test"


def _found(pattern: str, text: str) -> str:
    """What ``pattern``'s group matched in ``text``; empty when it is not there."""
    match = re.search(pattern, text)
    return match.group(1) if match else ""


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00")


def _ours(entry: LogEntry) -> bool:
    """What the pull's filter asks: our event in the JSON payload, or in the text."""
    if "json_payload" in entry:
        return str(entry.json_payload.get("event", "")).startswith("inferobs.")
    return "inferobs." in entry.text_payload


def entry_of(line: dict[str, Any] | str, at: datetime, service: str) -> LogEntry:
    """A log entry as Cloud Run writes one for a stdout line: JSON as a Struct, else text."""
    payload: dict[str, Any] = (
        {"json_payload": line} if isinstance(line, dict) else {"text_payload": line}
    )
    return LogEntry(
        log_name=f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
        resource={
            "type": "cloud_run_revision",
            "labels": {"service_name": service, "revision_name": f"{service}-00001-abc"},
        },
        timestamp=at,
        **payload,
    )


def series_of(metric: str, service: str, values: list[tuple[datetime, float]]) -> TimeSeries:
    return TimeSeries(
        metric={"type": metric},
        resource={"type": "cloud_run_revision", "labels": {"service_name": service}},
        points=[
            Point(
                interval={"end_time": at},
                value={"double_value": value},
            )
            for at, value in values
        ],
    )


@contextmanager
def gcp_peer() -> Iterator[GcpPeer]:
    peer = GcpPeer()
    try:
        yield peer
    finally:
        peer.stop()


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
