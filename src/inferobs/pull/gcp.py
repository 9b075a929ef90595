"""Google Cloud (Cloud Run services, Cloud Run functions, Cloud Functions): our lines from
Cloud Logging and the service's series from Cloud Monitoring, with Application Default
Credentials.

- **Logs** (Cloud Logging ``ListLogEntries``, page by page): Cloud Run keeps a
  JSON line written to stdout as the entry's ``jsonPayload``, a protobuf
  Struct, in which every number is a double. Our nanosecond ``start`` comes
  back as a double above 2^53, exact to 256 ns only: it is read back to the
  microsecond (the nearest one): the same line fetched twice comes back alike,
  and the reader takes two records of one id and kind with starts under a
  microsecond apart for one (`inferobs.read.SAME_NS`), so a record also kept
  elsewhere to the nanosecond counts once too. Whole-number doubles become
  integers again, as they were written. A line Cloud Logging did not parse (a
  prefix before the JSON) is its ``textPayload`` and read as a log line is.
- **Metrics** (Cloud Monitoring ``ListTimeSeries``): Cloud Run's request count,
  request latencies, instance count, billable instance time and startup
  latencies, aligned to 1 minute and summed (or the percentile taken) over
  revisions.

Throttling (``RESOURCE_EXHAUSTED``) and an unavailable service are retried with
Google's documented truncated exponential backoff (1 s doubling to 32 s, for at
most 5 minutes a request). Only the gRPC status code of an error is shown, in
our words. ``INFEROBS_GCP_LOGGING_ENDPOINT`` and ``INFEROBS_GCP_MONITORING_ENDPOINT``
(``host:port``) point the clients elsewhere: a private endpoint over TLS, or a
loopback server (an emulator, the tests) over plain gRPC without credentials.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from . import Feed, Page, PullError, Summary, failing, open_store, run_feed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from . import Progress
    from .plan import Piece

__all__ = ["METRICS", "pull"]

DAY_NS = 86_400 * 1_000_000_000
LOGGING_ENDPOINT = "INFEROBS_GCP_LOGGING_ENDPOINT"
MONITORING_ENDPOINT = "INFEROBS_GCP_MONITORING_ENDPOINT"
# metric type -> (per-series aligner, cross-series reducer, the statistic stored)
METRICS: dict[str, tuple[str, str, str]] = {
    "run.googleapis.com/request_count": ("ALIGN_DELTA", "REDUCE_SUM", "Sum"),
    "run.googleapis.com/request_latencies": ("ALIGN_DELTA", "REDUCE_PERCENTILE_99", "p99"),
    "run.googleapis.com/container/instance_count": ("ALIGN_MAX", "REDUCE_SUM", "Maximum"),
    "run.googleapis.com/container/billable_instance_time": ("ALIGN_DELTA", "REDUCE_SUM", "Sum"),
    "run.googleapis.com/container/startup_latencies": (
        "ALIGN_DELTA",
        "REDUCE_PERCENTILE_99",
        "p99",
    ),
}
PERIOD_S = 60
_PAGE_ENTRIES = 1000  # ListLogEntries' largest page
_EVENTS = ("inferobs.invocation", "inferobs.drift_window")
# fields written as whole nanoseconds: read back to the microsecond a double carries exactly
_NANOSECONDS = ("start",)
_PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")


def pull(
    function: str,
    store: str,
    since_ns: int,
    until_ns: int,
    *,
    project: str | None = None,
    progress: Progress | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Pull the Cloud Run service (or function) ``function``'s lines and series into ``store``."""
    summary = summary if summary is not None else Summary()
    credentials, default_project = _credentials()
    logging_client = _logging_client(credentials)
    monitoring_client = _monitoring_client(credentials)
    project = _project(project, default_project)
    landing = open_store(store)
    summary.expect("Cloud Logging", "Cloud Monitoring")
    try:
        with failing(summary, "Cloud Logging", _words):
            logs = _Logs(logging_client, project, function)
            run_feed(landing, logs, (since_ns, until_ns), summary, progress)
        with failing(summary, "Cloud Monitoring", _words):
            metrics = _Metrics(monitoring_client, project, function)
            run_feed(landing, metrics, (since_ns, until_ns), summary, progress)
    finally:
        landing.close()
    return summary


