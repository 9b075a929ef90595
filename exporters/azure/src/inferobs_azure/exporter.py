"""Azure Monitor: invocation and stage spans, custom metrics and drift PSI to Application Insights.

``export`` only queues the record: the handler's thread pays for a list
append. Everything else happens on the `BatchSender`'s thread: importing
the SDK (about a quarter of a second, so the first invocation's flush usually
runs out of its deadline and its records go with the next flush, or as soon
as the import is done where the process is not frozen, as on Azure
Functions), building the spans and metric points (`inferobs_azure.otel`),
and one POST for the spans and one for the metrics through the SDK's own
exporters, each bounded by ``timeout_s`` and tried once. A batch the backend
refuses, or that cannot reach it, is dropped and counted by the sender; the
count goes out as the ``dropped`` metric with a later batch.

The SDK's offline storage is off: it would keep refused envelopes on disk
for 48 hours and resend them from later exports, which on a serverless
instance means on a later invocation's flush, behind its deadline; a refused
batch is dropped and counted instead.
"""

from __future__ import annotations

import os

from inferobs.config import ConfigError
from inferobs.export.sending import BatchSender, quiet

from .settings import (
    ENV_REQUESTS,
    ENV_STATSBEAT,
    SITE,
    connection,
    flag,
    invocations_as_requests,
    quiet_sdk,
    region,
    under_functions_host,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from inferobs.record import Invocation

    from .otel import Converter

__all__ = ["AzureMonitorExporter"]

# The SDK's loggers write a line per request at INFO: where the Functions host ships
# the worker's logs to Application Insights, each send would add its own trace items.
SDK_LOGGERS = ("azure.monitor.opentelemetry.exporter", "azure.core.pipeline.policies")


class AzureMonitorExporter:
    """Sends each invocation to Application Insights as spans and custom metrics.

    ``connection_string``: by default ``APPLICATIONINSIGHTS_CONNECTION_STRING``'s.
    ``timeout_s``: how long one POST may take before it counts as failed (the
    handler waits for it no longer than the flush deadline). ``statsbeat``:
    let the SDK send its usage telemetry to Microsoft (off unless given or
    ``INFEROBS_AZURE_STATSBEAT=true``). ``as_requests``: invocations as
    requests (SERVER spans) rather than in-process dependencies; by default
    requests except under the Azure Functions host, which records each
    invocation as a request itself (``INFEROBS_AZURE_REQUESTS`` overrides).
    A bad setting is a `ConfigError`.
    """

    traces_stages = True  # records carry stage_starts: stages are laid on the timeline

    def __init__(
        self,
        connection_string: str | None = None,
        *,
        timeout_s: float = 5.0,
        statsbeat: bool | None = None,
        as_requests: bool | None = None,
    ) -> None:
        self.connection = connection(connection_string)
        if not 0 < timeout_s <= 60:
            raise ConfigError(f"azure timeout_s={timeout_s!r}: expected seconds, > 0 and <= 60")
        self.timeout_s = timeout_s
        self.statsbeat = bool(flag(ENV_STATSBEAT, statsbeat))
        self.as_requests = invocations_as_requests(flag(ENV_REQUESTS, as_requests))
        quiet_sdk(self.statsbeat)  # before the SDK makes an exporter: it reads them then
        self.sender = BatchSender(self._send, name="azure")
        # the SDK's trace and metric exporters and the converter, made when first sent
        self._backend: tuple[Any, Any, Converter] | None = None
        self._unreported = 0  # drops taken from the sender, not yet sent as `dropped`

    @classmethod
    def check(cls) -> None:
        """Check the settings in the environment (at configure time), without the SDK."""
        connection(None)
        flag(ENV_STATSBEAT, None)
        flag(ENV_REQUESTS, None)

    def export(self, record: Invocation) -> None:
        """Queue the record for the next flush; keep-warm pings are nobody's request."""
        if record.get("kind") != "warmup":
            self.sender.add(record)

    def export_window(self, window: dict[str, Any]) -> None:
        """Queue a closed drift window: its instance PSI per column goes as gauges."""
        if window.get("instance_psi"):
            self.sender.add(window)

    def flush_by(self, deadline: float) -> bool:
        """Send what is queued, waiting until ``deadline`` (``time.monotonic()``) at most."""
        return self.sender.flush_by(deadline)

    def _send(self, batch: list[Any]) -> None:
        """One batch to Application Insights, on the sender's thread; raises if it failed."""
        traces, metrics, converter = self._backend or self._connect()
        self._unreported += self.sender.take_dropped()
        spans, data = converter.convert(batch, self._unreported)
        from opentelemetry.sdk.metrics.export import MetricExportResult
        from opentelemetry.sdk.trace.export import SpanExportResult

        failed = []
        if spans and traces.export(spans) is not SpanExportResult.SUCCESS:
            failed.append("spans")
        if data is not None:
            if metrics.export(data) is MetricExportResult.SUCCESS:
                self._unreported = 0
            else:
                failed.append("metrics")
        if failed:
            raise ConnectionError(f"Application Insights did not take the {' and '.join(failed)}")

    def _connect(self) -> tuple[Any, Any, Converter]:
        """The SDK's exporters, imported and made on first use (on the sender's thread)."""
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorMetricExporter,
            AzureMonitorTraceExporter,
        )

        from .otel import Converter

        quiet(*SDK_LOGGERS)
        options = {
            "connection_string": self.connection.text,
            "disable_offline_storage": True,
            "timeout": self.timeout_s,  # connecting, and all of one request with its retries
            "read_timeout": self.timeout_s,  # waiting for the answer (a black hole)
            "retry_total": 0,  # one try: the sender drops and counts, newer data goes next
        }
        converter = Converter(
            as_requests=self.as_requests,
            region=region(),
            host_platform="azure_functions" if under_functions_host() else None,
            site=os.environ.get(SITE),
        )
        self._backend = (
            AzureMonitorTraceExporter(**options),
            AzureMonitorMetricExporter(**options),
            converter,
        )
        return self._backend
