"""The reader's refusals: numbers JSON does not have, and files that are not stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from inferobs.cli import main
from inferobs.export.store import STORE_SCHEMA_VERSION, StoreExporter
from inferobs.read import ReadError, read
from inferobs.record import Invocation

FINITE = "expected a finite number (JSON has no NaN or Infinity)"


def line(**fields: object) -> str:
    """A record's line with fields set as written, even to values JSON does not have."""
    data = Invocation(start=1, duration_ms=1.0, id="r").to_dict() | fields
    return json.dumps(data)


def test_nan_and_infinity_anywhere_in_a_line_are_problems_with_their_place(
    tmp_path: Path,
) -> None:
    log = tmp_path / "export.log"
    log.write_text(
        line(id="good")
        + "\n"
        + line(id="slow", duration_ms=float("inf"))
        + "\n"
        + "2026-11-27T10:00:00Z "
        + line(id="odd", tags={"score": [1, float("nan")]})
        + "\n"
        + '{"app": "its own log", "ratio": NaN}\n'  # not a record: not ours to judge
    )
    reading = read([str(log)])
    assert [r.id for r in reading.records] == ["good"]
    assert [str(p) for p in reading.problems] == [
        f"{log}:2: duration_ms=Infinity: {FINITE}",
        f"{log}:3: tags.score[1]=NaN: {FINITE}",
    ]


def test_a_store_row_with_a_non_finite_number_is_a_problem_with_its_row(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path), flush_interval_s=3600)
    store.export(Invocation(start=1, duration_ms=1.0, id="good"))
    store.export(Invocation(start=2, duration_ms=float("-inf"), id="bad"))
    store.flush()
    reading = read([str(tmp_path)])
    assert [r.id for r in reading.records] == ["good"]
    assert [str(p) for p in reading.problems] == [
        f"{tmp_path / 'records.db'}#row2: duration_ms=-Infinity: {FINITE}"
    ]


def test_the_json_report_stays_json_when_a_line_holds_infinity(tmp_path: Path) -> None:
    log = tmp_path / "export.log"
    log.write_text(line(id="good") + "\n" + line(id="slow", duration_ms=float("inf")) + "\n")
    result = CliRunner().invoke(main, ["report", "--source", str(log), "--format", "json"])
    assert result.exit_code == 0

    def refuse(word: str) -> None:
        raise AssertionError(f"{word} in the report")

    report = json.loads(result.stdout, parse_constant=refuse)
    assert report["operations"][0]["invocations"] == 1
    assert f"{log}:2: duration_ms=Infinity" in result.stderr


def test_random_bytes_are_not_a_store_database(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "records.db").write_bytes(os.urandom(8192))
    with pytest.raises(ReadError, match=r"store: not a valid store database \(not a SQLite file\)"):
        read([str(folder)])
    with pytest.raises(ReadError, match=r"records.db: not a valid store database"):
        read([str(folder / "records.db")])
    dump = tmp_path / "dump.bin"
    dump.write_bytes(b"\x00" + os.urandom(8192))
    with pytest.raises(ReadError, match=r"dump.bin: neither a store database nor a file of JSON"):
        read([str(dump)])


def test_a_line_nested_too_deeply_is_a_problem_and_reading_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(Invocation(start=1, duration_ms=1.0, function="f").to_json() + "\n")
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"event": "inferobs.invocation", "x": ' + "[" * 100_000 + "\n")
    reading = read([str(deep), str(good)])
    assert [r.function for r in reading.records] == ["f"]
    assert [str(p) for p in reading.problems] == [
        f"{deep}:1: not a JSON line (nested too deeply to read)"
    ]


def test_a_store_laid_out_by_a_newer_inferobs_is_refused_by_both_readers(tmp_path: Path) -> None:
    import sqlite3

    from inferobs.analyze.frames import read_frames

    store = StoreExporter(str(tmp_path))
    store.export(Invocation(start=1, duration_ms=1.0))
    assert store.flush()
    connection = sqlite3.connect(tmp_path / "records.db")
    with connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    connection.close()
    message = (
        f"{tmp_path / 'records.db'}: laid out by a newer inferobs (store layout 99; this one "
        f"reads up to {STORE_SCHEMA_VERSION}); upgrade inferobs to read it"
    )
    for reader in (read, read_frames):
        with pytest.raises(ReadError) as caught:
            reader([str(tmp_path)])
        assert message in str(caught.value)
