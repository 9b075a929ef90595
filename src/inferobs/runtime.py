"""The execution environment: which platform, how it was initialised, cold or warm.

All of it lives in a `Runtime` object rather than module globals, so a test or
the demo can stand up fresh execution environments inside one process, each
with its own injected clock.

Cold-start rule (docs/cold-start.md has it as a table): an invocation is a cold
start only when a user's request waited for init, which is the first invocation
of an ``on-demand`` environment (or of a ``snap-start`` restore) that arrived
within ``proactive_init_s`` of init finishing. Provisioned concurrency and
Lambda Managed Instances initialise ahead of demand, so nobody waits.
"""

from __future__ import annotations

import itertools
import os
import sys
import time

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "Clock",
    "Runtime",
    "ends_without_exit_hooks",
    "on_cloud",
    "platform_of",
    "process_start_ns",
]

# init types in the platform's own words (AWS_LAMBDA_INITIALIZATION_TYPE)
ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"
SNAP_START = "snap-start"
MANAGED_INSTANCES = "lambda-managed-instances"
_USERS_WAIT = frozenset({ON_DEMAND, SNAP_START})


class Clock:
    """Wall time for timestamps, a monotonic counter for durations.

    Replace it (any object with these two methods) to run environments on a
    simulated clock.
    """

    __slots__ = ()

    # the C functions themselves: no Python frame per timestamp on the hot path
    wall_ns = staticmethod(time.time_ns)
    monotonic_ns = staticmethod(time.perf_counter_ns)


def process_start_ns(clock: Clock | None = None) -> int | None:
    """When this process started, on ``clock``'s monotonic scale, or None if unknown.

    Linux records a process's start in clock ticks since boot (``/proc/self/stat``
    field 22, 10 ms resolution at the usual 100 Hz); comparing it with
    CLOCK_BOOTTIME, the same scale at nanosecond precision, gives the process's
    age, which is then placed on the given clock.
    """
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        # the command name may contain spaces and parentheses; fields follow the last ')'
        fields = stat[stat.rindex(b")") + 2 :].split()
        start_ticks = int(fields[19])
        hertz = os.sysconf("SC_CLK_TCK")
        age_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - start_ticks * 1_000_000_000 // hertz
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    now = (clock or Clock()).monotonic_ns()
    return now - max(age_ns, 0)


def platform_of(environ: Mapping[str, str]) -> str:
    """The platform this process runs on, by the variables each sets in every instance
    (docs/platforms.md): ``aws_lambda``, ``gcp_cloud_run`` (Cloud Run services and
    functions, Cloud Functions 2nd gen), ``azure_functions``, else ``local`` (a laptop,
    a plain container)."""
    if "AWS_LAMBDA_FUNCTION_NAME" in environ or "AWS_LAMBDA_RUNTIME_API" in environ:
        return "aws_lambda"
    if "K_SERVICE" in environ:
        return "gcp_cloud_run"
    if "FUNCTIONS_EXTENSION_VERSION" in environ or "FUNCTIONS_WORKER_RUNTIME" in environ:
        return "azure_functions"
    return "local"


def on_cloud(environ: Mapping[str, str]) -> bool:
    """Whether this process runs on a serverless platform (its disk is not for keeping)."""
    return platform_of(environ) != "local"


