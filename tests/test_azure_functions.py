"""``@obs.instrument`` on Azure Functions (Python v2 programming model), with the real
``azure.functions`` objects: there is no Functions host here, so the test calls the
function as the worker does, with an ``HttpRequest`` and a ``Context``."""

from __future__ import annotations

from typing import Any

import azure.functions as func

import inferobs as obs

from .helpers import collecting


class Context(func.Context):
    """The worker's context for one invocation (the abstract class, made concrete)."""

    def __init__(self, invocation_id: str) -> None:
        self._invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return "score"

    @property
    def function_directory(self) -> str:
        return "/home/site/wwwroot"

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


app = func.FunctionApp()


@app.route(route="score", methods=["POST"])
@obs.instrument(model="ranker")
def score(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    with obs.stage("inference"):
        body = req.get_json()
    status = 503 if body.get("fail") else 200
    return func.HttpResponse("{}", status_code=status, mimetype="application/json")


def request(body: bytes, **headers: str) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://app/api/score", headers=headers, body=body)


def test_an_http_function_is_named_by_its_invocation_id_with_its_status() -> None:
    sink = collecting()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    score(request(b"{}", traceparent=f"00-{trace}-00f067aa0ba902b7-01"), Context("inv-1"))
    score(request(b'{"fail": true}'), Context("inv-2"))
    ok, failed = sink.records
    assert (ok.id, ok.trace_id, ok["http"]) == (
        "inv-1",
        trace,
        {"method": "POST", "status_code": 200},
    )
    assert "inference" in ok.stages and ok.model == "ranker"
    assert (failed.id, failed.status, failed["http"]["status_code"]) == ("inv-2", "error", 503)


def test_the_v2_decorators_still_index_an_instrumented_function_with_its_bindings() -> None:
    (function,) = app.get_functions()
    assert function.get_function_name() == "score"
    bindings = {binding.type: binding.name for binding in function.get_bindings()}
    assert bindings == {"httpTrigger": "req", "http": "$return"}


def test_an_asgi_function_app_records_each_invocation_under_its_invocation_id() -> None:
    import asyncio

    from fastapi import FastAPI

    sink = collecting()
    api = FastAPI()
    api.add_middleware(obs.InferobsMiddleware, model="ranker")

    @api.get("/api/items/{item}")
    async def item(item: str) -> dict[str, str]:
        return {"item": item}

    asgi_app = func.AsgiFunctionApp(app=api, http_auth_level=func.AuthLevel.ANONYMOUS)
    (function,) = asgi_app.get_functions()
    handle = function.get_user_function()  # what the worker calls per invocation
    req = func.HttpRequest("GET", "http://app/api/items/x", headers={}, body=b"")
    answer = asyncio.run(handle(req, Context("inv-asgi-1")))

    assert answer.status_code == 200
    (record,) = sink.records
    assert record.id == "inv-asgi-1" and record["http"]["route"] == "/api/items/{item}"
