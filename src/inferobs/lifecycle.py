"""One invocation's life: open it, close it, turn it into an `Invocation`, export it.

Every handler surface (the Lambda decorator now, middleware later) translates
its platform's request into `Recorder.open` and `Recorder.close`; nothing
else in the handler path touches records or exporters. Every step here is
guarded: an inferobs failure is counted as a fault and the handler carries on.
"""

from __future__ import annotations

import sys
import time

from .config import Settings, current
from .context import Call, _in_flight, _scope, drift, fault
from .record import EVENT, SCHEMA_VERSION, Invocation
from .runtime import SNAP_START, Runtime

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from typing import Any

    from .context import Frame
    from .export import Exporter
    from .post_invoke import PostInvoke
    from .watchdog import Watchdog

__all__ = ["Recorder", "leave"]

try:
    from resource import RUSAGE_SELF, getrusage

    _RSS_DIVISOR = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes vs KiB
except ImportError:  # Windows: no peak-RSS figure
    getrusage = None  # type: ignore[assignment]


# Peak RSS is read on cold-start, error and timeout lines, and otherwise at most this
# often: it only grows, so a line a second keeps its maximum, and getrusage (a
# 16-field result built per call) was a tenth of a warm invocation's overhead.
RSS_INTERVAL_NS = 1_000_000_000


class _RSS:
    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = 0  # no line before this (runtime monotonic ns) needs the figure


_rss = _RSS()


def _peak_rss(now: int) -> float:
    """Peak RSS in MiB, read now; the next line that needs it is a second away."""
    _rss.due = now + RSS_INTERVAL_NS
    return getrusage(RUSAGE_SELF).ru_maxrss * 10 // _RSS_DIVISOR / 10


# At a normal exit (a script, a container's orderly shutdown) network exporters get
# this long to send what they still hold; a frozen or killed Lambda never gets here.
EXIT_FLUSH_S = 2.0
_exit_flush: list[bool] = []  # the exit hook is registered, once per process


class _Exporters:
    """The exporters for the settings in force, resolved once per settings object."""

    __slots__ = ("exporters", "flushers", "json", "settings", "traced")

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.exporters: list[Exporter] = []
        self.flushers: list[Any] = []  # network exporters: flushed before a freeze can come
        self.traced = False  # an exporter draws stages on a timeline: records say when
        # an exporter writes the record's JSON (`encoded`): the encoder, and how to prime it
        self.json: tuple[Callable[[Any], str], Callable[[Any, str], None]] | None = None

    def get(self, settings: Settings) -> list[Exporter]:
        if settings is not self.settings:
            from .config import ConfigError
            from .export import resolve

            try:
                exporters = resolve(settings.exporters)
            except ConfigError as exc:
                fault("exporters", f"{exc}; writing JSON lines to stdout instead")
                exporters = resolve(["stdout"])
            self.exporters, self.settings = exporters, settings
            self.traced = any(getattr(e, "traces_stages", False) for e in exporters)
            self.flushers = [e for e in exporters if callable(getattr(e, "flush_by", None))]
            if self.flushers and not _exit_flush:
                import atexit

                atexit.register(flush_network_at_exit)
                _exit_flush.append(True)
                _start_post_invoke()
            self.json = None
            if any(getattr(e, "writes_json", False) for e in exporters):
                from .export.lines import _encode, primed

                self.json = (_encode, primed)
        return self.exporters


_exporters = _Exporters()

# On Lambda, the internal extension that sends after the response (`post_invoke`);
# None where there is none, and the network exporters flush as the handler ends.
_post_invoke: PostInvoke | None = None
# init types whose environments run one invocation at a time, never snapshotted
_ONE_AT_A_TIME = ("on-demand", "provisioned-concurrency")


def _start_post_invoke() -> None:
    """Register the post-invoke extension, once, where Lambda's Extensions API is there."""
    import os

    global _post_invoke
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    init_type = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    if not address or init_type not in _ONE_AT_A_TIME or not current().enabled:
        return
    try:
        from .post_invoke import PostInvoke

        def flush(deadline: float | None) -> None:
            _flush_network(time.monotonic() + current().flush_deadline_ms / 1000, deadline)

        _post_invoke = PostInvoke.register(address, flush)
    except Exception as exc:  # the handlers flush themselves
        fault("post_invoke", "the post-invoke extension could not start", exc)


