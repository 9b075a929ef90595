"""The `Invocation` record: the one thing every part of inferobs speaks.

Middleware builds it, exporters translate it, sources and readers rebuild it.
It is plain data with a versioned JSON form; see docs/log-schema.md for the
field-by-field contract. Empty fields are left out of the JSON form because
every byte of a per-invocation log line is paid for at ingestion.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["EVENT", "KINDS", "SCHEMA_VERSION", "STATUSES", "Invocation", "RecordError"]

SCHEMA_VERSION = 1
EVENT = "inferobs.invocation"
KINDS = ("invocation", "warmup", "timeout")
STATUSES = ("ok", "error")


class RecordError(ValueError):
    """A dict or line is not a valid invocation record; the message names the field."""


# name -> (accepted JSON types, meaning). The single source of the schema: the
# docs table, validation and the JSON round-trip are all derived from it.
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "schema": ((int,), "record schema version; readers accept versions up to their own"),
    "event": ((str,), "always `inferobs.invocation`"),
    "kind": ((str,), "`invocation`, `warmup` (a scheduled keep-warm ping) or `timeout`"),
    "id": ((str,), "the platform's request id (`faas.invocation_id`)"),
    "trace_id": ((str,), "the distributed trace id (X-Ray `Root=` on AWS)"),
    "platform": ((str,), "`aws_lambda`, or `local` off-cloud (`cloud.platform`)"),
    "service": ((str,), "the application name from settings"),
    "function": ((str,), "the function's name (`faas.name`)"),
    "version": ((str,), "the function version or alias that ran (`faas.version`)"),
    "instance_id": ((str,), "one execution environment and process (`faas.instance`)"),
    "model": ((str,), "the model's name"),
    "model_version": ((str,), "the model's version"),
    "variant": ((str,), "the deployment arm: `A`, `B`, `shadow`, ..."),
    "sample_rate": (
        (int, float),
        "probability that this line carries detail (stages, input); absent means 1",
    ),
    "start": ((int,), "when the handler was entered, Unix epoch nanoseconds"),
    "duration_ms": ((int, float), "handler wall-clock time, milliseconds"),
    "memory_mb": ((int,), "memory configured for the function (`faas.max_memory`)"),
    "max_rss_mb": ((int, float), "peak resident memory of the process so far, MiB"),
    "cold_start": ((bool,), "true only when a user's request waited for init"),
    "init_type": (
        (str,),
        "where the environment came from: `on-demand`, `provisioned-concurrency`, "
        "`snap-start`, `lambda-managed-instances`",
    ),
    "init_ms": ((int, float), "the init work, on the first invocation of an environment only"),
    "stages": ((dict,), "stage name -> milliseconds, in order of first entry; nested as `a/b`"),
    "unstaged_ms": ((int, float), "handler time outside any top-level stage"),
    "input": ((dict,), "the input's summary: kind, shape, dtype, sizes; never values"),
    "status": ((str,), "`ok` or `error`"),
    "error_type": ((str,), "the exception's class name (never its message)"),
    "error_stage": ((str,), "the stage that was running when the error or timeout hit"),
    "tags": ((dict,), "bounded user key/values from `inferobs.tag`"),
    "sdk_faults": ((int,), "internal inferobs faults during this invocation (absent when 0)"),
}


class Invocation:
    """One handler invocation, as recorded.

    Attribute names are the JSON field names; `FIELDS` documents each one.
    """

    __slots__ = tuple(FIELDS)

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
    input: dict[str, Any] | None
    status: str
    error_type: str | None
    error_stage: str | None
    tags: dict[str, Any]
    sdk_faults: int

    def __init__(
        self,
        *,
        start: int,
        duration_ms: float,
        kind: str = "invocation",
        id: str | None = None,
        trace_id: str | None = None,
        platform: str | None = None,
        service: str | None = None,
        function: str | None = None,
        version: str | None = None,
        instance_id: str | None = None,
        model: str | None = None,
        model_version: str | None = None,
        variant: str | None = None,
        sample_rate: float = 1.0,
        memory_mb: int | None = None,
        max_rss_mb: float | None = None,
        cold_start: bool = False,
        init_type: str | None = None,
        init_ms: float | None = None,
        stages: dict[str, float] | None = None,
        unstaged_ms: float | None = None,
        input: dict[str, Any] | None = None,
        status: str = "ok",
        error_type: str | None = None,
        error_stage: str | None = None,
        tags: dict[str, Any] | None = None,
        sdk_faults: int = 0,
        schema: int = SCHEMA_VERSION,
        event: str = EVENT,
    ) -> None:
        self.schema = schema
        self.event = event
        self.kind = kind
        self.id = id
        self.trace_id = trace_id
        self.platform = platform
        self.service = service
        self.function = function
        self.version = version
        self.instance_id = instance_id
        self.model = model
        self.model_version = model_version
        self.variant = variant
        self.sample_rate = sample_rate
        self.start = start
        self.duration_ms = duration_ms
        self.memory_mb = memory_mb
        self.max_rss_mb = max_rss_mb
        self.cold_start = cold_start
        self.init_type = init_type
        self.init_ms = init_ms
        self.stages = {} if stages is None else stages
        self.unstaged_ms = unstaged_ms
        self.input = input
        self.status = status
        self.error_type = error_type
        self.error_stage = error_stage
        self.tags = {} if tags is None else tags
        self.sdk_faults = sdk_faults

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: fields in schema order, empty ones left out."""
        out: dict[str, Any] = {}
        for name in _SLOTS:
            value = getattr(self, name)
            if value is None or value is False or value == {}:
                continue
            out[name] = value
        if out["sample_rate"] == 1.0:
            del out["sample_rate"]
        if not self.sdk_faults:
            del out["sdk_faults"]
        return out

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
        schema = data.get("schema")
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise RecordError(f"schema={schema!r}: expected a positive integer")
        if schema > SCHEMA_VERSION:
            raise RecordError(
                f"schema={schema}: written by a newer inferobs (this one reads up to "
                f"{SCHEMA_VERSION}); upgrade inferobs to read it"
            )
        values: dict[str, Any] = {}
        for name, (types, _) in FIELDS.items():
            if name not in data:
                continue
            value = data[name]
            if value is None:
                continue
            if isinstance(value, bool) and bool not in types:
                raise RecordError(f"{name}={value!r}: expected {_names(types)}")
            if not isinstance(value, types):
                raise RecordError(f"{name}={value!r}: expected {_names(types)}")
            values[name] = value
        for name in ("start", "duration_ms"):
            if name not in values:
                raise RecordError(f"{name}: required field is missing")
        if values.get("kind", "invocation") not in KINDS:
            raise RecordError(f"kind={values['kind']!r}: expected one of {', '.join(KINDS)}")
        if values.get("status", "ok") not in STATUSES:
            raise RecordError(f"status={values['status']!r}: expected one of {', '.join(STATUSES)}")
        for name, value in values.get("stages", {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RecordError(f"stages.{name}={value!r}: expected milliseconds")
        return cls(**values)

    def to_json(self) -> str:
        """The record as one compact JSON line (no newline), as exporters write it."""
        from .export.lines import encode

        return encode(self)

    @classmethod
    def from_json(cls, line: str | bytes) -> Invocation:
        """Read one JSON line; `RecordError` says what is wrong with a bad one."""
        import json

        try:
            data = json.loads(line)
        except ValueError as exc:
            raise RecordError(f"not a JSON line ({exc})") from None
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Invocation):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _SLOTS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"Invocation({fields})"


_SLOTS = tuple(FIELDS)


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
