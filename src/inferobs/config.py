"""Settings from code (`configure`) and from ``INFEROBS_*`` environment variables.

A wrong setting must surface where the user can fix it, never inside a request.
`configure` is therefore strict: it raises `ConfigError` naming the setting.
When nobody calls `configure`, the environment is read leniently the first time a
handler is instrumented: a bad variable is reported once on stderr, by name, and
its default is used, so a typo in a deployment never takes the function down.
"""

from __future__ import annotations

import os
import sys
from math import isfinite, isnan

from .runtime import on_cloud
from .shape import MAX_KEY_TEXT

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .export import Exporter

__all__ = ["ConfigError", "Settings", "configure", "current", "parse_window"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A setting has a value inferobs cannot use; the message names the setting."""


def parse_window(text: str) -> float:
    """A window or period as seconds: ``30s``, ``5m``, ``1h``, ``1d``, or a number of
    seconds; ValueError naming the text otherwise. One second to one day."""
    spec = str(text).strip().lower()
    try:
        seconds = float(spec) if spec[-1:].isdigit() else float(spec[:-1]) * _UNITS[spec[-1:]]
    except (ValueError, KeyError):
        raise ValueError(f"{text!r}: expected a window such as 30s, 5m, 1h or 1d") from None
    if not isfinite(seconds) or seconds < 1 or seconds > 86_400:
        raise ValueError(f"{text!r}: a window is 1 second to 1 day")
    return seconds


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of true/false/1/0/yes/no/on/off")


def _parse_names(text: str) -> tuple[str, ...]:
    """A comma-separated list, each name stripped; empty names are dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Settings:
    """One validated, immutable set of options.

    Attributes
    ----------
    enabled: when false the decorator calls the handler and records nothing.
    service: a name for the whole application; defaults to the function name.
    exporters: where records go: built-in names (``stdout``, ``store``) or
        entry-point names of installed exporter packages, or `Exporter`
        objects. From the environment the default is ``stdout`` on a cloud
        runtime and ``stdout, store`` elsewhere. Never empty: ``enabled`` is
        the one way to record nothing, so an empty list is a mistake.
    sample_rate: the fraction of invocations whose detail (stage timings and
        input summary) is written; every invocation is still counted by its
        line, which carries the rate so readers can re-weight.
    store_path: the folder of the embedded store used off-cloud.
    proactive_init_s: a first invocation arriving more than this many seconds
        after init finished did not wait for init (Lambda initialised the
        environment ahead of demand), so it is not a cold start.
    timeout_margin_ms: the watchdog writes the ``timeout`` record this long
        before the platform deadline; 0 turns the watchdog off.
    flush_deadline_ms: how long, at most, the end of an invocation waits for
        network exporters to send what they batched (never more than a tenth
        of the time the invocation has left); what is not sent by then goes
        with the next invocation's flush.
    request_timeout_s: an HTTP surface's request deadline (ASGI, WSGI), where the
        platform gives the handler none (Cloud Run, a container): its timeout
        line is written as on Lambda. 0: no deadline.
    input_max_depth: how deep nested inputs are summarised.
    input_max_items: how many elements a summary may visit, whatever the input's size.
    input_keys: dict keys whose text input summaries may write, besides the
        built-in envelope keys of model servers and gateways
        (`inferobs.shape.ENVELOPE_KEYS`). Keys are request data too (a user id
        as a key, a header name), so any other key is counted, never written.
    baseline: the drift baseline file (`obs baseline build`) that
        ``observe_prediction`` and ``observe_features`` count against; None
        turns drift counting off.
    drift_window: seconds per drift window (``"30s"``, ``"5m"``, ``"1h"`` are
        accepted too); windows are aligned to the clock so instances merge.
    drift_every_invocation: emit the open window's counts after every
        invocation instead of once per window, for functions so quiet that an
        idle environment would often be reclaimed with its window still open.
    """

    __slots__ = (
        "baseline",
        "drift_every_invocation",
        "drift_window",
        "enabled",
        "exporters",
        "flush_deadline_ms",
        "input_keys",
        "input_max_depth",
        "input_max_items",
        "proactive_init_s",
        "request_timeout_s",
        "sample_rate",
        "service",
        "store_path",
        "timeout_margin_ms",
    )

    # setting -> the environment variable that sets it
    ENV: Mapping[str, str] = {
        "enabled": "INFEROBS_ENABLED",
        "service": "INFEROBS_SERVICE",
        "exporters": "INFEROBS_EXPORTERS",
        "sample_rate": "INFEROBS_SAMPLE_RATE",
        "store_path": "INFEROBS_STORE_PATH",
        "proactive_init_s": "INFEROBS_PROACTIVE_INIT_S",
        "timeout_margin_ms": "INFEROBS_TIMEOUT_MARGIN_MS",
        "flush_deadline_ms": "INFEROBS_FLUSH_DEADLINE_MS",
        "request_timeout_s": "INFEROBS_REQUEST_TIMEOUT_S",
        "input_max_depth": "INFEROBS_INPUT_MAX_DEPTH",
        "input_max_items": "INFEROBS_INPUT_MAX_ITEMS",
        "input_keys": "INFEROBS_INPUT_KEYS",
        "baseline": "INFEROBS_BASELINE",
        "drift_window": "INFEROBS_DRIFT_WINDOW",
        "drift_every_invocation": "INFEROBS_DRIFT_EVERY_INVOCATION",
    }

    enabled: bool
    service: str | None
    exporters: tuple[str | Exporter, ...]
    sample_rate: float
    store_path: str
    proactive_init_s: float
    timeout_margin_ms: float
    flush_deadline_ms: float
    request_timeout_s: float
    input_max_depth: int
    input_max_items: int
    input_keys: tuple[str, ...]
    baseline: str | None
    drift_window: float
    drift_every_invocation: bool

    def __init__(
        self,
        *,
        enabled: bool = True,
        service: str | None = None,
        exporters: tuple[str | Exporter, ...] | list[str | Exporter] = ("stdout",),
        sample_rate: float = 1.0,
        store_path: str = ".inferobs",
        proactive_init_s: float = 10.0,
        timeout_margin_ms: float = 50.0,
        flush_deadline_ms: float = 50.0,
        request_timeout_s: float = 0.0,
        input_max_depth: int = 4,
        input_max_items: int = 2048,
        input_keys: tuple[str, ...] | list[str] | frozenset[str] = (),
        baseline: str | None = None,
        drift_window: float | str = 300.0,
        drift_every_invocation: bool = False,
    ) -> None:
        set_ = object.__setattr__
        if not isinstance(enabled, bool):
            raise ConfigError(f"enabled={enabled!r}: expected True or False")
        set_(self, "enabled", enabled)
        if service is not None and (not isinstance(service, str) or not service.strip()):
            raise ConfigError(f"service={service!r}: expected a non-empty string or None")
        set_(self, "service", service)
        set_(self, "exporters", _check_exporters(exporters))
        set_(self, "sample_rate", _number(sample_rate, "sample_rate", 0.0, 1.0))
        if not isinstance(store_path, str) or not store_path or "\x00" in store_path:
            raise ConfigError(f"store_path={store_path!r}: expected a non-empty path string")
        set_(self, "store_path", store_path)
        set_(self, "proactive_init_s", _number(proactive_init_s, "proactive_init_s", 0.0, None))
        set_(
            self,
            "timeout_margin_ms",
            _number(timeout_margin_ms, "timeout_margin_ms", 0.0, 60_000.0),
        )
        set_(
            self,
            "flush_deadline_ms",
            _number(flush_deadline_ms, "flush_deadline_ms", 0.0, 10_000.0),
        )
        # an HTTP surface's deadline where the platform hands the handler none (0: none)
        set_(
            self,
            "request_timeout_s",
            _number(request_timeout_s, "request_timeout_s", 0.0, 86_400.0),
        )
        set_(self, "input_max_depth", _integer(input_max_depth, "input_max_depth", 0, 64))
        set_(self, "input_max_items", _integer(input_max_items, "input_max_items", 1, 1_000_000))
        set_(self, "input_keys", _check_keys(input_keys))
        if baseline is not None and (not isinstance(baseline, str) or not baseline.strip()):
            raise ConfigError(f"baseline={baseline!r}: expected the path of a baseline file")
        set_(self, "baseline", baseline)
        set_(self, "drift_window", _window(drift_window))
        if not isinstance(drift_every_invocation, bool):
            raise ConfigError(
                f"drift_every_invocation={drift_every_invocation!r}: expected True or False"
            )
        set_(self, "drift_every_invocation", drift_every_invocation)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are immutable; call inferobs.configure() instead")

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.ENV)
        return f"Settings({body})"

    def replace(self, **changes: object) -> Settings:
        """A copy with some options changed, validated like the original."""
        unknown = set(changes) - set(self.ENV)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(self.ENV)}"
            )
        values: dict[str, object] = {name: getattr(self, name) for name in self.ENV}
        values.update(changes)
        return Settings(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, strict: bool = True) -> Settings:
        """Settings from ``INFEROBS_*`` variables over the defaults.

        With ``strict=False`` a bad variable is reported on stderr and ignored.
        """
        env = os.environ if environ is None else environ
        settings = cls()
        if not on_cloud(env):  # off-cloud, records also go to the embedded store
            settings = settings.replace(exporters=("stdout", "store"))
        for name, variable in cls.ENV.items():
            text = env.get(variable)
            if text is None or text == "":
                continue
            try:
                value = _from_text(name, text)
                settings = settings.replace(**{name: value})
            except (ValueError, ConfigError) as exc:
                reason = str(exc).split(": ", 1)[-1]
                error = ConfigError(f"{variable}={text!r}: {reason}")
                if strict:
                    raise error from None
                sys.stderr.write(f"inferobs: ignoring {error}; using the default\n")
        return settings


