"""The embedded store: concurrent writers, crashes, and reading it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inferobs.context import faults_seen
from inferobs.export.store import StoreExporter, connect
from inferobs.read import ReadError, read
from inferobs.record import Invocation

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import os, sys
    from inferobs.export.store import StoreExporter
    from inferobs.record import Invocation

    path, name, count, batch, crash = sys.argv[1:6]
    store = StoreExporter(path, batch_size=int(batch), flush_interval_s=3600)
    for n in range(int(count)):
        store.export(Invocation(start=n, duration_ms=1.0, id=f"{name}-{n}", function=name))
    if crash == "crash":
        os._exit(1)  # no atexit, no flush: as if killed
    """
)


def run_writers(path: Path, writers: list[tuple[str, int, int, str]]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(count), str(batch), crash],
            env=env,
        )
        for name, count, batch, crash in writers
    ]
    for process, (_, _, _, crash) in zip(processes, writers, strict=True):
        assert process.wait(timeout=120) == (1 if crash == "crash" else 0)


def test_several_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    run_writers(tmp_path, [(f"p{i}", 500, 7, "exit") for i in range(4)])
    records = read([str(tmp_path)]).records
    assert len(records) == 2000
    assert len({r.id for r in records}) == 2000


def test_a_crash_loses_at_most_the_unflushed_batch(tmp_path: Path) -> None:
    run_writers(tmp_path, [("crashed", 1050, 100, "crash")])
    records = read([str(tmp_path)]).records
    assert len(records) == 1000  # ten full batches were written; the last 50 were in memory
    assert {r.id for r in records} == {f"crashed-{n}" for n in range(1000)}


def test_records_read_back_equal_what_was_written(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path), batch_size=2)
    written = [
        Invocation(
            start=30,
            duration_ms=2.5,
            function="a",
            cold_start=True,
            init_ms=120.0,
            stages={"inference": 2.0},
            tags={"tier": "gold"},
        ),
        Invocation(start=10, duration_ms=1.0, function="b", status="error", error_type="E"),
        Invocation(start=20, duration_ms=1.5, function="a"),
    ]
    for record in written:
        store.export(record)
    store.flush()
    reading = read([str(tmp_path)])
    assert reading.records == sorted(written, key=lambda r: r.start)
    assert reading.problems == []
    assert [r.start for r in read([str(tmp_path)], since_ns=15).records] == [20, 30]
    assert [r.start for r in read([str(tmp_path)], function="a").records] == [20, 30]


def test_json_line_files_with_foreign_and_corrupt_lines(tmp_path: Path) -> None:
    good = Invocation(start=5, duration_ms=1.0, id="r1").to_json()
    log = tmp_path / "export.log"
    log.write_text(
        "START RequestId: r1 Version: $LATEST\n"
        f"2026-11-27T10:00:00.000Z\tr1\t{good}\n"
        '{"event":"inferobs.invocation","schema":1,"start":"soon","duration_ms":1}\n'
        '{"event":"inferobs.invocation", truncated\n'
        "REPORT RequestId: r1 Duration: 1.00 ms\n"
    )
    reading = read([str(log)])
    assert [r.id for r in reading.records] == ["r1"]
    assert [str(p) for p in reading.problems] == [
        f"{log}:3: start='soon': expected an integer",
        f"{log}:4: not a JSON line (Expecting property name enclosed in double quotes: "
        "line 1 column 33 (char 32))",
    ]


def test_foreign_missing_and_broken_sources_are_clear_errors(tmp_path: Path) -> None:
    foreign = tmp_path / "app.log"
    foreign.write_text("hello\nworld\n")
    with pytest.raises(ReadError, match=r"app.log: holds no inferobs records"):
        read([str(foreign)])
    with pytest.raises(ReadError, match=r"nowhere: no such file or store"):
        read([str(tmp_path / "nowhere")])
    broken = tmp_path / "broken" / "records.db"
    broken.parent.mkdir()
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(ReadError, match=r"records.db: not a readable inferobs store"):
        read([str(broken.parent)])


def test_the_store_is_a_default_exporter_off_cloud(tmp_path: Path) -> None:
    import inferobs as obs
    from inferobs.config import Settings

    assert Settings.from_env({}).exporters == ("stdout", "store")
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}).exporters == ("stdout",)
    obs.configure(exporters=["store"], store_path=str(tmp_path))

    def handler(event: object, context: object) -> str:
        return "ok"

    obs.instrument(handler, model="m")({}, None)
    from inferobs.lifecycle import _exporters

    for exporter in _exporters.exporters:
        exporter.flush()  # type: ignore[attr-defined]
    (record,) = read([str(tmp_path)]).records
    assert record.model == "m"
    schema = connect(str(tmp_path)).execute("SELECT value FROM meta WHERE key='schema'")
    assert schema.fetchone() == ("3",)


def test_a_forked_child_writes_its_own_records_and_not_its_parents(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path), batch_size=100, flush_interval_s=3600)
    for n in range(3):
        store.export(Invocation(start=n, duration_ms=1.0, id=f"parent-{n}"))
    child = os.fork()
    if child == 0:  # the child: one record of its own, flushed, then gone without atexit
        try:
            store.export(Invocation(start=9, duration_ms=1.0, id="child-0"))
            store.flush()
        finally:
            os._exit(0)
    assert os.waitpid(child, 0)[1] == 0
    store.flush()
    ids = sorted(r.id for r in read([str(tmp_path)]).records)  # type: ignore[type-var]
    assert ids == ["child-0", "parent-0", "parent-1", "parent-2"]


