"""Azure Functions: our lines from Log Analytics (Application Insights' workspace), and the
function app's platform metrics, through azure-monitor-query and
azure-monitor-querymetrics on ``DefaultAzureCredential``.

- **Logs**: a KQL query over ``AppTraces`` (the app's Application Insights
  traces, where the Python worker's stdout lands) and ``FunctionAppLogs``
  (diagnostic settings), rows whose message holds our event. Log Analytics
  answers a query whole (no page tokens) and caps a result at 500,000 rows and
  64 MB, so a piece is read in stretches of time, each asking for at most
  `_ROWS` rows: a stretch that fills them is halved and asked again, one that
  comes back light is doubled next time. The pull's place is where the next
  stretch starts.
- **Metrics** (``metrics:getBatch``, 1-minute totals): ``FunctionExecutionCount``
  and ``FunctionExecutionUnits`` (Consumption; they read 0 on Premium, where
  executions are counted from our lines), and the ``OnDemandFunctionExecution*``
  and ``AlwaysReadyFunctionExecution*`` family (Flex Consumption). A metric the
  app's plan does not have is skipped, with a warning, not an error.

Throttling (429) and unavailability are retried by azure-core's retry policy,
which waits as ``Retry-After`` says, else backs off exponentially.
``INFEROBS_AZURE_LOGS_ENDPOINT`` and ``INFEROBS_AZURE_METRICS_ENDPOINT`` point
the clients elsewhere (a sovereign cloud, or a loopback server over plain
http: then only, and only to a loopback address, is a bearer token sent
without TLS). Only an error's HTTP status and our words are shown.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from . import Feed, Page, PullError, Summary, failing, open_store, run_feed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from . import Progress
    from .plan import Piece

__all__ = ["METRICS", "pull"]

DAY_NS = 86_400 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
LOGS_ENDPOINT = "INFEROBS_AZURE_LOGS_ENDPOINT"
METRICS_ENDPOINT = "INFEROBS_AZURE_METRICS_ENDPOINT"
METRICS: tuple[str, ...] = (
    "FunctionExecutionCount",
    "FunctionExecutionUnits",
    "OnDemandFunctionExecutionCount",
    "OnDemandFunctionExecutionUnits",
    "AlwaysReadyFunctionExecutionCount",
    "AlwaysReadyFunctionExecutionUnits",
    "AlwaysReadyUnits",
)
_ROWS = 20_000  # rows asked for at most, per query: a page
_FIRST_STRETCH_NS = 15 * MINUTE_NS
# what Log Analytics says of a result over its limits (500,000 rows, 64 MB)
_TOO_LARGE = ("too large", "too_large", "toolarge", "limit", "truncat")


def pull(
    function: str,
    store: str,
    since_ns: int,
    until_ns: int,
    *,
    workspace: str,
    resource_id: str | None = None,
    region: str | None = None,
    credential: Any = None,
    progress: Progress | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Pull function app ``function``'s lines from Log Analytics workspace ``workspace`` and,
    given its ``resource_id`` and ``region``, its platform metrics, into ``store``.

    ``credential`` is any azure-core ``TokenCredential``; None: ``DefaultAzureCredential``.
    """
    summary = summary if summary is not None else Summary()
    if resource_id and not region:
        raise PullError("--resource-id needs --region, the function app's location (eastus, ...)")
    credential = credential if credential is not None else _default_credential()
    landing = open_store(store)
    summary.expect("Log Analytics", *(("Azure Monitor metrics",) if resource_id else ()))
    try:
        with failing(summary, "Log Analytics", _words):
            logs = _Logs(_logs_client(credential), workspace, function)
            try:
                run_feed(landing, logs, (since_ns, until_ns), summary, progress)
            finally:
                summary.warnings.extend(logs.warnings)
        if resource_id and region:
            with failing(summary, "Azure Monitor metrics", _words):
                metrics = _Metrics(_metrics_client(credential, region), resource_id, function)
                run_feed(landing, metrics, (since_ns, until_ns), summary, progress)
            summary.warnings.extend(metrics.missing)
        else:
            summary.warnings.append(
                "no --resource-id: the function app's platform metrics were not pulled"
            )
    finally:
        landing.close()
    return summary