_the_watchdog: Watchdog | None = None


def _watchdog() -> Watchdog:
    """The process's deadline watchdog, created (and its module imported) on first use."""
    global _the_watchdog
    if _the_watchdog is None:
        from .watchdog import Watchdog

        _the_watchdog = Watchdog(_expire)
    return _the_watchdog


def _expire(call: object) -> None:
    """The watchdog's callback: write the timeout record of a call still running."""
    try:
        assert isinstance(call, Call)
        running = [frame[2] for frame in list(call.open_stages)]  # one snapshot: still going
        stage = running[-1] if running else None
        record = _build(call, "timeout", "error", None, stage, running=running)
        _export(record, call.settings)
        monitor = drift.monitor
        if monitor is not None:  # the platform ends the environment next: send its windows
            windows = monitor.closed(flush=True, wait_s=0.005)  # the handler may be counting
            if windows:
                _export_windows(windows, call.settings)
        # half the margin at most: the line is written, the platform kills at the deadline
        margin_s = call.settings.timeout_margin_ms / 2000
        _flush_network(time.monotonic() + margin_s, call.deadline)
    except Exception as exc:
        fault("timeout_record", "the timeout record could not be written", exc)


class Recorder:
    """Opens and closes the invocations of one instrumented handler."""

    __slots__ = ("model", "model_version", "runtime", "variant")

    def __init__(
        self,
        runtime: Runtime,
        *,
        model: str | None,
        model_version: str | None,
        variant: str | None,
    ) -> None:
        self.runtime = runtime
        self.model = model
        self.model_version = model_version
        self.variant = variant
        try:
            settings = current()
            _exporters.get(settings)  # a wrong exporter name shows now, at init
            drift.get(settings)  # the baseline loads at init, not in the first request
            if runtime.init_type == SNAP_START and runtime.restore_mark is None:
                _register_restore_hook(runtime)
            if runtime.platform == "aws_lambda" and settings.timeout_margin_ms:
                _watchdog().start()  # one-time work belongs to init, not to the first request
            if runtime.platform == "gcp_cloud_run" and not runtime.identifying:
                from .gcp_instance import identify  # only Cloud Run pays for it

                runtime.identifying = True
                identify(runtime, runtime.metadata_host)
        except Exception as exc:  # the user's module must still import
            fault("init", "inferobs could not finish setting up; it will retry per call", exc)
        runtime.mark_init_end()

    def open(
        self,
        request_id: str | None,
        trace_id: str | None,
        remaining_ms: int | None,
        warmup: bool = False,
    ) -> Call | None:
        """Start recording; None when recording is off or could not start.

        The invocation is in flight from here until `close`; the handler's code
        runs in its scope (`Call.root`), which replaces whatever was there, so
        nothing left open by earlier code leaks in.
        """
        try:
            settings = current()
            if not settings.enabled:
                return None
            call = Call(
                self.runtime,
                settings,
                request_id=request_id,
                trace_id=trace_id,
                model=self.model,
                model_version=self.model_version,
                variant=self.variant,
                warmup=warmup,
            )
            margin = settings.timeout_margin_ms
            # no deadline, or one already inside the margin (a test double's 0): no watchdog
            if remaining_ms is not None:
                call.deadline = time.monotonic() + remaining_ms / 1000
                if margin and remaining_ms > margin:
                    (_the_watchdog or _watchdog()).arm(call, call.deadline - margin / 1000)
                    call.armed = True
            here = _scope.get()  # an invocation opened inside another runs within it
            _in_flight[call] = here[1] if here is not None and not here[1].closed else None
            extension = _post_invoke
            if extension is not None and extension.active:
                extension.opened(request_id)
            return call
        except Exception as exc:
            fault("open", "recording could not start for this invocation", exc)
            return None

    def close(
        self,
        call: Call,
        error: BaseException | None,
        token: Token[Frame | None] | None = None,
        *,
        flush: bool = True,
    ) -> None:
        """Finish recording and export the record, unless the watchdog already did.

        With ``token`` (from setting the call's scope), the scope is left first.
        ``flush=False``: never wait for network exporters to send (an HTTP server
        off Lambda, whose process does not freeze between requests).
        """
        if token is not None:
            leave(token)
        call.closed = True
        _in_flight.pop(call, None)
        try:
            writing = (_the_watchdog or _watchdog()).disarm(call) if call.armed else None
            if writing is not None:  # the timeout record is this invocation's line:
                writing.wait(call.settings.timeout_margin_ms / 1000)  # let it land
            elif error is None:
                # a server error answered without an exception is an error too
                http = call.http
                failed = http is not None and http.get("status_code", 0) >= 500
                _export(
                    _build(call, call.kind, "error" if failed else "ok", None, None), call.settings
                )
            else:
                stage = call.error_stage if error is call.error_exc else None
                record = _build(call, call.kind, "error", type(error).__name__, stage)
                _export(record, call.settings)
        except Exception as exc:
            fault("close", "the invocation record could not be built", exc)
        monitor = drift.monitor
        if monitor is not None:
            try:
                now_s = call.runtime.clock.wall_ns() / 1e9
                windows = monitor.closed(now_s=now_s)
                if windows:
                    _export_windows(windows, call.settings)
            except Exception as exc:
                fault("drift_window", "closed drift windows could not be exported", exc)
        extension = _post_invoke
        # the extension sends once the response is out, if it waits for this request
        sent_later = extension is not None and extension.closed(call.request_id)
        if flush and _exporters.flushers and not sent_later:
            _flush_network(time.monotonic() + call.settings.flush_deadline_ms / 1000, call.deadline)