class Runtime:
    """One execution environment (and process) as inferobs sees it.

    ``environ`` is read once, here; ``process_start`` and ``init_end`` are on the
    clock's monotonic scale. Pass ``process_start`` to say when a simulated
    environment began its init.
    """

    __slots__ = (
        "__weakref__",  # kept by gcp_instance to ask again in a forked child
        "_claims",
        "_loop",
        "claimed",
        "clock",
        "function",
        "identifying",
        "init_end",
        "init_type",
        "instance_id",
        "memory_mb",
        "metadata_host",
        "platform",
        "process_start",
        "restore_mark",
        "version",
    )

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        process_start: int | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.clock = clock or Clock()
        self.platform = platform = platform_of(env)
        pid = os.getpid()
        self.instance_id = f"{platform}:{pid}"
        self.function = self.version = None
        self.memory_mb: int | None = None
        self.metadata_host: str | None = None  # Cloud Run: where its instance id is asked
        self.identifying = False  # the instance id has been asked for (`gcp_instance`)
        self.init_type: str | None = None
        if platform == "aws_lambda":
            self.init_type = env.get("AWS_LAMBDA_INITIALIZATION_TYPE") or ON_DEMAND
            self.function = env.get("AWS_LAMBDA_FUNCTION_NAME")
            self.version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
            memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
            self.memory_mb = int(memory) if memory.isdigit() else None
            stream = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
            # Lambda Managed Instances run several processes in one environment (one log
            # stream), so the process id is part of what makes an instance.
            if stream:
                self.instance_id = f"{stream}:{pid}"
        elif platform == "gcp_cloud_run":
            # every instance is started for requests (min-instances too: Cloud Run does
            # not say which); the instance id comes from the metadata server (`gcp_instance`)
            self.init_type = ON_DEMAND
            self.function = env.get("K_SERVICE")
            self.version = env.get("K_REVISION")
            self.metadata_host = env.get("GCE_METADATA_HOST") or "metadata.google.internal"
        elif platform == "azure_functions":
            self.init_type = ON_DEMAND
            self.function = env.get("WEBSITE_SITE_NAME")
            self.version = env.get("FUNCTIONS_EXTENSION_VERSION")
            instance = env.get("WEBSITE_INSTANCE_ID")
            if instance:
                self.instance_id = f"{instance}:{pid}"
        if process_start is None and environ is None:
            process_start = process_start_ns(self.clock)
        self.process_start = process_start
        self.init_end: int | None = None
        self.restore_mark: int | None = None
        self._claims = itertools.count()
        self.claimed = False  # the first invocation has begun
        self._loop: object | None = None

    def mark_init_end(self, at: int | None = None) -> None:
        """Record that the module's initialisation finished (now, or ``at``).

        Called when a handler is instrumented, and again by `inferobs.init_complete`
        for modules that keep initialising after the decorated handler is defined.
        The latest mark before the first invocation wins; later ones (a handler
        instrumented lazily, inside a request) are not init and are ignored.
        """
        if not self.claimed:
            self.init_end = self.clock.monotonic_ns() if at is None else at

    def mark_restored(self) -> None:
        """The SnapStart after-restore hook: this environment was just restored."""
        self.restore_mark = self.clock.monotonic_ns()

    def claim(self, now: int, proactive_init_s: float) -> tuple[bool, float | None]:
        """Claim one invocation: (cold_start, init_ms), init_ms on the first only.

        Thread-safe: ``itertools.count`` hands out each number exactly once.
        """
        if next(self._claims):
            return False, None
        self.claimed = True
        waited = self.init_type is None or self.init_type in _USERS_WAIT
        if self.init_type == SNAP_START and self.restore_mark is None:
            # restored without the after-restore hook: restores are made on demand,
            # but how long this one took is only in the platform's REPORT line
            return True, None
        if self.restore_mark is not None:
            # SnapStart: the restore is the init users wait for. From inside the
            # process only its tail is visible, from the runtime resuming to this
            # request; the platform's REPORT line carries the whole Restore Duration.
            gap = now - self.restore_mark
            cold = waited and gap <= proactive_init_s * 1e9
            return cold, gap / 1e6 if cold else None
        ready = self.init_end if self.init_end is not None else now
        cold = waited and (now - ready) <= proactive_init_s * 1e9
        start = self.process_start
        return cold, None if start is None else max(ready - start, 0) / 1e6

    def event_loop(self, factory: Callable[[], object]) -> object:
        """The event loop kept for this environment's life (async handlers)."""
        if self._loop is None:
            self._loop = factory()
        return self._loop


_default: Runtime | None = None


def default_runtime() -> Runtime:
    """The process's own execution environment, created on first use."""
    global _default
    if _default is None:
        _default = Runtime()
    return _default


def ends_without_exit_hooks() -> bool:
    """Whether this process is a multiprocessing worker, which may end before atexit runs.

    A worker ends with ``os._exit`` and a pool's workers are terminated by
    signal (``with Pool() as pool`` does so on leaving the block), so neither
    the exit flush nor, often, the background thread's next tick ever comes.
    Such a process hands each record over at once (the store writes a
    transaction per record; drift counts go out after every invocation).
    """
    process = sys.modules.get("multiprocessing.process")  # never imported for this
    parent = getattr(process, "parent_process", None)
    return parent is not None and parent() is not None
