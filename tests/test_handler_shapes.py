"""The handler shapes users really write: worker threads, generators, async callables, methods."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import inferobs as obs
from inferobs.context import faults_seen

from .helpers import Context, ManualClock, collecting

WARMUP = {"source": "serverless-plugin-warmup"}


def manual() -> tuple[ManualClock, obs.Runtime]:
    clock = ManualClock()
    return clock, obs.Runtime(environ={}, clock=clock)


# -- stages entered in threads the handler starts -------------------------------------


def test_stages_in_a_thread_pool_belong_to_the_one_invocation_in_flight() -> None:
    sink = collecting()
    pool = ThreadPoolExecutor(2)

    @obs.stage("inference")
    def predict(x: int) -> int:
        time.sleep(0.02)
        return x * 2

    def tokenize() -> None:
        with obs.stage("preprocess"):
            time.sleep(0.01)

    @obs.instrument
    def handler(event: Any, context: Any) -> int:
        worker = threading.Thread(target=tokenize)
        worker.start()
        worker.join()
        return pool.submit(predict, event).result()

    async def via_executor() -> int:
        return await asyncio.get_running_loop().run_in_executor(pool, predict, 4)

    @obs.instrument
    async def async_handler(event: Any, context: Any) -> int:
        return await via_executor()

    assert handler(3, Context("t-1")) == 6
    assert asyncio.run(async_handler(4, Context("t-2"))) == 8
    pool.shutdown()
    first, second = sink.records
    assert list(first.stages) == ["preprocess", "inference"]
    assert first.stages["preprocess"] >= 9.5 and first.stages["inference"] >= 19.5
    assert first.unstaged_ms is not None and first.unstaged_ms < first.duration_ms - 29
    assert list(second.stages) == ["inference"] and second.stages["inference"] >= 19.5


def test_a_thread_stage_ending_after_its_invocation_is_dropped_not_given_to_the_next() -> None:
    sink = collecting()
    started, release = threading.Event(), threading.Event()

    def background() -> None:
        with obs.stage("straggler"):
            started.set()
            release.wait(5)

    @obs.instrument
    def starts_work(event: Any, context: Any) -> None:
        threading.Thread(target=background).start()
        started.wait(5)

    @obs.instrument
    def next_one(event: Any, context: Any) -> None:
        release.set()
        time.sleep(0.05)  # the straggler finishes while this invocation is in flight

    before = faults_seen().get("late", 0)
    starts_work({}, Context("first"))
    next_one({}, Context("second"))
    first, second = sink.records
    assert first.stages == {}  # still running when the record was written: no 0 ms entry
    assert second.stages == {}
    assert faults_seen().get("late", 0) == before + 1


def test_work_carried_past_its_invocation_is_never_given_to_the_next() -> None:
    sink = collecting()
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    pool = ThreadPoolExecutor(1)

    def audit() -> None:  # a thread carrying the first invocation's context
        started.set()
        release.wait(5)
        obs.set_model(variant="B")
        obs.tag(audited=True)
        with obs.stage("audit"):
            pass
        finished.set()

    async def late_task() -> None:  # a task created by the first, run during the second
        with obs.stage("background"):
            obs.tag(from_first=True)

    @obs.instrument(variant="A")
    def first(event: Any, context: Any) -> None:
        pool.submit(contextvars.copy_context().run, audit)
        started.wait(5)

    @obs.instrument(variant="A")
    def second(event: Any, context: Any) -> None:
        release.set()
        finished.wait(5)

    tasks: list[asyncio.Task[None]] = []

    @obs.instrument(variant="A")
    async def spawns(event: Any, context: Any) -> None:
        tasks.append(asyncio.create_task(late_task()))

    @obs.instrument(variant="A")
    async def runs_later(event: Any, context: Any) -> None:
        await tasks[0]

    async def both() -> None:
        await spawns({}, None)
        await runs_later({}, None)

    before = faults_seen().get("late", 0)
    first({}, None)
    second({}, None)
    asyncio.run(both())
    pool.shutdown()
    for record in sink.records:
        assert (record.variant, record.stages, record.tags) == ("A", {}, {})
    assert faults_seen().get("late", 0) >= before + 4  # each late call is counted


def test_nested_handlers_and_parked_streams_leave_one_invocation_at_work() -> None:
    sink = collecting()
    pool = ThreadPoolExecutor(1)

    @obs.stage("inference")
    def predict() -> None:
        time.sleep(0.01)

    @obs.instrument(model="inner")
    def inner(event: Any, context: Any) -> None:
        pool.submit(predict).result()

    @obs.instrument(model="router")
    def router(event: Any, context: Any) -> None:
        inner(event, context)

    @obs.instrument(model="stream")
    def stream(event: Any, context: Any) -> Generator[int, None, None]:
        yield 1
        yield 2

    parked = stream({}, None)
    assert next(parked) == 1  # started, then left waiting for its consumer
    router({}, None)
    parked.close()
    pool.shutdown()
    by_model = {r.model: r for r in sink.records}
    assert by_model["inner"].stages["inference"] >= 9.5
    assert by_model["router"].stages == {}
    assert by_model["stream"].stages == {}


def test_with_several_in_flight_the_context_carried_into_the_thread_decides() -> None:
    sink = collecting()
    barrier = threading.Barrier(4)
    pool = ThreadPoolExecutor(4)

    def work(n: int) -> None:
        with obs.stage(f"inference-{n}"):  # a name per invocation: whose it is, shown exactly
            time.sleep(0.01 * n)

    @obs.instrument
    def handler(event: dict[str, Any], context: Any) -> None:
        barrier.wait()  # all four in flight at once
        with obs.stage("model"):
            carried = contextvars.copy_context()  # the documented one-liner
            pool.submit(carried.run, work, event["n"]).result()
        bare = pool.submit(work, event["n"])  # no context: cannot know whose it is
        bare.result()

    before = faults_seen().get("thread_context", 0)
    threads = [
        threading.Thread(target=handler, args=({"n": n}, Context(f"r-{n}"))) for n in range(1, 5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pool.shutdown()
    by_id = {r.id: r for r in sink.records}
    for n in range(1, 5):
        stages = by_id[f"r-{n}"].stages
        assert list(stages) == ["model", f"model/inference-{n}"]  # none of the bare ones
        assert stages[f"model/inference-{n}"] >= 10 * n - 0.5
    assert faults_seen().get("thread_context", 0) > before


def test_tags_and_input_from_a_worker_thread_reach_the_invocation() -> None:
    sink = collecting()

    def worker() -> None:
        obs.tag(worker="yes")
        obs.observe_input(b"abc")

    @obs.instrument
    def handler(event: Any, context: Any) -> None:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()

    handler({}, None)
    (record,) = sink.records
    assert record.tags == {"worker": "yes"}
    assert record.input == {"kind": "bytes", "nbytes": 3}


# -- generators -----------------------------------------------------------------------


def test_a_staged_generator_is_timed_while_it_runs_not_when_it_is_created() -> None:
    sink = collecting()
    clock, runtime = manual()

    @obs.stage("generate")
    def tokens(n: int) -> Iterator[int]:
        for i in range(n):
            clock.advance(10)  # the generator's own work
            yield i

    @obs.instrument(runtime=runtime)
    def handler(event: Any, context: Any) -> list[int]:
        out = []
        for token in tokens(3):
            with obs.stage("postprocess"):
                clock.advance(1)  # the consumer's work between items is not the generator's
            out.append(token)
        return out

    assert handler({}, None) == [0, 1, 2]
    (record,) = sink.records
    assert record.stages == {"generate": 30.0, "postprocess": 3.0}
    assert record.unstaged_ms == 0.0


def test_a_staged_async_generator_is_timed_and_its_errors_name_the_stage() -> None:
    sink = collecting()
    clock, runtime = manual()

    @obs.stage("stream")
    async def chunks() -> AsyncIterator[str]:
        for word in ("a", "b"):
            clock.advance(5)
            yield word
        clock.advance(5)
        raise RuntimeError("model fell over")

    @obs.instrument(runtime=runtime)
    async def handler(event: Any, context: Any) -> list[str]:
        return [chunk async for chunk in chunks()]

    with pytest.raises(RuntimeError, match="model fell over"):
        asyncio.run(handler({}, None))
    (record,) = sink.records
    assert record.stages == {"stream": 15.0}
    assert (record.status, record.error_type, record.error_stage) == (
        "error",
        "RuntimeError",
        "stream",
    )


def test_a_generator_handler_is_recorded_when_the_stream_ends() -> None:
    sink = collecting()
    clock, runtime = manual()

    @obs.instrument(runtime=runtime)
    def stream(event: dict[str, Any], context: Any) -> Generator[str, None, None]:
        with obs.stage("inference"):  # held open across the yields
            for word in event["words"]:
                clock.advance(10)
                yield word
        if event.get("fail"):
            raise ValueError("broken stream")

    words = stream({"words": ["a", "b"]}, Context("s-1"))
    assert sink.records == []  # created, not run yet
    assert list(words) == ["a", "b"]
    (record,) = sink.records
    assert (record.id, record.status, record.duration_ms) == ("s-1", "ok", 20.0)
    assert record.stages == {"inference": 20.0}

    with pytest.raises(ValueError, match="broken stream"):
        list(stream({"words": ["a"], "fail": True}, Context("s-2")))
    assert (sink.records[1].status, sink.records[1].error_type) == ("error", "ValueError")

    early = stream({"words": ["a", "b", "c"]}, Context("s-3"))
    assert next(early) == "a"
    early.close()  # the consumer went away: the stream ended, fine
    assert (sink.records[2].id, sink.records[2].status) == ("s-3", "ok")
    assert faults_seen().get("stage_context", 0) == 0


def test_an_async_generator_handler_supports_asend_and_records_at_the_end() -> None:
    sink = collecting()

    @obs.instrument
    async def chat(event: Any, context: Any) -> Any:
        reply = yield "ready"
        while reply != "bye":
            with obs.stage("inference"):
                await asyncio.sleep(0.001)
            reply = yield f"echo {reply}"

    async def converse() -> list[str]:
        stream = chat({}, Context("c-1"))
        said = [await stream.asend(None), await stream.asend("hi")]
        with pytest.raises(StopAsyncIteration):
            await stream.asend("bye")
        return said

    assert asyncio.run(converse()) == ["ready", "echo hi"]
    (record,) = sink.records
    assert (record.id, record.status, list(record.stages)) == ("c-1", "ok", ["inference"])


def test_a_warmup_to_a_streaming_handler_with_skip_warmups_runs_nothing() -> None:
    sink = collecting()
    ran = []

    @obs.instrument(skip_warmups=True)
    def stream(event: Any, context: Any) -> Iterator[int]:
        ran.append(True)
        yield 1

    assert list(stream(WARMUP, None)) == []
    assert ran == [] and [r.kind for r in sink.records] == ["warmup"]


# -- async callables --------------------------------------------------------------------


class AsyncModel:
    async def __call__(self, event: Any, context: Any) -> str:
        await asyncio.sleep(0.01)
        if event == "fail":
            raise RuntimeError("late failure")
        return "done"


async def routed(route: str, event: Any, context: Any) -> str:
    await asyncio.sleep(0.01)
    if event == "fail":
        raise RuntimeError("late failure")
    return route


@pytest.mark.parametrize(
    ("target", "answer"),
    [(AsyncModel(), "done"), (functools.partial(routed, "r"), "r")],
    ids=["async-__call__", "partial-of-async"],
)
def test_async_callables_are_awaited_and_their_failures_recorded(target: Any, answer: str) -> None:
    sink = collecting()
    handler = obs.instrument(target)

    async def main() -> None:
        assert await handler("ok", None) == answer
        with pytest.raises(RuntimeError, match="late failure"):
            await handler("fail", None)

    asyncio.run(main())
    ok, failed = sink.records
    assert ok.status == "ok" and ok.duration_ms >= 9.5
    assert (failed.status, failed.error_type) == ("error", "RuntimeError")


# -- methods and callable objects --------------------------------------------------------


class Service:
    def __init__(self) -> None:
        self.calls = 0

    @obs.instrument(skip_warmups=True)
    def handle(self, event: Any, context: Any) -> str:
        self.calls += 1
        if event.get("sleep"):
            time.sleep(event["sleep"])
        return "handled"

    @classmethod
    @obs.instrument
    def build(cls, event: Any, context: Any) -> str:
        return cls.__name__

    @staticmethod
    @obs.instrument
    def plain(event: Any, context: Any) -> Any:
        return event


def test_methods_read_the_event_and_context_after_self() -> None:
    sink = collecting(timeout_margin_ms=50)
    service = Service()

    assert service.handle({}, Context("m-1")) == "handled"
    assert Service.handle(service, {}, Context("m-2")) == "handled"  # unbound, explicit self
    assert service.handle(WARMUP, Context("m-3")) == {"warmup": True}  # type: ignore[comparison-overlap]
    assert service.calls == 2  # the warm-up did not run the model
    assert service.handle({"sleep": 0.3}, Context("m-4", remaining_ms=150)) == "handled"
    assert Service.build({}, Context("m-5")) == "Service"
    assert Service.plain({"x": 1}, Context("m-6")) == {"x": 1}
    assert service.plain({"x": 2}, Context("m-7")) == {"x": 2}
    records = [(r.id, r.kind, r.status) for r in sink.records]
    assert records == [
        ("m-1", "invocation", "ok"),
        ("m-2", "invocation", "ok"),
        ("m-3", "warmup", "ok"),
        ("m-4", "timeout", "error"),  # the deadline came from the context after self
        ("m-5", "invocation", "ok"),
        ("m-6", "invocation", "ok"),
        ("m-7", "invocation", "ok"),
    ]


def test_a_callable_object_and_a_bound_method_are_handlers_as_they_are() -> None:
    sink = collecting()

    class Predictor:
        def __call__(self, event: Any, context: Any) -> Any:
            return event

        def predict(self, event: Any, context: Any) -> Any:
            return event

    predictor = Predictor()
    assert obs.instrument(predictor)({"a": 1}, Context("o-1")) == {"a": 1}
    assert obs.instrument(predictor.predict)({"b": 2}, Context("o-2")) == {"b": 2}
    assert [r.id for r in sink.records] == ["o-1", "o-2"]


# -- bounded options ----------------------------------------------------------------------


def test_model_options_are_bounded_at_decoration_like_set_model() -> None:
    long = "v" * 100_000
    for option in ("model", "model_version", "variant"):
        with pytest.raises(obs.ConfigError) as caught:
            obs.instrument(**{option: long})  # type: ignore[call-overload]
        assert str(caught.value) == (
            f"instrument({option}=...): at most 256 characters; got 100000"
        )
    obs.instrument(model_version="v" * 256)  # the limit itself is fine


# -- under the real Lambda runtime client ------------------------------------------------


@pytest.mark.timeout(60)
def test_pooled_stages_and_method_handlers_under_the_lambda_runtime() -> None:
    from inferobs.local.lambda_process import LocalLambda

    from .conftest import LAMBDA_CODE

    with LocalLambda("shapes.pooled", code_dir=LAMBDA_CODE) as fn:
        outcomes = [fn.invoke({"values": [1.0, 2.0]}) for _ in range(3)]
        records = fn.wait_for_records(3)
    assert [o.json() for o in outcomes] == [{"total": 3.0}] * 3
    for record in records:
        assert list(record["stages"]) == ["inference"]
        assert record["stages"]["inference"] >= 19.5

    with LocalLambda("shapes.method", code_dir=LAMBDA_CODE, timeout_s=1.0) as fn:
        first = fn.invoke({})
        warm = fn.invoke(WARMUP)
        late = fn.invoke({"sleep_s": 2})  # past the deadline: the runtime kills it
        records = fn.wait_for_records(3)
    assert first.json() == {"calls": 1} and warm.json() == {"warmup": True}
    assert late.error_type == "Timeout"
    assert [r["id"] for r in records] == [first.request_id, warm.request_id, late.request_id]
    assert [(r["kind"], r["status"]) for r in records] == [
        ("invocation", "ok"),
        ("warmup", "ok"),
        ("timeout", "error"),
    ]


# -- decorators around handlers and stages ------------------------------------------------


def passes_through(func: Any) -> Any:
    """A plain functools.wraps decorator, as torch.no_grad() or a retry helper is."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


