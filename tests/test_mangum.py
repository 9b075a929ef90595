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
