"""The decorator: forms, stages, tags, errors, sampling, and never breaking the handler."""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from typing import Any

import pytest

import inferobs as obs
from inferobs.context import MAX_TAGS, faults_seen

from .helpers import Collect, Context, ManualClock, collecting, echo, noop

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "7",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[7]abc",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
}


def test_decorator_forms_keep_name_docstring_and_signature() -> None:
    sink = collecting()

    def plain(event: dict[str, Any], context: Any) -> int:
        """Doc of plain."""
        return 1

    bare = obs.instrument(plain)
    configured = obs.instrument(model="m")(plain)

    @obs.instrument
    def decorated(event: dict[str, Any], context: Any) -> int:
        """Doc of decorated."""
        return 2

    for wrapper in (bare, configured):
        assert wrapper.__name__ == "plain"
        assert wrapper.__doc__ == "Doc of plain."
        assert inspect.signature(wrapper) == inspect.signature(plain)
    assert decorated.__doc__ == "Doc of decorated."
    assert (bare({}, None), configured({}, None), decorated({}, None)) == (1, 1, 2)
    assert len(sink.records) == 3
    assert sink.records[1].model == "m"


def test_stages_in_order_nested_repeated_and_time_outside_them() -> None:
    sink = collecting()
    clock = ManualClock()

    @obs.instrument(runtime=obs.Runtime(environ={}, clock=clock))
    def handler(event: Any, context: Any) -> None:
        clock.advance(1)
        with obs.stage("preprocess"):
            clock.advance(2)
        with obs.stage("inference"):
            clock.advance(3)
            with obs.stage("forward"):
                clock.advance(4)
        for _ in range(2):
            with obs.stage("postprocess"):
                clock.advance(0.5)
        clock.advance(5)

    handler({}, None)
    (record,) = sink.records
    assert record.stages == {
        "preprocess": 2.0,
        "inference": 7.0,
        "inference/forward": 4.0,
        "postprocess": 1.0,
    }
    assert record.duration_ms == 16.0
    assert record.unstaged_ms == 6.0  # the 1 ms before and 5 ms after the stages


def test_stage_as_decorator_sync_and_async() -> None:
    sink = collecting()

    @obs.stage("tokenize")
    def tokenize(text: str) -> list[str]:
        return text.split()

    @obs.stage("infer")
    async def infer(tokens: list[str]) -> int:
        return len(tokens)

    @obs.instrument
    async def handler(event: Any, context: Any) -> int:
        return await infer(tokenize("a b c"))

    assert tokenize.__name__ == "tokenize"
    assert asyncio.run(handler({}, None)) == 3
    assert list(sink.records[0].stages) == ["tokenize", "infer"]


def test_stage_outside_an_invocation_is_a_no_op() -> None:
    with obs.stage("init-work") as timer:
        pass
    assert timer.name == "init-work"
    obs.tag(a=1)
    obs.observe_input([1, 2])
    obs.set_model(version="x")


def test_handler_exception_passes_through_unchanged_with_its_stage() -> None:
    sink = collecting()
    raised = ValueError("bad row 17")

    @obs.instrument
    def handler(event: Any, context: Any) -> None:
        with obs.stage("preprocess"):
            pass
        with obs.stage("inference"):
            raise raised

    with pytest.raises(ValueError) as caught:
        handler({}, Context())
    assert caught.value is raised
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert frames[-1].line == "raise raised"
    (record,) = sink.records
    assert (record.status, record.error_type, record.error_stage) == (
        "error",
        "ValueError",
        "inference",
    )
    assert "bad row" not in str(record.to_dict())


def test_error_outside_stages_and_handled_stage_errors() -> None:
    sink = collecting()

    @obs.instrument
    def handler(event: Any, context: Any) -> None:
        try:
            with obs.stage("inference"):
                raise KeyError("handled")
        except KeyError:
            pass
        raise RuntimeError("after the stages")

    with pytest.raises(RuntimeError):
        handler({}, None)
    assert sink.records[0].error_type == "RuntimeError"
    assert sink.records[0].error_stage is None


