"""A unique marker placed in inputs and events never appears in anything inferobs writes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda

from .conftest import LAMBDA_CODE

pytestmark = pytest.mark.timeout(60)


def ours(line: str) -> bool:
    return line.startswith('{"schema"') or line.startswith('{"event": "inferobs.')


def test_marker_in_events_and_inputs_never_reaches_records_or_fault_lines() -> None:
    marker = f"PRIVATE-{uuid.uuid4().hex}"
    events: list[dict[str, Any]] = [
        {"secret": marker},
        {"secret": marker, "fail": True},
        {"secret": marker, "extra": {"deep": [marker] * 3}},
    ]
    with LocalLambda("private.handler", code_dir=LAMBDA_CODE) as fn:
        outcomes = [fn.invoke(event) for event in events]
        records = fn.wait_for_records(len(events))
        lines = list(fn.lines)
    assert [o.status for o in outcomes] == ["response", "error", "response"]
    assert len(records) == 3
    assert records[0]["input"]["items"]["text"] == {"kind": "str", "len": len(marker)}
    assert records[1]["error_type"] == "ValueError"
    written = [line for line in lines if ours(line)]
    assert len(written) >= 3
    for line in written:
        assert marker not in line
        assert marker.split("-")[1] not in line
