"""Google Cloud Monitoring: each instance's counters and latency distributions as custom metrics.

Cloud Monitoring refuses a point written sooner than a series' sampling
period after the previous one, so a point per invocation is impossible. Each
record is added instead to its series' running totals (`inferobs_gcp.series`),
kept per instance (the ``generic_task`` resource's ``task_id``); at the end
of an invocation the series whose last point is at least a period old are
cut into snapshots and handed to a `BatchSender`, which writes them with
``CreateTimeSeries`` on its own thread, at most 200 series and one point per
series per call (`inferobs_gcp.wire`). A series written inside its period
waits for a later flush: nothing is lost, its totals keep growing.

``export`` only adds numbers under a lock. google-cloud-monitoring (about a
quarter of a second to import) loads on the sender thread, at the first
write, never at import or on the handler's path.
"""

from __future__ import annotations

import os
import time
from _thread import allocate_lock

from inferobs.config import ConfigError
from inferobs.export.metrics import PSI_PREFIX, STAGE_PREFIX, invocation_points, window_points
from inferobs.export.sending import BatchSender

from .catalog import DROPPED, LABELS, METRICS, PSI, STAGE
from .series import Distribution, Gauge, Series, Sum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from inferobs.record import Invocation

    from .series import Key, Snapshot
    from .wire import Writer

__all__ = ["MAX_SERIES", "MAX_TIME_SERIES_PER_CALL", "MIN_PERIOD_S", "CloudMonitoringExporter"]

MIN_PERIOD_S = 5.0  # Cloud Monitoring's shortest sampling period for user-defined metrics
DEFAULT_PERIOD_S = 10.0
DEFAULT_TIMEOUT_S = 5.0
MAX_TIME_SERIES_PER_CALL = 200  # CreateTimeSeries' limit
MAX_SERIES = 5_000  # per process: a bound on memory should a label run away
# where the platforms put the region; the first one set is the resource's location
REGION_VARIABLES = ("GOOGLE_CLOUD_REGION", "FUNCTION_REGION", "REGION_NAME", "AWS_REGION")
_START_LEAD_NS = 1_000_000  # a cumulative interval must not be empty: start 1 ms early