def test_tags_and_model_version_and_variant_per_invocation() -> None:
    sink = collecting()

    @obs.instrument(model="ranker", model_version="1", variant="A")
    def handler(event: Any, context: Any) -> None:
        if event.get("shadow"):
            obs.set_model(version="2", variant="shadow")
        obs.tag(customer_tier="gold", batch=4, ratio=0.5, ok=True, obj=object())

    handler({}, None)
    handler({"shadow": True}, None)
    first, second = sink.records
    assert (first.model, first.model_version, first.variant) == ("ranker", "1", "A")
    assert (second.model, second.model_version, second.variant) == ("ranker", "2", "shadow")
    assert first.tags["customer_tier"] == "gold"
    assert first.tags["batch"] == 4 and first.tags["ok"] is True
    assert first.tags["obj"].startswith("<object object")


def test_tags_are_bounded_and_overflow_is_counted_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = collecting()

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        obs.tag(**{f"k{i}": i for i in range(40)})
        obs.tag(**{"x" * 100: "y" * 1000})
        return "fine"

    assert handler({}, None) == "fine"
    (record,) = sink.records
    assert len(record.tags) == MAX_TAGS == 16
    assert record.sdk_faults == 25
    assert "at most 16" in capsys.readouterr().err


def test_bad_input_to_the_sdk_never_reaches_the_handler() -> None:
    sink = collecting()

    class Hostile:
        @property
        def shape(self) -> Any:
            raise RuntimeError("boom")

        def __str__(self) -> str:
            raise RuntimeError("no str")

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        with obs.stage(42):  # type: ignore[arg-type]
            obs.observe_input(Hostile())
        obs.tag(thing=Hostile())
        obs.set_model(version=3)  # type: ignore[arg-type]
        return "fine"

    assert handler({}, None) == "fine"
    (record,) = sink.records
    assert record.stages and "42" in record.stages
    assert record.input == {"kind": "tests.Hostile", "unreadable": True}
    assert record.model_version == "3"
    assert record.sdk_faults >= 3


def test_a_failing_exporter_is_counted_and_others_still_get_the_record() -> None:
    class Broken:
        def export(self, record: Any) -> None:
            raise OSError("disk full")

    good = Collect()
    obs.configure(exporters=[Broken(), good])

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        return "fine"

    assert handler({}, None) == "fine"
    assert handler({}, None) == "fine"
    assert len(good.records) == 2
    assert faults_seen()["export"] >= 2


def test_disabled_records_nothing() -> None:
    sink = collecting(enabled=False)
    assert obs.instrument(echo)(5, None) == 5
    assert sink.records == []


def test_sampling_keeps_detail_on_a_fraction_and_counts_every_call() -> None:
    sink = collecting(sample_rate=0.25)

    @obs.instrument(runtime=obs.Runtime(environ={}, process_start=0))
    def handler(event: Any, context: Any) -> None:
        with obs.stage("inference"):
            obs.observe_input([1.0, 2.0])
            if event.get("fail"):
                raise ValueError

    for n in range(2000):
        try:
            handler({"fail": n % 2 == 0}, None)
        except ValueError:
            pass
    records = sink.records
    assert len(records) == 2000
    first, rest = records[0], records[1:]
    assert first.cold_start and first.sample_rate == 1.0 and first.stages  # always detailed
    assert all(r.sample_rate == 0.25 for r in rest)
    for status in ("ok", "error"):  # errors are sampled alike: one rate means one thing
        lines = [r for r in rest if r.status == status]
        detailed = [r for r in lines if r.stages]
        assert all(r.input is not None and r.unstaged_ms is not None for r in detailed)
        assert all(r.input is None and r.unstaged_ms is None for r in lines if not r.stages)
        assert 170 < len(detailed) < 330  # about a quarter; readers re-weight by 1 / 0.25
    assert all(r.error_stage == "inference" for r in rest if r.status == "error")