class _Logs(Feed):
    title = "Log Analytics"
    longest_call_ns = 60 * 60 * 1_000_000_000  # the Premium plan's guaranteed timeout

    def __init__(self, client: tuple[Any, dict[str, Any]], workspace: str, app: str) -> None:
        self.client, self.options = client
        self.workspace = workspace
        self.function = app
        self.source = f"azure:{workspace}:{app}:logs"
        self.stretch = _FIRST_STRETCH_NS
        self.warnings: list[str] = []

    def query(self, low: int, high: int) -> str:
        """Our rows of [low, high): the bounds in KQL too, to the tick (100 ns), so that
        stretches that meet never both hold a row on their border."""
        app = json.dumps(self.function)  # a KQL string literal: JSON's escapes are KQL's
        return (
            "union isfuzzy=true"
            f" (AppTraces | where AppRoleName =~ {app} | project TimeGenerated, Message),"
            f" (FunctionAppLogs | where AppName =~ {app} | project TimeGenerated, Message)"
            f" | where TimeGenerated >= {_kql_time(low)} and TimeGenerated < {_kql_time(high)}"
            ' | where Message has "inferobs.invocation" or Message has "inferobs.drift_window"'
            f" | order by TimeGenerated asc | take {_ROWS}"
        )

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        low, high = piece
        at = int(token) if token else low
        while at < high:
            end = min(at + self.stretch, high)
            rows = self._rows(at, end)
            if len(rows) >= _ROWS and end - at > 1_000_000:  # it may hold more: ask for less
                self.stretch = max((end - at) // 2, 1_000_000)
                continue
            if len(rows) < _ROWS // 4:
                self.stretch *= 2
            at = end
            yield Page(str(at) if at < high else None, lines=[str(row[1]) for row in rows])
        if token and int(token) >= high:
            yield Page(None)

    def _rows(self, low: int, high: int) -> list[Any]:
        from azure.monitor.query import LogsQueryPartialResult

        answer = self.client.query_workspace(
            self.workspace,
            self.query(low, high),
            timespan=(_utc(low), _utc(high) + timedelta(microseconds=1)),
            **self.options,
        )
        if isinstance(answer, LogsQueryPartialResult):
            error = answer.partial_error
            said = f"{getattr(error, 'code', '')} {getattr(error, 'details', '')}".lower()
            if any(word in said for word in _TOO_LARGE) and high - low > 1_000_000:
                # over Log Analytics' limits for one result: read the stretch in halves
                half = (low + high) // 2
                return [*self._rows(low, half), *self._rows(half, high)]
            # a warning (a table the workspace lacks, for one): the rows it gave are whole
            code = getattr(error, "code", None) or "a partial result"
            note = f"Log Analytics answered with a warning ({code}); its rows are kept"
            if note not in self.warnings:
                self.warnings.append(note)
            return [row for table in answer.partial_data for row in table.rows]
        return [row for table in answer.tables for row in table.rows]


class _Metrics(Feed):
    title = "Azure Monitor metrics"
    piece_ns = 7 * DAY_NS
    holds_records = False

    def __init__(self, client: tuple[Any, dict[str, Any]], resource_id: str, app: str) -> None:
        self.client, self.options = client
        self.resource_id = resource_id
        self.function = app
        self.source = f"azure:{resource_id.lower()}:metrics"
        self.missing: list[str] = []

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        from azure.core.exceptions import HttpResponseError

        low, high = piece
        points: list[tuple[str, str, int, int, float]] = []
        for name in METRICS:
            try:
                results = self.client.query_resources(
                    resource_ids=[self.resource_id],
                    metric_namespace="Microsoft.Web/sites",
                    metric_names=[name],
                    timespan=(_utc(low), _utc(high)),
                    granularity=timedelta(minutes=1),
                    aggregations=["Total"],
                    **self.options,
                )
            except HttpResponseError as exc:
                if exc.status_code == 400 and name.lower() in str(exc.message).lower():
                    # the API's answer to a metric this app's plan does not publish
                    note = f"the function app has no metric {name} (its plan does not publish it)"
                    if note not in self.missing:
                        self.missing.append(note)
                    continue
                raise
            for result in results:
                for metric in result.metrics:
                    for series in metric.timeseries:
                        for value in series.data:
                            if value.total is None:
                                continue
                            at = int(value.timestamp.timestamp() * 1e6) * 1000
                            points.append((metric.name, "Total", 60, at, float(value.total)))
        yield Page(None, points=points)


def _words(exc: Exception, service: str) -> str | None:
    """What an Azure error means for the user, by its HTTP status (never its message)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status == 401:
        return (
            f"the Azure credentials were refused ({status or 'no token'}): sign in again (az login)"
        )
    if status == 403:
        return f"access denied by {service} (403: check the role assignments, docs/pull.md)"
    if status == 429 or (isinstance(status, int) and status >= 500):
        return f"{service} kept refusing ({status}) past the retries"
    if isinstance(exc, HttpResponseError) and status is None:
        # azure-monitor-query hands a credential that gave no token on as a bare error
        return "no Azure token could be had: sign in (az login) or check the credential chain"
    if isinstance(exc, HttpResponseError):
        return f"{service} refused the request ({status})"
    if isinstance(exc, ServiceRequestError):
        return f"could not reach {service} (network, or the endpoint URL)"
    return None


def _default_credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise PullError(
            "obs pull azure needs azure-identity: pip install 'inferobs[azure-pull]'"
        ) from None
    import logging

    # each credential it tries logs why it could not sign in: the one line we print says it
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    return DefaultAzureCredential()


def _logs_client(credential: Any) -> Any:
    try:
        from azure.monitor.query import LogsQueryClient
    except ImportError:
        raise PullError(
            "obs pull azure needs azure-monitor-query: pip install 'inferobs[azure-pull]'"
        ) from None
    endpoint = os.environ.get(LOGS_ENDPOINT) or "https://api.loganalytics.io"
    client = LogsQueryClient(credential, endpoint=endpoint, audience="https://api.loganalytics.io")
    return client, _plain_http(endpoint)


def _metrics_client(credential: Any, region: str) -> Any:
    try:
        from azure.monitor.querymetrics import MetricsClient
    except ImportError:
        raise PullError(
            "obs pull azure needs azure-monitor-querymetrics: pip install 'inferobs[azure-pull]'"
        ) from None
    endpoint = os.environ.get(METRICS_ENDPOINT) or f"https://{region}.metrics.monitor.azure.com"
    return MetricsClient(endpoint, credential), _plain_http(endpoint)


def _plain_http(endpoint: str) -> dict[str, Any]:
    """The options of each call: azure-core sends a bearer token over TLS only, and a
    loopback http endpoint (a local emulator, the tests) is the one place it is let
    through without."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    return {"enforce_https": False} if loopback and not parts.username else {}


def _kql_time(ns: int) -> str:
    """A KQL datetime literal, to the tick (100 ns)."""
    moment = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    return f"datetime({moment:%Y-%m-%dT%H:%M:%S}.{ns % 10**9 // 100:07d}Z)"


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc)
