"""A Mangum-wrapped ASGI app on Lambda, under the real runtime client (awslambdaric) talking
to the loopback Runtime API: one record per Lambda invocation, with the ASGI route."""

from __future__ import annotations

from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda

from .conftest import LAMBDA_CODE

pytestmark = pytest.mark.timeout(90)


def http_api_event(path: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as Lambda hands it to the handler."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "user=someone",
        "headers": {"host": "api.example.com", "user-agent": "test"},
        "requestContext": {
            "http": {
                "method": "GET",
                "path": path,
                "sourceIp": "192.0.2.1",
                "protocol": "HTTP/1.1",
                "userAgent": "test",
            },
            "requestId": "gw-1",
            "stage": "$default",
            "domainName": "api.example.com",
            "accountId": "123456789012",
            "apiId": "abc",
            "routeKey": "$default",
            "time": "03/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1796292000000,
        },
        "isBase64Encoded": False,
    }


def test_one_record_per_lambda_invocation_with_the_asgi_route() -> None:
    with LocalLambda("web.handler", code_dir=LAMBDA_CODE, function_name="web-fn") as fn:
        first = fn.invoke(http_api_event("/items/abc"))
        second = fn.invoke(http_api_event("/broken"))
        records = fn.wait_for_records(2)
    assert first.status == "response" and first.json()["statusCode"] == 200
    assert second.status == "response" and second.json()["statusCode"] == 500
    assert len(records) == 2  # never a second record for the ASGI request inside
    ok, failed = sorted(records, key=lambda r: r["start"])
    assert ok["http"] == {
        "method": "GET",
        "status_code": 200,
        "route": "/items/{item}",
        "request_bytes": 0,
        "response_bytes": len('{"item":"ABC"}'),
    }
    assert ok["status"] == "ok" and "lookup" in ok["stages"] and ok["cold_start"] is True
    assert (failed["status"], failed["http"]["status_code"], failed["http"]["route"]) == (
        "error",
        500,
        "/broken",
    )


class _LambdaContext:
    """The context Lambda hands a handler, with what Powertools reads of it."""

    function_name = "web-fn"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:web-fn"
    aws_request_id = "req-powertools-1"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def test_powertools_context_is_left_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from aws_lambda_powertools import Logger
    from fastapi import FastAPI
    from mangum import Mangum

    import inferobs as obs

    from .helpers import collecting

    sink = collecting()
    logger = Logger(service="web")
    app = FastAPI()
    app.add_middleware(obs.InferobsMiddleware)

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        logger.info("inside the app")
        return {"item": item}

    handler = logger.inject_lambda_context(obs.instrument(Mangum(app, lifespan="off")))
    answer = handler(http_api_event("/items/x"), _LambdaContext())  # type: ignore[arg-type]

    assert answer["statusCode"] == 200
    (line,) = [
        json.loads(text) for text in capsys.readouterr().out.splitlines() if "inside" in text
    ]
    assert line["function_request_id"] == "req-powertools-1"  # theirs, as they set it
    assert line["function_name"] == "web-fn"
    (record,) = sink.records
    assert record.id == "req-powertools-1" and record["http"]["route"] == "/items/{item}"