def test_lambda_fields_from_environment_context_and_trace_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = collecting(service="shop")
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    runtime = obs.Runtime(environ=LAMBDA_ENV)
    handler = obs.instrument(noop, runtime=runtime)
    handler({}, Context("abc-123", remaining_ms=30_000))
    record = sink.records[0]
    assert record.id == "abc-123"
    assert record.trace_id == "1-5759e988-bd862e3fe1be46a994272793"
    assert (record.platform, record.function, record.version, record.memory_mb) == (
        "aws_lambda",
        "fn",
        "7",
        2048,
    )
    assert record.service == "shop"
    assert record.instance_id is not None and record.instance_id.startswith("2026/11/27/[7]abc:")


def test_async_handler_stays_awaitable_off_lambda() -> None:
    sink = collecting()

    @obs.instrument
    async def handler(event: Any, context: Any) -> str:
        with obs.stage("inference"):
            await asyncio.sleep(0)
        return "done"

    assert inspect.iscoroutinefunction(handler)
    assert asyncio.run(handler({}, None)) == "done"
    assert sink.records[0].stages.keys() == {"inference"}


def test_async_handler_on_lambda_is_called_synchronously_on_one_loop() -> None:
    sink = collecting()
    loops = []

    async def handler(event: Any, context: Any) -> int:
        loops.append(asyncio.get_running_loop())
        return len(loops)

    wrapped: Any = obs.instrument(handler, runtime=obs.Runtime(environ=LAMBDA_ENV))
    assert not inspect.iscoroutinefunction(wrapped)
    assert [wrapped({}, Context()) for _ in range(3)] == [1, 2, 3]
    assert len(set(map(id, loops))) == 1
    assert len(sink.records) == 3


def test_stdout_line_is_the_record_and_one_line_per_invocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    obs.configure(exporters=["stdout"])

    def handler(event: Any, context: Any) -> str:
        print("user output")
        return "r"

    handler = obs.instrument(handler)
    handler({}, None)
    handler({}, None)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user output" and out[2] == "user output"
    assert [obs.Invocation.from_json(line).event for line in (out[1], out[3])] == [
        "inferobs.invocation"
    ] * 2


def test_watchdog_writes_the_timeout_with_the_running_nested_stage() -> None:
    sink = collecting(timeout_margin_ms=50)

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        with obs.stage("preprocess"):
            pass
        with obs.stage("inference"), obs.stage("forward"):
            time.sleep(0.3)
        return "late"

    assert handler({}, Context("slow-1", remaining_ms=150)) == "late"
    (record,) = sink.records  # the late finish wrote nothing more
    assert (record.kind, record.id, record.status) == ("timeout", "slow-1", "error")
    assert record.error_stage == "inference/forward"
    assert list(record.stages) == ["preprocess"]
    assert 90 <= record.duration_ms < 300  # before the handler's 300 ms were up

    assert handler({}, Context("fast-1", remaining_ms=10_000)) == "late"
    assert [r.kind for r in sink.records] == ["timeout", "invocation"]


def test_handlers_with_other_signatures_are_called_exactly_as_before() -> None:
    sink = collecting()

    @obs.instrument
    def one_argument(event: Any) -> Any:
        return event

    @obs.instrument
    def with_default(event: Any, context: Any = "default") -> Any:
        return context

    @obs.instrument
    def keywords(event: Any, *, context: Any, extra: int = 1) -> Any:
        return (context.aws_request_id, extra)

    assert one_argument(5) == 5
    assert with_default(5) == "default"
    assert keywords(5, context=Context("kw-1"), extra=2) == ("kw-1", 2)
    assert [r.id for r in sink.records] == [None, None, "kw-1"]