class Staged:
    @obs.stage("static")
    @staticmethod
    def static(x: int) -> int:
        return x + 1

    @obs.stage("class")
    @classmethod
    def build(cls, x: int) -> str:
        return f"{cls.__name__}{x}"

    @obs.instrument(skip_warmups=True)
    @passes_through
    def handle(self, event: Any, context: Any) -> str:
        return "ran"


def test_stages_over_static_and_class_methods_and_wrapped_methods() -> None:
    sink = collecting()

    @obs.instrument
    def handler(event: Any, context: Any) -> Any:
        return Staged.static(1), Staged().static(2), Staged.build(3), Staged().build(4)

    assert handler({}, None) == (2, 3, "Staged3", "Staged4")
    assert list(sink.records[0].stages) == ["static", "class"]

    staged = Staged()
    assert staged.handle(WARMUP, Context("w-1")) == {"warmup": True}  # the model did not run
    assert staged.handle({}, Context("w-2")) == "ran"
    assert [(r.id, r.kind) for r in sink.records[1:]] == [("w-1", "warmup"), ("w-2", "invocation")]


def test_a_plain_wrapper_returning_a_coroutine_is_recorded_when_it_finishes() -> None:
    sink = collecting()

    @obs.instrument
    @passes_through
    async def handler(event: Any, context: Any) -> str:
        await asyncio.sleep(0.01)
        if event == "fail":
            raise RuntimeError("model failed")
        return "done"

    assert asyncio.run(handler("ok", None)) == "done"
    with pytest.raises(RuntimeError, match="model failed"):
        asyncio.run(handler("fail", None))
    ok, failed = sink.records
    assert ok.status == "ok" and ok.duration_ms >= 9.5
    assert (failed.status, failed.error_type) == ("error", "RuntimeError")


def test_a_mock_handler_is_called_as_a_plain_function() -> None:
    from unittest.mock import MagicMock

    sink = collecting()
    handler = obs.instrument(MagicMock(return_value={"label": 1}))
    assert handler({}, Context("mock-1")) == {"label": 1}
    assert [r.id for r in sink.records] == ["mock-1"]


def test_throw_into_a_streaming_handler_reaches_its_body() -> None:
    sink = collecting()

    @obs.instrument
    def stream(event: Any, context: Any) -> Generator[str, None, None]:
        try:
            yield "first"
        except KeyError:
            yield "recovered"

    async def agen_case() -> list[str]:
        @obs.instrument
        async def astream(event: Any, context: Any) -> AsyncGenerator[str, None]:
            try:
                yield "first"
            except KeyError:
                yield "recovered"

        it = astream({}, None)
        got = [await it.__anext__(), await it.athrow(KeyError("x"))]
        await it.aclose()
        return got

    it = stream({}, None)
    assert [next(it), it.throw(KeyError("x"))] == ["first", "recovered"]
    it.close()
    assert asyncio.run(agen_case()) == ["first", "recovered"]
    assert [r.status for r in sink.records] == ["ok", "ok"]
