"""The `Invocation` record: the one thing every part of inferobs speaks.

Middleware builds it, exporters translate it, sources and readers rebuild it.
It is plain data with a versioned JSON form; see docs/log-schema.md for the
field-by-field contract. Empty fields are left out of the JSON form because
every byte of a per-invocation log line is paid for at ingestion.
"""

from __future__ import annotations

from math import isfinite, isnan

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "EVENT",
    "KINDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Invocation",
    "RecordError",
    "check_schema",
    "decode_json",
]

SCHEMA_VERSION = 1
EVENT = "inferobs.invocation"
KINDS = ("invocation", "warmup", "timeout")
STATUSES = ("ok", "error")


class RecordError(ValueError):
    """A dict or line is not a valid invocation record; the message names the field."""


# name -> (accepted JSON types, meaning), in the order lines are written: what
# happened first, then where it ran (constant for an environment). The single
# source of the schema: validation, the round trip and the docs test use it.
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "schema": ((int,), "record schema version; readers accept versions up to their own"),
    "event": ((str,), "always `inferobs.invocation`"),
    "kind": ((str,), "`invocation`, `warmup` (a scheduled keep-warm ping) or `timeout`"),
    "id": ((str,), "the platform's request id (`faas.invocation_id`)"),
    "trace_id": ((str,), "the distributed trace id (X-Ray `Root=` on AWS)"),
    "start": ((int,), "when the handler was entered, Unix epoch nanoseconds"),
    "duration_ms": ((int, float), "handler wall-clock time, milliseconds"),
    "status": ((str,), "`ok` or `error`"),
    "error_type": ((str,), "the exception's class name (never its message)"),
    "error_stage": ((str,), "the stage that was running when the error or timeout hit"),
    "cold_start": ((bool,), "true only when a user's request waited for init"),
    "init_ms": ((int, float), "the init work, on the first invocation of an environment only"),
    "model": ((str,), "the model's name"),
    "model_version": ((str,), "the model's version"),
    "variant": ((str,), "the deployment arm: `A`, `B`, `shadow`, ..."),
    "stages": ((dict,), "stage name -> milliseconds, in order of first entry; nested as `a/b`"),
    "unstaged_ms": ((int, float), "handler time outside any top-level stage"),
    "stage_starts": (
        (dict,),
        "stage name -> milliseconds from the start to its first entry; only when a "
        "tracing exporter (`aws.xray`) is configured",
    ),
    "input": ((dict,), "the input's summary: kind, shape, dtype, sizes; never values"),
    "drift_observations": (
        (int,),
        "predictions and feature rows this invocation counted for drift (absent when 0)",
    ),
    "tags": ((dict,), "bounded user key/values from `inferobs.tag`"),
    "http": (
        (dict,),
        "an HTTP request's `method`, `route` (the template, never the raw path), "
        "`status_code`, `request_bytes`, `response_bytes`, and `disconnected` when the "
        "client left first; a 5xx is `status: error`, a 4xx stays `ok`",
    ),
    "sample_rate": (
        (int, float),
        "probability that this line carries detail (stages, input); absent means 1",
    ),
    "max_rss_mb": (
        (int, float),
        "peak resident memory of the process so far, MiB; on cold-start, error and timeout "
        "lines, and otherwise on at most one line a second",
    ),
    "sdk_faults": ((int,), "internal inferobs faults during this invocation (absent when 0)"),
    "platform": (
        (str,),
        "`aws_lambda`, `gcp_cloud_run`, `azure_functions`, or `local` (a laptop, a plain "
        "container) (`cloud.platform`; docs/platforms.md)",
    ),
    "service": ((str,), "the application name from settings; absent means the function's"),
    "function": ((str,), "the function's name (`faas.name`)"),
    "version": ((str,), "the function version or alias that ran (`faas.version`)"),
    "memory_mb": ((int,), "memory configured for the function (`faas.max_memory`)"),
    "init_type": (
        (str,),
        "where the environment came from: `on-demand`, `provisioned-concurrency`, "
        "`snap-start`, `lambda-managed-instances`",
    ),
    "instance_id": ((str,), "one execution environment and process (`faas.instance`)"),
}