def test_a_context_whose_attributes_raise_is_recorded_without_it() -> None:
    sink = collecting()

    class BrokenContext:
        @property
        def aws_request_id(self) -> str:
            raise RuntimeError("no id")

    assert obs.instrument(echo)("ok", BrokenContext()) == "ok"
    (record,) = sink.records
    assert record.id is None
    assert faults_seen()["context"] >= 1


def test_values_json_cannot_carry_well_become_text_in_tags() -> None:
    sink = collecting()

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        obs.tag(huge=10**400, nan=float("nan"), inf=float("inf"), fine=2**40, ratio=0.5)
        with obs.stage(Unprintable()):  # type: ignore[arg-type]
            pass
        return "fine"

    assert handler({}, None) == "fine"
    (record,) = sink.records
    assert record.tags["huge"] == str(10**400)[:256]
    assert (record.tags["nan"], record.tags["inf"]) == ("nan", "inf")
    assert (record.tags["fine"], record.tags["ratio"]) == (2**40, 0.5)
    assert list(record.stages) == ["<Unprintable>"]
    assert "NaN" not in record.to_json() and "Infinity" not in record.to_json()


def test_a_stage_object_can_be_reused_nested_and_shared_by_tasks() -> None:
    sink = collecting()
    step = obs.stage("step")

    async def worker(delay: float) -> None:
        with step:
            await asyncio.sleep(delay)

    @obs.instrument
    async def handler(event: Any, context: Any) -> None:
        with step, step:  # re-entered while open
            pass
        await asyncio.gather(worker(0.02), worker(0.01))

    asyncio.run(handler({}, None))
    asyncio.run(handler({}, None))
    for record in sink.records:
        assert list(record.stages) == ["step", "step/step"]
        assert 25 <= record.stages["step"] < 60  # both workers' time adds up
        assert record.sdk_faults == 0


def test_a_stage_left_open_does_not_leak_into_the_next_invocation() -> None:
    sink = collecting()

    @obs.instrument
    def leaky(event: Any, context: Any) -> None:
        obs.stage("forgotten").__enter__()  # never exited

    @obs.instrument
    def clean(event: Any, context: Any) -> None:
        with obs.stage("inference"):
            time.sleep(0.01)

    leaky({}, None)
    clean({}, None)
    record = sink.records[1]
    assert list(record.stages) == ["inference"]  # not "forgotten/inference"
    assert record.unstaged_ms is not None and record.unstaged_ms < record.duration_ms / 2


def test_a_handler_finishing_while_the_timeout_line_is_written_waits_for_it() -> None:
    class Slow:
        def __init__(self) -> None:
            self.records: list[Any] = []

        def export(self, record: Any) -> None:
            time.sleep(0.05)
            self.records.append(record)

    sink = Slow()
    obs.configure(exporters=[sink], timeout_margin_ms=150)

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        obs.tag(phase="before")
        time.sleep(0.12)  # the watchdog fires at 100 ms and spends 50 ms writing
        obs.tag(phase="after")
        return "done"

    assert handler({}, Context("race-1", remaining_ms=250)) == "done"
    assert [r.kind for r in sink.records] == ["timeout"]  # there before the handler returned
    assert sink.records[0].tags == {"phase": "before"}  # later tags do not change it


def test_timeout_in_fanned_out_tasks_names_the_stage_still_running() -> None:
    sink = collecting(timeout_margin_ms=50)

    async def part(name: str, seconds: float) -> None:
        with obs.stage(name):
            await asyncio.sleep(seconds)

    @obs.instrument
    async def handler(event: Any, context: Any) -> None:
        with obs.stage("fanout"):
            await asyncio.gather(part("quick", 0.01), part("hang", 0.3))

    asyncio.run(handler({}, Context("fan-1", remaining_ms=150)))
    (record,) = sink.records
    assert record.kind == "timeout"
    assert record.error_stage == "fanout/hang"
    assert list(record.stages) == ["fanout/quick"]  # running stages are not listed as done
    assert record.unstaged_ms is None


