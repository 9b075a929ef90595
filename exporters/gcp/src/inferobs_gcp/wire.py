"""Snapshots onto Cloud Monitoring's API: metric descriptors once, then ``CreateTimeSeries``.

Imported on the sender's thread at the first write, never on the handler's
path: google-cloud-monitoring costs about a quarter of a second to import.
Every call has the exporter's timeout and no retries (the next flush is the
retry, and a hung backend must not hold the sender thread for long).
"""

from __future__ import annotations

from google.api import label_pb2, metric_pb2  # type: ignore[import-untyped]
from google.cloud import monitoring_v3
from google.protobuf import timestamp_pb2  # type: ignore[import-untyped]

from .catalog import METRICS, PREFIX, RESOURCE
from .series import Buckets

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .catalog import Kind
    from .series import Snapshot

__all__ = ["MAX_AGE_NS", "Writer", "descriptor"]

# Cloud Monitoring refuses points whose end is over 25 hours old; an hour to spare,
# for a process frozen with points still queued.
MAX_AGE_NS = 24 * 3600 * 10**9


class Writer:
    """Writes batches of snapshots to one project, creating each metric's descriptor first."""

    def __init__(
        self,
        project: str | None,
        location: str,
        timeout_s: float,
        client: Any,
        clock: Callable[[], int],
    ) -> None:
        if client is None or project is None:
            import google.auth

            # the monitoring scope: writing points, and listing descriptors too
            credentials, found = google.auth.default(
                scopes=["https://www.googleapis.com/auth/monitoring"]
            )
            project = project or found
            if client is None:
                client = monitoring_v3.MetricServiceClient(credentials=credentials)
        if not project:
            raise LookupError("no Google Cloud project: set GOOGLE_CLOUD_PROJECT")
        self.client = client
        self.name = f"projects/{project}"
        self.project = project
        self.location = location
        self.timeout_s = timeout_s
        self.clock = clock
        self.described: set[str] | None = None  # metrics the project has as we describe them

    def write(self, batch: list[Snapshot]) -> int:
        """Write the batch in one call; how many points were too old to send.

        A series queued twice (the backend was away for a period) keeps only
        its newest point: it carries the older one's counts, and a call takes
        one point per series. Raises what the API raises.
        """
        newest: dict[Any, Snapshot] = {}
        for snapshot in batch:
            newest[snapshot.key] = snapshot
        oldest = self.clock() - MAX_AGE_NS
        fresh = [s for s in newest.values() if s.end_ns >= oldest]
        self._describe({s.key[0] for s in fresh})
        if fresh:
            self.client.create_time_series(
                name=self.name,
                time_series=[self._series(s) for s in fresh],
                retry=None,
                timeout=self.timeout_s,
            )
        return len(newest) - len(fresh)

    def _describe(self, metrics: set[str]) -> None:
        """Create the descriptors of ``metrics`` the project lacks (or has without our labels).

        The project's inferobs descriptors are listed once per process (one
        call, where asking for each would be one per metric on every cold
        start); a descriptor is created only where it is missing or lacks a
        label we write, so a project's descriptors are created once, not once
        per instance. Where listing fails (an identity allowed to create but
        not to list), this process creates the descriptors it writes.
        """
        if self.described is None:
            described = set()
            try:
                for found in self.client.list_metric_descriptors(
                    request={"name": self.name, "filter": f'metric.type = starts_with("{PREFIX}")'},
                    retry=None,
                    timeout=self.timeout_s,
                ):
                    metric = found.type.removeprefix(PREFIX)
                    if metric in METRICS and _matches(found, METRICS[metric]):
                        described.add(metric)
            except Exception:  # not allowed to list, or no answer: create what we write
                described = set()
            self.described = described
        for metric in sorted(metrics - self.described):
            self.client.create_metric_descriptor(
                name=self.name, metric_descriptor=descriptor(metric),
                retry=None, timeout=self.timeout_s,
            )  # fmt: skip
            self.described.add(metric)

    def _series(self, snapshot: Snapshot) -> monitoring_v3.TimeSeries:
        metric, (namespace, job, task_id), labels = snapshot.key
        kind = METRICS[metric]
        end = _timestamp(snapshot.end_ns)
        if kind.metric_kind == "GAUGE":
            interval = monitoring_v3.TimeInterval(end_time=end)
        else:
            interval = monitoring_v3.TimeInterval(
                start_time=_timestamp(snapshot.start_ns), end_time=end
            )
        value = snapshot.value
        if isinstance(value, Buckets):
            typed = monitoring_v3.TypedValue(distribution_value=_distribution(value))
        elif kind.value_type == "INT64":
            typed = monitoring_v3.TypedValue(int64_value=value)
        else:
            typed = monitoring_v3.TypedValue(double_value=value)
        return monitoring_v3.TimeSeries(
            metric={"type": PREFIX + metric, "labels": dict(labels)},
            resource={
                "type": RESOURCE,
                "labels": {
                    "project_id": self.project,
                    "location": self.location,
                    "namespace": namespace,
                    "job": job,
                    "task_id": task_id,
                },
            },
            metric_kind=kind.metric_kind,
            value_type=kind.value_type,
            unit=kind.unit,
            points=[monitoring_v3.Point(interval=interval, value=typed)],
        )


def descriptor(metric: str) -> metric_pb2.MetricDescriptor:
    """The custom metric descriptor of one of our metrics, its labels declared."""
    kind = METRICS[metric]
    return metric_pb2.MetricDescriptor(
        type=PREFIX + metric,
        metric_kind=kind.metric_kind,
        value_type=kind.value_type,
        unit=kind.unit,
        description=kind.description,
        display_name=f"inferobs {metric}",
        labels=[label_pb2.LabelDescriptor(key=key, value_type="STRING") for key in kind.labels],
    )


def _matches(found: Any, kind: Kind) -> bool:
    """Whether a descriptor the project has takes our points: kind, type and every label."""
    return (
        metric_pb2.MetricDescriptor.MetricKind.Name(found.metric_kind) == kind.metric_kind
        and metric_pb2.MetricDescriptor.ValueType.Name(found.value_type) == kind.value_type
        and set(kind.labels) <= {label.key for label in found.labels}
    )


def _distribution(value: Buckets) -> dict[str, Any]:
    return {
        "count": value.n,
        "mean": value.mean,
        "sum_of_squared_deviation": value.squares,
        "bucket_options": {"explicit_buckets": {"bounds": list(value.bounds)}},
        "bucket_counts": list(value.counts),
    }


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(ns, 10**9)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