class _Logs(Feed):
    title = "Cloud Logging"
    longest_call_ns = 60 * 60 * 1_000_000_000  # Cloud Run's longest request timeout

    def __init__(self, client: Any, project: str, service: str) -> None:
        self.client = client
        self.project = project
        self.function = service
        self.source = f"gcp:{project}:{service}:logs"

    def filter(self, piece: Piece) -> str:
        low, high = piece
        name = json.dumps(self.function)
        ours = " OR ".join(f'jsonPayload.event = "{event}"' for event in _EVENTS)
        text = " OR ".join(f'textPayload:"{event}"' for event in _EVENTS)
        return (
            f'((resource.type = "cloud_run_revision" AND resource.labels.service_name = {name})'
            f' OR (resource.type = "cloud_function" AND resource.labels.function_name = {name}))'
            f' AND timestamp >= "{_rfc3339(low)}" AND timestamp < "{_rfc3339(high)}"'
            f" AND ({ours} OR {text})"
        )

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        from google.cloud.logging_v2.types import ListLogEntriesRequest, LogEntry
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

        request = ListLogEntriesRequest(
            resource_names=[f"projects/{self.project}"],
            filter=self.filter(piece),
            order_by="timestamp asc",
            page_size=_PAGE_ENTRIES,
        )
        again = False
        while True:
            request.page_token = token or ""
            try:
                response = _first_page(
                    self.client.list_log_entries(request=request, retry=_retry())
                )
            except Exception as exc:
                if token and _status(exc) == "INVALID_ARGUMENT":
                    token, again = None, True  # a kept page token that has expired: start over
                    continue
                raise
            lines = []
            for entry in response.entries:
                message = LogEntry.pb(entry)
                kind = message.WhichOneof("payload")
                if kind == "json_payload":
                    data = _numbers(MessageToDict(message.json_payload))
                    lines.append(json.dumps(data, separators=(",", ":")))
                elif kind == "text_payload":
                    lines.append(message.text_payload)
            token = response.next_page_token or None
            yield Page(token, again=again, lines=lines)
            again = False
            if token is None:
                return