def test_bad_arguments_to_instrument_fail_at_decoration_naming_them() -> None:
    with pytest.raises(obs.ConfigError, match=r"instrument\(model_version=3\): expected a string"):
        obs.instrument(model_version=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="takes a handler function, not int"):
        obs.instrument(42)  # type: ignore[call-overload]


def test_warmup_pings_are_recorded_as_warmups_and_never_as_cold_starts() -> None:
    sink = collecting()
    calls = []

    def handler(event: Any, context: Any) -> str:
        calls.append(event)
        return "ran"

    runtime = obs.Runtime(environ={}, process_start=0)
    observed = obs.instrument(handler, runtime=runtime)
    assert observed({"source": "serverless-plugin-warmup"}, None) == "ran"
    assert observed({"inferobs": "warmup"}, None) == "ran"
    assert observed({"text": "hi"}, None) == "ran"
    first, second, real = sink.records
    assert (first.kind, first.cold_start) == ("warmup", False)
    assert first.init_ms is not None  # the environment's init, which the ping paid for
    assert second.kind == "warmup"
    assert (real.kind, real.cold_start) == ("invocation", False)  # the ping warmed it
    assert len(calls) == 3  # without skip_warmups, pings run the handler like any request


def test_skip_warmups_answers_without_running_the_handler() -> None:
    sink = collecting()
    calls = []

    @obs.instrument(skip_warmups=True)
    def handler(event: Any, context: Any) -> str:
        calls.append(event)
        return "ran"

    answer: Any = handler({"source": "serverless-plugin-warmup"}, Context("w-1"))
    assert answer == {"warmup": True}
    assert handler({"text": "hi"}, Context("r-1")) == "ran"
    assert calls == [{"text": "hi"}]
    assert [(r.kind, r.id) for r in sink.records] == [("warmup", "w-1"), ("invocation", "r-1")]


def test_peak_memory_is_on_cold_error_and_timeout_lines_and_once_a_second_otherwise() -> None:
    """Reading it costs a tenth of a warm call; it only grows, so a line a second keeps
    its maximum, and the lines that matter most always carry it."""
    sink = collecting()
    clock = ManualClock()

    @obs.instrument(runtime=obs.Runtime(environ={}, clock=clock))
    def handler(event: Any, context: Any) -> None:
        if event == "fail":
            raise ValueError("bad")

    for event in ["ok", "ok", "ok", "fail", "ok"]:
        try:
            handler(event, None)
        except ValueError:
            pass
        clock.advance(300)
    clock.advance(1000)
    handler("ok", None)
    carried = ["max_rss_mb" in r for r in sink.dicts()]
    # the cold start; 300 and 600 ms later no; the error yes; 300 ms after it no; a
    # second and more after it yes
    assert carried == [True, False, False, True, False, True]


def test_the_line_is_the_records_json_though_its_environment_part_is_encoded_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The builder encodes the per-call fields and appends the environment's fields
    encoded once per environment; the line must still be exactly the record."""
    import json

    from inferobs.export.store import StoreExporter

    seen: list[Any] = []

    class Keep(StoreExporter):
        def export(self, record: Any) -> None:
            seen.append(record)

    obs.configure(exporters=["stdout", Keep(".unused", batch_size=1)])
    runtime = obs.Runtime(
        environ={
            "AWS_LAMBDA_FUNCTION_NAME": 'scorer "v2"',
            "AWS_LAMBDA_FUNCTION_VERSION": "7",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
        }
    )

    @obs.instrument(runtime=runtime, model="m\u00e9")
    def handler(event: Any, context: Any) -> None:
        with obs.stage("inference"):
            pass

    handler({}, Context("r1"))
    handler({}, Context("r2"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and len(seen) == 2
    for line, record in zip(lines, seen, strict=True):
        assert json.loads(line) == dict(record)
        assert line == json.dumps(dict(record), separators=(",", ":"))