def leave(token: Token[Frame | None]) -> Frame | None:
    """Undo setting a scope; returns the scope being left, for a generator to resume in."""
    here = _scope.get()
    try:
        _scope.reset(token)
    except ValueError:  # left in another context than entered: record anyway
        fault("close_context", "an invocation was closed where it was not opened")
    return here


def _build(  # noqa: PLR0915  (unrolled: one statement a field, on every invocation)
    call: Call,
    kind: str,
    status: str,
    error_type: str | None,
    error_stage: str | None,
    *,
    running: list[str] | None = None,
) -> Invocation:
    """The record, written field by field in schema order, empty fields left out.

    Hand-unrolled because it runs on every invocation: the environment's
    constant fields come from one cached dict.
    """
    duration_ns = call.monotonic() - call.start_mono
    _exporters.get(call.settings)  # what they want of the record: stage starts, its JSON
    out = Invocation.__new__(Invocation)  # filled in place: no copy
    out["schema"] = SCHEMA_VERSION
    out["event"] = EVENT
    out["kind"] = kind
    if call.request_id is not None:
        out["id"] = call.request_id
    if call.trace_id is not None:
        out["trace_id"] = call.trace_id
    out["start"] = call.start_wall
    out["duration_ms"] = duration_ns // 1000 / 1000
    out["status"] = status
    if error_type is not None:
        out["error_type"] = error_type
    if error_stage is not None:
        out["error_stage"] = error_stage
    if call.cold_start:
        out["cold_start"] = True
    if call.init_ms is not None:
        out["init_ms"] = round(call.init_ms, 3)
    if call.model is not None:
        out["model"] = call.model
    if call.model_version is not None:
        out["model_version"] = call.model_version
    if call.variant is not None:
        out["variant"] = call.variant
    if call.detailed:
        if running is None and not call.open_stages:  # the usual case, inline: it is hot
            # a copy first: a worker thread may add a stage while this runs
            out["stages"] = {path: ns // 1000 / 1000 for path, ns in list(call.stages.items())}
        else:
            out["stages"] = _stages(call, running)
        if running is None:
            out["unstaged_ms"] = max(duration_ns - call.top_level_ns, 0) // 1000 / 1000
        if call.stage_starts and _exporters.traced:
            out["stage_starts"] = {p: ns // 1000 / 1000 for p, ns in call.stage_starts.items()}
        if call.input is not None:
            out["input"] = call.input
    if call.drift_observations:
        out["drift_observations"] = call.drift_observations
    if call.tags:
        out["tags"] = call.tags if running is None else dict(call.tags)
    if call.http is not None:
        out["http"] = dict(call.http)
    if call.sample_rate != 1.0:
        out["sample_rate"] = call.sample_rate
    if getrusage is not None and (
        call.cold_start or status == "error" or call.start_mono >= _rss.due or running is not None
    ):
        out["max_rss_mb"] = _peak_rss(call.start_mono)
    if call.faults:
        out["sdk_faults"] = call.faults
    _append_environment(out, call)
    return out


def _append_environment(out: Invocation, call: Call) -> None:
    """The environment's constant fields, last; where the line or the store will want
    the record's JSON, it is made now from the per-call fields and the environment's
    encoding, made once per environment (`inferobs.export.lines.encoded` gives it)."""
    environment = _environment(call.runtime, call.settings)
    json = _exporters.json
    if json is None:
        out.update(environment.fields)
        return
    encode, primed = json
    body = encode(out)
    out.update(environment.fields)
    tail = environment.tail
    if tail is None:
        fields = environment.fields
        tail = environment.tail = f",{encode(fields)[1:]}" if fields else "}"
    primed(out, body[:-1] + tail)


def _stages(call: Call, running: list[str] | None) -> dict[str, float]:
    """Stage times in ms while some are open (a timeout; one left open; one still going
    in a thread): an open stage shows only what it completed before, or nothing."""
    stages = list(call.stages.items())  # a copy: the watchdog reads it mid-call
    still = set(running if running is not None else [f[2] for f in list(call.open_stages)])
    return {path: ns // 1000 / 1000 for path, ns in stages if ns or path not in still}


class _Environments:
    """The constant tail of every record, per (runtime, settings) pair: its fields, and
    the same encoded once as the end of a JSON line."""

    __slots__ = ("fields", "key", "tail")

    def __init__(self) -> None:
        self.key: tuple[Runtime, Settings, str] | None = None
        self.fields: dict[str, Any] = {}
        self.tail: str | None = None  # the fields as the end of a JSON line, once asked for


_environments = _Environments()


def _environment(runtime: Runtime, settings: Settings) -> _Environments:
    cache = _environments
    key = cache.key
    # the instance id can change once (Cloud Run's, when the metadata server answers)
    if (
        key is None
        or key[0] is not runtime
        or key[1] is not settings
        or key[2] is not runtime.instance_id
    ):
        values = {
            "platform": runtime.platform,
            "service": settings.service,
            "function": runtime.function,
            "version": runtime.version,
            "memory_mb": runtime.memory_mb,
            "init_type": runtime.init_type,
            "instance_id": runtime.instance_id,
        }
        cache.fields = {k: v for k, v in values.items() if v is not None}
        cache.tail = None
        cache.key = (runtime, settings, runtime.instance_id)
    return cache


def _export(record: Invocation, settings: Settings) -> None:
    for exporter in _exporters.get(settings):
        try:
            exporter.export(record)
        except Exception as exc:
            fault("export", f"exporter {type(exporter).__name__} failed", exc)


def _export_windows(windows: list[dict[str, Any]], settings: Settings) -> None:
    """Drift window records to every exporter that takes them (``export_window``)."""
    for exporter in _exporters.get(settings):
        export_window = getattr(exporter, "export_window", None)
        if export_window is None:
            continue
        for window in windows:
            try:
                export_window(window)
            except Exception as exc:
                fault("export", f"exporter {type(exporter).__name__} failed", exc)


def _flush_network(until: float, deadline: float | None) -> None:
    """Have the network exporters send what they batched, waiting until ``until`` at most,
    and never more than a tenth of the time left before the platform's ``deadline``.

    The process may be frozen once the handler returns; what is not sent by
    then goes with the next invocation's flush (`inferobs.export.sending`).
    """
    if deadline is not None:
        now = time.monotonic()
        until = min(until, now + max(deadline - now, 0.0) / 10)
    for exporter in _exporters.flushers:  # resolved for the call's settings by its export
        try:
            exporter.flush_by(until)
        except Exception as exc:
            fault("export", f"exporter {type(exporter).__name__} could not flush", exc)


def flush_network_at_exit(within_s: float = EXIT_FLUSH_S) -> None:
    """Give the network exporters ``within_s`` to send what they hold (at exit, on SIGTERM)."""
    try:
        from .export.sending import ending

        ending()
        _flush_network(time.monotonic() + within_s, None)
    except Exception as exc:  # during interpreter shutdown: nothing more to do
        fault("export", "the network exporters could not flush at exit", exc)


def _register_restore_hook(runtime: Runtime) -> None:
    """Mark SnapStart restores with the runtime's after-restore hook, where installed."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        fault("snap_start", "snapshot_restore_py is missing; restore time comes from REPORT")
        return
    register_after_restore(runtime.mark_restored)
