"""A unique marker placed in inputs and events never appears in anything inferobs writes.

The marker is a value, a dict key, a header name and a structured dtype's field
name; the outputs are the stdout lines, the fault lines and the embedded store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from inferobs.local.lambda_process import LocalLambda

from .conftest import LAMBDA_CODE

pytestmark = pytest.mark.timeout(60)


def ours(line: str) -> bool:
    return line.startswith(('{"schema"', '{"event": "inferobs.', "inferobs"))


def stored_rows(store: Path, count: int, timeout_s: float = 15.0) -> list[str]:
    """The store's records, once ``count`` are there (it writes in the background)."""
    end = time.monotonic() + timeout_s
    rows: list[str] = []
    while time.monotonic() < end:
        if (store / "records.db").exists():
            with sqlite3.connect(f"file:{store / 'records.db'}?mode=ro", uri=True) as db:
                try:
                    rows = [r[0] for r in db.execute("SELECT record FROM invocations")]
                except sqlite3.OperationalError:  # the table is not created yet
                    rows = []
            if len(rows) >= count:
                break
        time.sleep(0.05)
    return rows


def test_marker_in_events_and_inputs_never_reaches_records_or_fault_lines(
    tmp_path: Path,
) -> None:
    marker = f"PRIVATE-{uuid.uuid4().hex}"
    gateway = {
        "resource": "/score",
        "httpMethod": "POST",
        "headers": {f"x-{marker}": "1", "content-type": "application/json"},
        "multiValueHeaders": {f"x-{marker}": ["1"]},
        "queryStringParameters": {marker: "1"},
        "requestContext": {"identity": {marker: None}},
        "body": json.dumps({marker: marker}),
        "isBase64Encoded": False,
    }
    events: list[dict[str, Any]] = [
        {"secret": marker},
        {"secret": marker, "fail": True},
        {"secret": marker, "extra": {"deep": [marker] * 3}},
        {"secret": marker, **gateway},
    ]
    store = tmp_path / "store"
    env = {
        "INFEROBS_EXPORTERS": "stdout,store",
        "INFEROBS_STORE_PATH": str(store),
        "INFEROBS_INPUT_KEYS": "tokens,raw,matrix,nested,table",
    }
    with LocalLambda("private.handler", code_dir=LAMBDA_CODE, env=env) as fn:
        outcomes = [fn.invoke(event) for event in events]
        records = fn.wait_for_records(len(events))
        rows = stored_rows(store, len(events))
        lines = list(fn.lines)
    assert [o.status for o in outcomes] == ["response", "error", "response", "response"]
    assert len(records) == 4 and len(rows) == 4
    features = records[0]["input"]
    assert features["items"]["text"] == {"kind": "str", "len": len(marker)}
    assert features["items"]["table"]["dtype"] == "structured"
    assert features["other_keys"] == 1
    assert records[1]["error_type"] == "ValueError"
    request = records[3]["input"]
    assert request["items"]["headers"]["other_keys"] == 2
    written = [line for line in lines if ours(line)] + rows
    assert len(written) >= 8
    # and whatever the store's files hold, in any table or page
    written += [p.read_bytes().decode("latin-1") for p in store.iterdir() if p.is_file()]
    for text in written:
        assert marker not in text
        assert marker.split("-")[1] not in text
    assert os.listdir(store)