class _Metrics(Feed):
    title = "Cloud Monitoring"
    piece_ns = 7 * DAY_NS
    holds_records = False

    def __init__(self, client: Any, project: str, service: str) -> None:
        self.client = client
        self.project = project
        self.function = service
        self.source = f"gcp:{project}:{service}:metrics"

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        from google.cloud.monitoring_v3.types import Aggregation, ListTimeSeriesRequest
        from google.protobuf import duration_pb2, timestamp_pb2  # type: ignore[import-untyped]

        low, high = piece
        interval = {
            "start_time": timestamp_pb2.Timestamp(seconds=low // 10**9, nanos=low % 10**9),
            "end_time": timestamp_pb2.Timestamp(seconds=high // 10**9, nanos=high % 10**9),
        }
        points: list[tuple[str, str, int, int, float]] = []
        for metric, (aligner, reducer, statistic) in METRICS.items():
            request = ListTimeSeriesRequest(
                name=f"projects/{self.project}",
                filter=f'metric.type = "{metric}" AND resource.labels.service_name = '
                f"{json.dumps(self.function)}",
                interval=interval,
                aggregation=Aggregation(
                    alignment_period=duration_pb2.Duration(seconds=PERIOD_S),
                    per_series_aligner=getattr(Aggregation.Aligner, aligner),
                    cross_series_reducer=getattr(Aggregation.Reducer, reducer),
                    group_by_fields=["resource.labels.service_name"],
                ),
            )
            page_token = ""
            while True:
                request.page_token = page_token
                response = _first_page(
                    self.client.list_time_series(request=request, retry=_retry())
                )
                for series in response.time_series:
                    for point in series.points:
                        end = point.interval.end_time
                        at = int(end.timestamp() * 1e6) * 1000 - PERIOD_S * 10**9
                        value = point.value
                        number = value.double_value or float(value.int64_value)
                        points.append((metric, statistic, PERIOD_S, at, number))
                page_token = response.next_page_token
                if not page_token:
                    break
        yield Page(None, points=points)


def _numbers(value: Any, key: str = "") -> Any:
    """A Struct's doubles as the line had them: whole numbers as integers, and the
    nanosecond times to the microsecond."""
    if isinstance(value, dict):
        return {k: _numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        if key in _NANOSECONDS:
            return round(value / 1000) * 1000
        return int(value)
    return value


def _first_page(pager: Any) -> Any:
    """The response a GAPIC pager holds (it has fetched it): only one page per request,
    so every request goes through our retry and every token is ours to keep."""
    return next(iter(pager.pages))


def _retry() -> Any:
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(
            exceptions.ResourceExhausted, exceptions.ServiceUnavailable
        ),
        initial=1.0,
        maximum=32.0,
        multiplier=2.0,
        timeout=300.0,
    )


def _project(project: str | None, default: str | None) -> str:
    for found in (project, *(os.environ.get(name) for name in _PROJECT_VARIABLES), default):
        if found:
            return found
    raise PullError("no Google Cloud project: pass --project, or set GOOGLE_CLOUD_PROJECT")


def _logging_client(credentials: Any) -> Any:
    try:
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
        from google.cloud.logging_v2.services.logging_service_v2.transports import (
            LoggingServiceV2GrpcTransport,
        )
    except ImportError:
        raise PullError(
            "obs pull gcp needs google-cloud-logging: pip install 'inferobs[gcp-pull]'"
        ) from None
    return _client(
        LoggingServiceV2Client, LoggingServiceV2GrpcTransport, LOGGING_ENDPOINT, credentials
    )


def _monitoring_client(credentials: Any) -> Any:
    try:
        from google.cloud.monitoring_v3.services.metric_service import MetricServiceClient
        from google.cloud.monitoring_v3.services.metric_service.transports import (
            MetricServiceGrpcTransport,
        )
    except ImportError:
        raise PullError(
            "obs pull gcp needs google-cloud-monitoring: pip install 'inferobs[gcp-pull]'"
        ) from None
    return _client(
        MetricServiceClient, MetricServiceGrpcTransport, MONITORING_ENDPOINT, credentials
    )


def _client(client: Any, transport: Any, variable: str, credentials: Any) -> Any:
    """A client on ``credentials``, or on ``variable``'s endpoint: over TLS, or plain gRPC
    without credentials to a loopback one."""
    endpoint = os.environ.get(variable, "")
    if _loopback(endpoint):
        import grpc  # type: ignore[import-untyped]

        return client(transport=transport(channel=grpc.insecure_channel(endpoint)))
    options = {"api_endpoint": endpoint} if endpoint else None
    return client(credentials=credentials, client_options=options)


def _loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]") if endpoint else ""
    return host in ("127.0.0.1", "localhost", "::1")


def _credentials() -> tuple[Any, str | None]:
    """Application Default Credentials, refreshed now: an expired or revoked one is said
    here, plainly, rather than met by every request as an unavailable service; and the
    project they name. None when both endpoints are loopback ones (an emulator, the
    tests), which take none."""
    if _loopback(os.environ.get(LOGGING_ENDPOINT, "")) and _loopback(
        os.environ.get(MONITORING_ENDPOINT, "")
    ):
        return None, None
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError:
        raise PullError(
            "obs pull gcp needs google-cloud-logging: pip install 'inferobs[gcp-pull]'"
        ) from None
    try:
        credentials, project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    except google.auth.exceptions.DefaultCredentialsError:
        raise PullError(
            "no Google Cloud credentials found: run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise PullError(
            f"the Google Cloud credentials could not be refreshed ({type(exc).__name__}): "
            "run `gcloud auth application-default login` again"
        ) from None
    return credentials, project


def _words(exc: Exception, service: str) -> str | None:
    """What a Google API error means for the user, by its gRPC status (never its message)."""
    from google.api_core import exceptions

    status = _status(exc)
    if status == "UNAUTHENTICATED":
        return f"the Google Cloud credentials were refused ({status}): refresh them and run again"
    if status == "PERMISSION_DENIED":
        return f"permission denied by {service} (check the IAM roles: docs/pull.md)"
    if status in ("RESOURCE_EXHAUSTED", "UNAVAILABLE") or isinstance(exc, exceptions.RetryError):
        return f"{service} kept refusing ({status or 'throttled or unavailable'}) past the retries"
    if status is not None:
        return f"{service} refused the request ({status})"
    return None


def _status(exc: BaseException) -> str | None:
    """The gRPC status name of a google.api_core error, else None."""
    code = getattr(exc, "grpc_status_code", None)
    name = getattr(code, "name", None)
    return str(name) if name else None


def _rfc3339(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"
