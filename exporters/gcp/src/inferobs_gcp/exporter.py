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
from .series import Distribution, Gauge, Snapshot, Sum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from inferobs.record import Invocation

    from .wire import Writer

    State = Sum | Distribution | Gauge
    Key = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]

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
        self._series: dict[Key, State] = {}
        self._ends: dict[Key, int] = {}  # each series' last point's end time
        self._dirty: set[Key] = set()  # series with values added since their last point
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
        resource = (
            self.namespace or record.get("platform") or "unknown",
            record.get("function") or record.get("service") or "unknown",
            record.get("instance_id") or _PROCESS_ID,
        )
        labels = tuple((name, str(record.get(name) or "")) for name in LABELS)
        with self._lock:
            self._resource = resource
            for name, _unit, value in points:
                if name.startswith(STAGE_PREFIX):
                    key = (STAGE, resource, (*labels, ("stage", name[len(STAGE_PREFIX) : -3])))
                else:
                    key = (name, resource, labels)
                self._add(key, value)

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
                self._add((PSI, resource, (("column", name[len(PSI_PREFIX) :]),)), value)

    def flush_by(self, deadline: float) -> bool:
        """Hand the series that are due to the sender and wait for it until ``deadline``."""
        self._cut()
        return self.sender.flush_by(deadline)

    def flush(self) -> bool:
        """Cut what is due and wait up to one call's timeout for it to be sent (at shutdown)."""
        return self.flush_by(time.monotonic() + self.timeout_s)

    def _add(self, key: Key, value: float) -> None:
        state = self._series.get(key)
        if state is None:
            if key[0] not in METRICS:
                return  # a point the table gained after this package: not ours to guess
            if len(self._series) >= MAX_SERIES:
                self._unsent += 1
                return
            state = self._series[key] = _new(key[0], self._clock() - _START_LEAD_NS)
        state.add(value)
        self._dirty.add(key)

    def _cut(self) -> None:
        """Snapshots of the series whose last point is at least a period old."""
        if self._resource is None:
            return  # nothing exported yet: nothing to send, nothing dropped
        dropped = self.sender.take_dropped()
        now = self._clock()
        due = []
        with self._lock:
            dropped += self._unsent
            self._unsent = 0
            key: Key = (DROPPED, self._resource, ())
            if dropped or key not in self._series:
                self._add(key, dropped)
            for key in self._dirty.copy():
                last = self._ends.get(key)
                if last is not None and now - last < self._period_ns:
                    continue
                state = self._series[key]
                self._ends[key] = now
                self._dirty.discard(key)
                due.append(Snapshot(key, state.start_ns, now, state.value()))
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


def _new(metric: str, start_ns: int) -> State:
    kind = METRICS[metric]
    if kind.bounds is not None:
        return Distribution(start_ns, kind.bounds)
    if kind.metric_kind == "GAUGE":
        return Gauge(start_ns)
    return Sum(start_ns)


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