def check_schema(schema: object, newest: int, error: type[ValueError]) -> int:
    """A file's or record's schema version, if this inferobs reads it; else ``error``,
    saying whether it is malformed or written by a newer inferobs."""
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise error(f"schema={schema!r}: expected a positive integer")
    if schema > newest:
        raise error(
            f"schema={schema}: written by a newer inferobs (this one reads up to "
            f"{newest}); upgrade inferobs to read it"
        )
    return schema


class Invocation(dict):  # type: ignore[type-arg]
    """One handler invocation, as recorded: its JSON form, with the fields as attributes.

    The record *is* the dict that is written (empty fields left out, keys in
    schema order), so exporting it costs no conversion; `FIELDS` documents each
    key. Reading an absent field gives its default (None, ``False``, ``{}``,
    1.0 for ``sample_rate``, 0 for ``sdk_faults``); setting one to its empty
    value removes the key.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        schema: int
        event: str
        kind: str
        id: str | None
        trace_id: str | None
        platform: str | None
        service: str | None
        function: str | None
        version: str | None
        instance_id: str | None
        model: str | None
        model_version: str | None
        variant: str | None
        sample_rate: float
        start: int
        duration_ms: float
        memory_mb: int | None
        max_rss_mb: float | None
        cold_start: bool
        init_type: str | None
        init_ms: float | None
        stages: dict[str, float]
        unstaged_ms: float | None
        stage_starts: dict[str, float]
        input: dict[str, Any] | None
        status: str
        error_type: str | None
        error_stage: str | None
        tags: dict[str, Any]
        drift_observations: int
        sdk_faults: int

    def __init__(self, *, start: int, duration_ms: float, **fields: Any) -> None:
        """Build a record from fields by name; unknown names are a `RecordError`."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise RecordError(f"unknown field(s): {', '.join(sorted(unknown))}")
        fields["start"], fields["duration_ms"] = start, duration_ms
        values = {**_REQUIRED, **fields}
        super().__init__(
            (name, values[name])
            for name in FIELDS
            if name in values and not _empty(name, values[name])
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form as a plain dict (a shallow copy)."""
        return dict(self)

    def to_json(self) -> str:
        """The record as one compact JSON line (no newline), as exporters write it."""
        from .export.lines import encode

        return encode(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invocation:
        """Rebuild a record from its JSON form, checking every known field.

        Fields this version does not know (an exporter's metadata such as EMF's
        ``_aws``) are ignored, so lines written by newer or decorated writers
        still read.
        """
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("event") != EVENT:
            raise RecordError(f"event={data.get('event')!r}: not an {EVENT} record")
        check_schema(data.get("schema"), SCHEMA_VERSION, RecordError)
        values: dict[str, Any] = {}
        for name, (types, _) in FIELDS.items():
            value = data.get(name)
            if value is None:
                continue
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise RecordError(f"{name}={value!r}: expected {_names(types)}")
            if isinstance(value, float) and not isfinite(value):
                raise RecordError(f"{name}={_json_word(value)}: {_FINITE}")
            values[name] = value
        for name in ("start", "duration_ms"):
            if name not in values:
                raise RecordError(f"{name}: required field is missing")
        if values.get("kind", "invocation") not in KINDS:
            raise RecordError(f"kind={values['kind']!r}: expected one of {', '.join(KINDS)}")
        if values.get("status", "ok") not in STATUSES:
            raise RecordError(f"status={values['status']!r}: expected one of {', '.join(STATUSES)}")
        for field in ("stages", "stage_starts"):
            for name, value in values.get(field, {}).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise RecordError(f"{field}.{name}={value!r}: expected milliseconds")
                if not isfinite(value):
                    raise RecordError(f"{field}.{name}={_json_word(value)}: {_FINITE}")
        return cls(**values)

    @classmethod
    def from_json(cls, line: str | bytes) -> Invocation:
        """Read one JSON line; `RecordError` says what is wrong with a bad one."""
        if isinstance(line, bytes):
            import json

            line = line.decode(json.detect_encoding(line), "surrogatepass")
        text = line.strip()
        try:
            data, end, non_finite = decode_json(text)
            if end != len(text):
                raise ValueError(f"extra data after the record at char {end}")
        except ValueError as exc:
            raise RecordError(f"not a JSON line ({exc})") from None
        if non_finite is not None:
            raise RecordError(non_finite)
        return cls.from_dict(data)

    def __getattr__(self, name: str) -> Any:
        # reached only for names the class lacks, which is every field
        if name not in FIELDS:
            raise AttributeError(f"Invocation has no field {name!r}")
        value = self.get(name, _READ_AS.get(name))
        return {} if value is None and name in _READ_AS_EMPTY else value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FIELDS:
            raise AttributeError(f"Invocation has no field {name!r}")
        if _empty(name, value):
            self.pop(name, None)
        else:
            self[name] = value

    def __repr__(self) -> str:
        return f"Invocation({dict.__repr__(self)})"


def decode_json(text: str, at: int = 0) -> tuple[Any, int, str | None]:
    """The JSON value that starts at ``at`` in ``text``, where it ends, and any non-finite number.

    NaN and ±Infinity are not JSON, though Python's json reads and writes
    them: a record that holds one is refused by other tools, and a report
    would write it back out as invalid JSON. The third item names the first
    one found (``tags.score=NaN: expected a finite number``), or is None.
    Malformed JSON raises ``ValueError``.
    """
    strict, lenient = _decoders()
    try:
        try:
            data, end = strict.raw_decode(text, at)
            return data, end, None
        except _NonFinite:  # rare: read it again, only to say where it is
            data, end = lenient.raw_decode(text, at)
            return data, end, f"{_non_finite_in(data, '')}: {_FINITE}"
    except RecursionError:  # a line of 100,000 '[': a problem with that line, not a crash
        raise ValueError("nested too deeply to read") from None


class _NonFinite(ValueError):
    """Raised by the strict decoder at a NaN or ±Infinity."""


def _refuse(name: str) -> float:
    raise _NonFinite(name)


_built: list[Any] = []  # (strict, lenient) decoders, built on first use: json is an import


def _decoders() -> list[Any]:
    if not _built:
        import json

        _built.extend((json.JSONDecoder(parse_constant=_refuse), json.JSONDecoder()))
    return _built


_FINITE = "expected a finite number (JSON has no NaN or Infinity)"


def _non_finite_in(value: Any, path: str) -> str | None:
    """Where the first NaN or ±Infinity in a decoded value is, as ``path=word``."""
    if isinstance(value, float) and not isfinite(value):
        return f"{path}={_json_word(value)}"
    if isinstance(value, dict):
        items: Any = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for where, item in items:
        found = _non_finite_in(item, where)
        if found is not None:
            return found
    return None


def _json_word(value: float) -> str:
    """How Python's json writes a non-finite float."""
    return "NaN" if isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# Fields always written, with the value a new record starts from.
_REQUIRED: dict[str, Any] = {
    "schema": SCHEMA_VERSION,
    "event": EVENT,
    "kind": "invocation",
    "status": "ok",
}
# What an absent field reads as; a field set to this value is left out.
_DEFAULTS: dict[str, Any] = {
    "sample_rate": 1.0,
    "cold_start": False,
    "sdk_faults": 0,
    "drift_observations": 0,
}
_MAPPINGS = frozenset({"stages", "stage_starts", "input", "tags"})
_READ_AS = {**_REQUIRED, **_DEFAULTS}
_READ_AS_EMPTY = frozenset({"stages", "stage_starts", "tags"})


def _empty(name: str, value: Any) -> bool:
    if name in _REQUIRED:
        return False
    return value is None or value == _DEFAULTS.get(name) or (name in _MAPPINGS and not value)


def _names(types: tuple[type, ...]) -> str:
    words = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        dict: "an object",
    }
    if types == (int, float):
        return "a number"
    return " or ".join(words[t] for t in types)