class CloudMonitoringExporter:
    """Writes per-instance custom metrics to Cloud Monitoring, at most once a period per series.

    ``project``: the Google Cloud project (else ``GOOGLE_CLOUD_PROJECT``, else the
    credentials' own project, found on the sender thread). ``period_s``: the
    shortest time between two points of a series, at least 5 (else
    ``INFEROBS_GCP_PERIOD_S``, else 10). ``location``: the resource's location
    (else ``INFEROBS_GCP_LOCATION``, else the platform's region variable, else
    ``global``). ``namespace``: the resource's namespace (else
    ``INFEROBS_GCP_NAMESPACE``, else the record's platform). ``timeout_s``: how long
    one API call may take on the sender thread (else ``INFEROBS_GCP_TIMEOUT_S``,
    else 5). ``client``: a ``MetricServiceClient`` to use instead of one built
    with the library's default credentials. ``clock``: epoch nanoseconds, for
    point times and periods (``time.time_ns`` by default). A malformed setting
    is a `ConfigError`.
    """

    def __init__(
        self,
        project: str | None = None,
        *,
        period_s: float | None = None,
        location: str | None = None,
        namespace: str | None = None,
        timeout_s: float | None = None,
        client: Any = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        env = os.environ
        self.project = project or env.get("GOOGLE_CLOUD_PROJECT") or None
        if self.project is not None and not _is_project(self.project):
            raise ConfigError(f"gcp project={self.project!r}: expected a project id or number")
        self.period_s = _seconds(period_s, env, "INFEROBS_GCP_PERIOD_S", DEFAULT_PERIOD_S)
        if self.period_s < MIN_PERIOD_S:
            raise ConfigError(
                f"gcp period_s={self.period_s:g}: Cloud Monitoring takes a point per series "
                f"at most every {MIN_PERIOD_S:g} s"
            )
        self.timeout_s = _seconds(timeout_s, env, "INFEROBS_GCP_TIMEOUT_S", DEFAULT_TIMEOUT_S)
        self.location = location or env.get("INFEROBS_GCP_LOCATION") or _region(env)
        self.namespace = namespace or env.get("INFEROBS_GCP_NAMESPACE") or None
        self._client = client
        self._clock = clock or time.time_ns
        self._period_ns = int(self.period_s * 1e9)
        # a record's series, by its resource and label values, then by the point's name:
        # one hash of a flat tuple per record, then string lookups
        self._groups: dict[tuple[str, ...], dict[str, Series]] = {}
        self._own: dict[Key, Series] = {}  # the instance's own: `dropped`, drift PSI
        self._count = 0  # series in all
        self._dirty: set[Series] = set()  # series with values added since their last point
        self._resource: tuple[str, ...] | None = None  # the last record's, for `dropped`
        self._unsent = 0  # points dropped here (over MAX_SERIES, too old to send)
        self._lock = allocate_lock()
        self._writer: Writer | None = None
        self.sender = BatchSender(
            self._send, name="gcp", max_batch=MAX_TIME_SERIES_PER_CALL, max_buffered=4 * MAX_SERIES
        )

    @classmethod
    def check(cls) -> None:
        """Check the settings in the environment (at configure time)."""
        cls()

    def export(self, record: Invocation) -> None:
        """Add the record's points to its series' totals; nothing is sent here."""
        points = invocation_points(record)
        if not points:
            return
        get = record.get
        base = (  # the resource's namespace, job and task_id, then the LABELS' values
            self.namespace or get("platform") or "unknown",
            get("function") or get("service") or "unknown",
            get("instance_id") or _PROCESS_ID,
            get("version") or "",
            get("model") or "",
            get("model_version") or "",
            get("variant") or "",
        )
        with self._lock:
            self._resource = base[:3]
            group = self._groups.get(base)
            if group is None:
                group = self._groups[base] = {}
            for name, _unit, value in points:
                series = group.get(name)
                if series is None:
                    series = self._record_series(name, base)
                    if series is None:
                        continue
                    group[name] = series
                series.add(value)
                self._dirty.add(series)

    def export_window(self, window: Mapping[str, Any]) -> None:
        """Each column's instance PSI from a drift window, as a gauge per column."""
        points = window_points(window)
        if not points:
            return
        with self._lock:
            resource = self._resource = self._resource or (
                self.namespace or "unknown",
                "unknown",
                window.get("instance_id") or _PROCESS_ID,
            )
            for name, _unit, value in points:
                self._add_own((PSI, resource, (("column", name[len(PSI_PREFIX) :]),)), value)

    def flush_by(self, deadline: float) -> bool:
        """Hand the series that are due to the sender and wait for it until ``deadline``."""
        self._cut()
        return self.sender.flush_by(deadline)

    def flush(self) -> bool:
        """Cut what is due and wait up to one call's timeout for it to be sent (at shutdown)."""
        return self.flush_by(time.monotonic() + self.timeout_s)

    def _record_series(self, name: str, base: tuple[str, ...]) -> Series | None:
        """A new series for a point of the metric table, keyed for the wire."""
        labels = tuple(zip(LABELS, base[3:], strict=True))
        if name.startswith(STAGE_PREFIX):
            key = (STAGE, base[:3], (*labels, ("stage", name[len(STAGE_PREFIX) : -3])))
        elif name in METRICS:
            key = (name, base[:3], labels)
        else:
            return None  # a point the table gained after this package: not ours to guess
        return self._new(key)

    def _add_own(self, key: Key, value: float) -> None:
        series = self._own.get(key)
        if series is None:
            series = self._new(key)
            if series is None:
                return
            self._own[key] = series
        series.add(value)
        self._dirty.add(series)

    def _new(self, key: Key) -> Series | None:
        if self._count >= MAX_SERIES:
            self._unsent += 1
            return None
        self._count += 1
        kind = METRICS[key[0]]
        start = self._clock() - _START_LEAD_NS
        if kind.bounds is not None:
            return Distribution(key, start, kind.bounds)
        if kind.metric_kind == "GAUGE":
            return Gauge(key, start)
        return Sum(key, start)

    def _cut(self) -> None:
        """Points of the series whose last point is at least a period old."""
        if self._resource is None:
            return  # nothing exported yet: nothing to send, nothing dropped
        dropped = self.sender.take_dropped()
        now = self._clock()
        due = []
        with self._lock:
            dropped += self._unsent
            self._unsent = 0
            key: Key = (DROPPED, self._resource, ())
            if dropped or key not in self._own:
                self._add_own(key, dropped)
            for series in list(self._dirty):
                last = series.end_ns
                if last is None or now - last >= self._period_ns:
                    self._dirty.discard(series)
                    due.append(series.cut(now))
        if due:
            self.sender.extend(due)

    def _send(self, batch: list[Snapshot]) -> None:
        """Write one batch (on the sender's thread): the client is made at the first."""
        if self._writer is None:
            from .wire import Writer

            self._writer = Writer(
                self.project, self.location, self.timeout_s, self._client, self._clock
            )
        stale = self._writer.write(batch)
        if stale:
            with self._lock:
                self._unsent += stale


def _seconds(value: float | None, env: Mapping[str, str], variable: str, default: float) -> float:
    name = variable
    if value is None:
        text = env.get(variable)
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{variable}={text!r}: expected a number of seconds") from None
    else:
        name = variable.removeprefix("INFEROBS_GCP_").lower()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise ConfigError(f"gcp {name}={value!r}: expected a positive number of seconds")
    return float(value)


def _region(env: Mapping[str, str]) -> str:
    for variable in REGION_VARIABLES:
        region = env.get(variable)
        if region:
            return region
    return "global"


def _is_project(project: str) -> bool:
    """A project id or number: letters, digits and hyphens, at most 30, nothing that
    would change the ``projects/...`` resource name."""
    allowed = (c.isascii() and (c.isalnum() or c == "-") for c in project)
    return 0 < len(project) <= 30 and all(allowed)


# an instance id for records without one: unique per process, so instances never merge
_PROCESS_ID = f"process:{os.getpid()}:{os.urandom(4).hex()}"