def _from_text(name: str, text: str) -> object:
    if name in ("enabled", "drift_every_invocation"):
        return _parse_bool(text)
    if name in ("exporters", "input_keys"):
        return _parse_names(text)
    if name in ("service", "store_path", "baseline", "drift_window"):
        return text
    # int() and float() name the text in their messages; say what was expected instead
    if name in ("input_max_depth", "input_max_items"):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def _number(value: object, name: str, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or isnan(value):
        raise ConfigError(f"{name}={value!r}: expected a number")
    if not isfinite(value):
        raise ConfigError(f"{name}={value!r}: expected a finite number")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise ConfigError(f"{name}={value!r}: expected a number {bounds}")
    return float(value)


def _integer(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r}: expected a whole number")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value!r}: expected a whole number between {low} and {high}")
    return value


def _window(value: object) -> float:
    """A drift window in seconds, from a number or a duration such as ``5m``."""
    if isinstance(value, str):
        try:
            return parse_window(value)
        except ValueError as exc:
            raise ConfigError(f"drift_window={exc}") from None
    return _number(value, "drift_window", 1.0, 86_400.0)


def _check_exporters(exporters: object) -> tuple[str | Exporter, ...]:
    if isinstance(exporters, str) or not isinstance(exporters, (tuple, list)):
        raise ConfigError(f"exporters={exporters!r}: expected a list of names or exporters")
    if not exporters:  # recording nothing is a decision, said in one place: enabled
        raise ConfigError(
            f"exporters={exporters!r}: expected at least one exporter "
            "(to record nothing, set enabled=False)"
        )
    seen: list[object] = []
    for item in exporters:
        if any(item is other or item == other for other in seen):  # each would get every record
            raise ConfigError(f"exporters: {item!r} is given twice")
        seen.append(item)
        if isinstance(item, str):
            if not item:
                raise ConfigError("exporters: an exporter name is empty")
        elif not callable(getattr(item, "export", None)) and not callable(
            getattr(item, "line_members", None)
        ):
            raise ConfigError(
                f"exporters: {item!r} is neither an exporter name nor an object with "
                "export() (or line_members(), riding on the JSON line)"
            )
    return tuple(exporters)