def test_a_locked_store_costs_one_short_wait_then_backs_off(tmp_path: Path) -> None:
    import sqlite3
    import time

    store = StoreExporter(str(tmp_path), batch_size=2, busy_timeout_s=0.2)
    connect(str(tmp_path)).close()
    holder = sqlite3.connect(str(tmp_path / "records.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing, for a long time
    store.export(Invocation(start=1, duration_ms=1.0, id="a"))
    failures = faults_seen().get("store", 0)
    store.export(Invocation(start=2, duration_ms=1.0, id="b"))  # the batch is full: it waits
    assert faults_seen().get("store", 0) == failures + 1  # a fault, never raised
    began = time.monotonic()
    store.export(Invocation(start=3, duration_ms=1.0, id="c"))  # backing off: no wait
    store.export(Invocation(start=4, duration_ms=1.0, id="d"))
    assert time.monotonic() - began < 0.15
    holder.execute("COMMIT")
    assert store.flush()
    assert sorted(r.id for r in read([str(tmp_path)]).records) == ["a", "b", "c", "d"]  # type: ignore[type-var]


def test_records_anywhere_on_a_line_and_in_other_encodings(tmp_path: Path) -> None:
    one = Invocation(start=1, duration_ms=1.0, id="r1").to_json()
    two = Invocation(start=2, duration_ms=1.0, id="r2").to_json()
    three = Invocation(start=3, duration_ms=1.0, id="r3").to_json()
    four = Invocation(start=4, duration_ms=1.0, id="r4").to_json()
    log = tmp_path / "mixed.log"
    log.write_text(
        f"[INFO] {{req-9}} {one} trailing words\n"
        f"{two}{three}\n"
        f'{{"app": "log", "nested": {{"x": 1}}}} {four}\n'
    )
    assert [r.id for r in read([str(log)]).records] == ["r1", "r2", "r3", "r4"]
    wide = tmp_path / "utf16.log"
    wide.write_text(one + "\n", encoding="utf-16")
    assert [r.id for r in read([str(wide)]).records] == ["r1"]


def test_a_bad_source_among_good_ones_is_a_problem_and_duplicates_count_once(
    tmp_path: Path,
) -> None:
    store = StoreExporter(str(tmp_path / "store"))
    record = Invocation(start=1, duration_ms=1.0, id="same")
    store.export(record)
    store.flush()
    log = tmp_path / "stdout.log"
    log.write_text(record.to_json() + "\n")
    reading = read([str(tmp_path / "store"), str(log), str(tmp_path / "missing")])
    assert [r.id for r in reading.records] == ["same"]
    assert [str(p) for p in reading.problems] == [f"{tmp_path / 'missing'}: no such file or store"]


def test_records_sqlite_cannot_hold_are_set_aside_and_the_rest_written(tmp_path: Path) -> None:
    store = StoreExporter(str(tmp_path), batch_size=100, flush_interval_s=3600)
    store.export(Invocation(start=1, duration_ms=1.0, id="before"))
    store.export(Invocation(start=2**70, duration_ms=1.0, id="far"))  # beyond 64 bits
    store.export(Invocation(start=3, duration_ms=float("nan"), id="nan"))  # NULL in SQLite
    store.export(Invocation(start=4, duration_ms=1.0, id="after", model="m\udcff"))
    assert store.flush()
    reading = read([str(tmp_path)])
    assert [r.id for r in reading.records] == ["before", "after"]
    assert [str(p) for p in reading.problems] == [
        f"{tmp_path / 'records.db'}#set_aside1: set aside by its writer: "
        "start is not a 64-bit integer",
        f"{tmp_path / 'records.db'}#set_aside2: set aside by its writer: "
        "duration_ms is not a finite number",
    ]
    kept = connect(str(tmp_path)).execute("SELECT record FROM set_aside").fetchall()
    assert [json.loads(line)["id"] for (line,) in kept] == ["far", "nan"]  # whole lines kept


def test_records_dropped_while_the_store_is_locked_are_counted(tmp_path: Path) -> None:
    import sqlite3

    def locked_while(store: StoreExporter, count: int) -> None:
        holder = sqlite3.connect(str(tmp_path / "records.db"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        for n in range(count):  # the store keeps at most its backlog while it cannot write
            store.export(Invocation(start=n, duration_ms=1.0, id=f"r{n}"))
        holder.execute("COMMIT")
        holder.close()

    connect(str(tmp_path)).close()
    store = StoreExporter(
        str(tmp_path), batch_size=2, flush_interval_s=3600, busy_timeout_s=0.05, backlog=8
    )
    locked_while(store, 22)
    assert store.dropped == 14
    assert store.flush()
    reading = read([str(tmp_path)])
    assert [r.id for r in reading.records] == [f"r{n}" for n in range(14, 22)]  # the newest
    assert [str(loss) for loss in reading.losses] == [
        f"{tmp_path / 'records.db'}: 14 records never reached this store: its writers dropped "
        "them while it could not be written"
    ]
    meta = connect(str(tmp_path)).execute("SELECT value FROM meta WHERE key = 'dropped'")
    assert meta.fetchone() == ("14",)
    other = StoreExporter(
        str(tmp_path), batch_size=1, flush_interval_s=3600, busy_timeout_s=0.05, backlog=4
    )
    locked_while(other, 6)  # another writer's drops add to the count
    assert other.dropped == 2
    assert other.flush()
    assert [str(loss).split(": ")[1] for loss in read([str(tmp_path)]).losses] == [
        "16 records never reached this store"
    ]