def _check_keys(keys: object) -> tuple[str, ...]:
    if isinstance(keys, (set, frozenset)):
        keys = sorted(keys, key=str)  # a set's order changes between processes
    if not isinstance(keys, (tuple, list)):
        raise ConfigError(f"input_keys={keys!r}: expected a list of key names")
    for key in keys:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_TEXT:
            raise ConfigError(
                f"input_keys: {key!r} is not a key name "
                f"(expected a non-empty string of at most {MAX_KEY_TEXT} characters)"
            )
    return tuple(dict.fromkeys(keys))  # once each, in the order given


_settings: Settings | None = None  # the process-wide settings, once resolved


def current() -> Settings:
    """The settings in force: the last `configure`, else the environment (leniently)."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env(strict=False)
    return _settings


def configure(**options: object) -> Settings:
    """Set options for this process, over the ``INFEROBS_*`` environment.

    Raises `ConfigError`, naming the setting or variable, when a value is wrong;
    call it at module scope so that a mistake shows at deploy time.
    """
    settings = Settings.from_env(strict=True).replace(**options)
    from .export import resolve

    resolve(settings.exporters, create=False)  # unknown names fail here, not in a request
    if settings.baseline is not None:  # a baseline that cannot be used fails here too
        from .drift.baseline import Baseline, BaselineError

        try:
            Baseline.load(settings.baseline)
        except BaselineError as exc:
            raise ConfigError(f"baseline: {exc}") from None
    global _settings
    _settings = settings
    return settings
