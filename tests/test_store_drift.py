"""Drift windows in the store and in log lines: written, migrated, and read back as written."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferobs.analyze.sources import distinct_windows
from inferobs.analyze.sources.lines import LogLines
from inferobs.analyze.sources.store import Store
from inferobs.context import faults_seen
from inferobs.drift.baseline import Baseline
from inferobs.drift.counting import DRIFT_EVENT, DriftWindows
from inferobs.drift.layout import segments
from inferobs.drift.window_table import WindowTable
from inferobs.export.store import StoreExporter, connect
from inferobs.read import Problem, ReadError, read
from inferobs.record import Invocation

from .test_drift_counting import Clock
from .test_drift_counting import baseline as classifier
from .test_store_process import run

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(9)

# The store's layout 1, as inferobs wrote it before windows had a row each.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    start         INTEGER NOT NULL,  -- Unix epoch ns, as in the record
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    function      TEXT,
    version       TEXT,
    model         TEXT,
    model_version TEXT,
    variant       TEXT,
    instance_id   TEXT,
    cold_start    INTEGER NOT NULL,
    duration_ms   REAL    NOT NULL,
    record        TEXT    NOT NULL   -- the record's JSON line
);
CREATE INDEX IF NOT EXISTS invocations_by_start ON invocations (start);
CREATE TABLE IF NOT EXISTS set_aside (
    at            INTEGER NOT NULL,  -- when it was set aside, Unix epoch ns
    reason        TEXT    NOT NULL,
    record        TEXT    NOT NULL   -- the record's JSON line
);
CREATE TABLE IF NOT EXISTS drift_windows (
    window_start  INTEGER NOT NULL,  -- Unix epoch ns, clock-aligned
    window_end    INTEGER NOT NULL,
    instance_id   TEXT    NOT NULL,
    baseline_hash TEXT    NOT NULL,
    feature       TEXT    NOT NULL,  -- a feature name, or "prediction"
    counts        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_windows_by_start ON drift_windows (window_start, feature);
"""


def regressor(seed: int = 1) -> Baseline:
    """A numeric prediction named ``prediction``, as layout 1 named it."""
    rng = np.random.default_rng(seed)
    return Baseline.from_frame(
        {"prediction": rng.normal(size=300), "x": rng.normal(size=300)},
        prediction="prediction",
        features=["x"],
        bins=5,
    )


def counted(
    baseline: Baseline, count: int, *, instance: str = "i1", function: str = "f", **extra: Any
) -> list[dict[str, Any]]:
    """Window records as the SDK hands them to exporters: counted, then labelled."""
    clock = Clock(1_800_000_000.0)
    counting = DriftWindows(baseline, 60, clock=clock)
    out = []
    for _ in range(count):
        if baseline.prediction[0] == "p":
            counting.observe_prediction(RNG.dirichlet([2, 1, 1], 3))
            counting.observe_features({"x": float(RNG.normal()), "country": "de"})
        else:
            counting.observe_prediction(RNG.normal(size=4))
            counting.observe_features([[float(RNG.normal())]])
        clock.now += 60
        for window in counting.take_closed():
            out.append(
                {
                    **window,
                    "function": function,
                    "model": "m",
                    "model_version": "1",
                    "variant": "A",
                    "instance_id": instance,
                    **extra,
                }
            )
    return out


def written(path: Path, windows: list[dict[str, Any]]) -> None:
    store = StoreExporter(str(path), flush_interval_s=3600)
    for window in windows:
        store.export_window(window)
    assert store.flush()


def assert_same(a: WindowTable, b: WindowTable) -> None:
    assert np.array_equal(a.counts, b.counts)
    assert np.array_equal(a.start_ns, b.start_ns) and np.array_equal(a.end_ns, b.end_ns)
    assert np.array_equal(a.observations, b.observations)
    assert a.instance == b.instance
    assert [a.groups[g] for g in a.group] == [b.groups[g] for g in b.group]
    assert a.other == b.other


def test_a_window_round_trips_through_the_store_as_the_dict_given(tmp_path: Path) -> None:
    windows = counted(classifier(), 3, instance_psi={"x": 0.25, "p.cat": 0.01})
    windows[1]["tags"] = {"team": "vision"}  # a field the store has no column for
    store = StoreExporter(str(tmp_path), flush_interval_s=3600)
    store.export(Invocation(start=1, duration_ms=1.0, id="r1"))
    for window in windows:
        store.export_window(window)
    store.export(Invocation(start=2, duration_ms=1.0, id="r2"))
    assert store.flush()
    reading = read([str(tmp_path)])
    assert reading.windows == windows  # class scores, nested counts, every extra field
    assert (
        reading.windows[0]["prediction"]["p"]["scores"][0]
        == windows[0]["prediction"]["p"]["scores"][0]
    )
    assert [r.id for r in reading.records] == ["r1", "r2"]
    assert reading.problems == []
    later = read([str(tmp_path)], since_ns=windows[1]["window_end"] - 1)
    assert later.windows == windows[1:]
    assert read([str(tmp_path)], function="other").windows == []


def test_store_windows_equal_the_same_records_read_one_by_one(tmp_path: Path) -> None:
    built = classifier()
    windows = counted(built, 4) + counted(built, 2, instance="i2", function="g")
    # a log service may sort keys: a record's key order must not matter
    shuffled = dict(windows[1])
    shuffled["features"] = dict(reversed(windows[1]["features"].items()))
    scores = windows[1]["prediction"]["p"]
    shuffled["prediction"] = {"p": {key: scores[key] for key in ("invalid", "label", "scores")}}
    windows[1] = shuffled
    other = counted(regressor(), 3)  # counted against another baseline
    written(tmp_path, windows + other)
    problems: list[Problem] = []
    table = Store(str(tmp_path)).windows(built, problems)
    expected, unfit = WindowTable.from_records(
        built, sorted(windows + other, key=lambda w: w["window_start"])
    )
    assert problems == [] and unfit == []
    assert_same(table, expected)
    assert table.other == 3 and len(table) == 6
    assert table.counts.sum() > 0


def test_a_stored_window_that_does_not_fit_the_baseline_is_a_problem_with_its_row(
    tmp_path: Path,
) -> None:
    built = classifier()
    good, bad = counted(built, 2)
    bad["features"]["x"] = bad["features"]["x"] + [0]  # one bin too many
    written(tmp_path, [good, bad])
    problems: list[Problem] = []
    table = Store(str(tmp_path)).windows(built, problems)
    _, unfit = WindowTable.from_records(built, [bad])
    assert [str(p) for p in problems] == [f"{tmp_path / 'records.db'}#window2: {unfit[0][1]}"]
    assert unfit[0][1] == "features.x: expected 6 counts"
    assert_same(table, WindowTable.from_records(built, [good])[0])


def test_windows_sqlite_cannot_hold_are_set_aside_and_the_rest_written(tmp_path: Path) -> None:
    built = classifier()
    first, second = counted(built, 2)
    store = StoreExporter(str(tmp_path), flush_interval_s=3600)
    store.export_window(first)
    store.export_window({**first, "features": {"x": ["seven"]}})
    store.export_window({**first, "window_start": 2**70})
    store.export_window({**second, "function": "f\udcff"})  # a lone surrogate, escaped
    before = faults_seen().get("store_window", 0)
    store.export_window(None)  # type: ignore[arg-type]  # never raised into the handler
    assert faults_seen().get("store_window", 0) == before + 1
    assert store.flush()
    reading = read([str(tmp_path)])
    assert reading.windows == [first, {**second, "function": "f\udcff"}]
    database = tmp_path / "records.db"
    assert [str(p) for p in reading.problems] == [
        f"{database}#set_aside1: set aside by its writer: its counts are not 64-bit whole numbers",
        f"{database}#set_aside2: set aside by its writer: window_start is not a 64-bit integer",
    ]
    kept = connect(str(tmp_path)).execute("SELECT record FROM set_aside").fetchall()
    assert json.loads(kept[0][0])["features"] == {"x": ["seven"]}  # whole lines kept


def test_windows_share_the_backlog_while_the_store_is_locked(tmp_path: Path) -> None:
    windows = counted(classifier(), 10)
    connect(str(tmp_path)).close()
    store = StoreExporter(
        str(tmp_path), batch_size=2, flush_interval_s=3600, busy_timeout_s=0.05, backlog=4
    )
    holder = sqlite3.connect(str(tmp_path / "records.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    store.export(Invocation(start=1, duration_ms=1.0, id="r1"))
    for window in windows:
        store.export_window(window)
    holder.execute("COMMIT")
    holder.close()
    assert store.dropped == 7
    assert store.flush()
    reading = read([str(tmp_path)])
    assert reading.windows == windows[-4:] and reading.records == []


WINDOW_AT_EXIT = """
    import json, sys
    from inferobs.export.store import StoreExporter

    store = StoreExporter(sys.argv[1], flush_interval_s=3600)
    store.export_window(json.loads(sys.argv[2]))
    # no flush: the exit flush writes it
"""


def test_a_window_pending_at_exit_is_written(tmp_path: Path) -> None:
    (window,) = counted(classifier(), 1)
    done = run(WINDOW_AT_EXIT, str(tmp_path), json.dumps(window))
    assert done.returncode == 0 and done.stderr == ""
    assert read([str(tmp_path)]).windows == [window]


def layout_1_store(path: Path, baseline: Baseline) -> list[dict[str, Any]]:
    """A store as layout 1 kept it: a row per window, instance and feature; and the
    window records those rows hold."""
    path.mkdir(exist_ok=True)
    connection = sqlite3.connect(path / "records.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(V1_SCHEMA)
    connection.execute("INSERT INTO meta VALUES ('schema', '1')")
    invocation = Invocation(start=5, duration_ms=1.0, id="old")
    connection.execute(
        "INSERT INTO invocations (start, kind, status, cold_start, duration_ms, record)"
        " VALUES (5, 'invocation', 'ok', 0, 1.0, ?)",
        (invocation.to_json(),),
    )
    widths = {s.column: s.stop - s.start for s in segments(baseline)}
    expected = []
    for n, instance in enumerate(["i1", "i2", "i1"]):
        start = (1 + n // 2) * 60 * 10**9
        prediction = [int(v) for v in RNG.integers(0, 9, widths["prediction"])]
        x = [int(v) for v in RNG.integers(0, 9, widths["x"])]
        for feature, counts in (("x", x), ("prediction", prediction)):
            connection.execute(
                "INSERT INTO drift_windows VALUES (?, ?, ?, ?, ?, ?)",
                (start, start + 60 * 10**9, instance, baseline.hash, feature, pack(counts)),
            )
        expected.append(
            {
                "event": DRIFT_EVENT,
                "schema": 1,
                "window_start": start,
                "window_end": start + 60 * 10**9,
                "baseline_hash": baseline.hash,
                "instance_id": instance,
                "observations": sum(prediction),
                "prediction": {"prediction": prediction},
                "features": {"x": x},
            }
        )
    connection.close()
    return sorted(expected, key=lambda w: w["window_start"])


def pack(counts: list[int]) -> bytes:
    return np.array(counts, dtype="<i8").tobytes()


def layout(path: Path) -> tuple[str, set[str]]:
    connection = sqlite3.connect(f"file:{path / 'records.db'}?mode=ro", uri=True)
    try:
        (schema,) = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        return schema, tables
    finally:
        connection.close()


def test_a_layout_1_store_is_read_as_it_is_and_migrated_by_its_first_writer(
    tmp_path: Path,
) -> None:
    built = regressor()
    expected = layout_1_store(tmp_path, built)
    before = read([str(tmp_path)])  # a reader converts in memory and changes nothing
    assert before.windows == expected and before.problems == []
    assert layout(tmp_path)[0] == "1"
    problems: list[Problem] = []
    old_table = Store(str(tmp_path)).windows(built, problems)
    assert problems == []
    assert_same(old_table, WindowTable.from_records(built, expected)[0])

    (later,) = counted(built, 1, instance="i3")
    written(tmp_path, [later])  # the first writer migrates, in place
    schema, tables = layout(tmp_path)
    assert schema == "3"
    assert "drift_windows_layout_1" not in tables and "drift_windows_by_start" not in tables
    after = read([str(tmp_path)])
    assert after.windows == [*expected, later]
    assert [r.id for r in after.records] == ["old"]
    problems = []
    assert_same(
        Store(str(tmp_path)).windows(built, problems),
        WindowTable.from_records(built, [*expected, later])[0],
    )
    assert problems == []


OPEN_AT_ONCE = """
    import sys, time
    from inferobs.export.store import StoreExporter
    from inferobs.record import Invocation

    path, name, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < at:
        pass
    store = StoreExporter(path, batch_size=1)
    store.export(Invocation(start=1, duration_ms=1.0, id=name))
"""


def test_writers_opening_a_layout_1_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    expected = layout_1_store(tmp_path, regressor())
    at = time.time() + 1.5  # every process started and waiting
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(OPEN_AT_ONCE),
                str(tmp_path),
                f"w{n}",
                str(at),
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        for n in range(6)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0 and stderr == ""  # no fault: none failed to open it
    reading = read([str(tmp_path)])
    assert reading.windows == expected  # converted once: none lost, none doubled
    assert sorted(r.id for r in reading.records) == sorted(["old"] + [f"w{n}" for n in range(6)])  # type: ignore[type-var]
    assert layout(tmp_path)[0] == "3"


WRITE_ONE = """
    import sys
    from inferobs.export.store import StoreExporter
    from inferobs.record import Invocation

    store = StoreExporter(sys.argv[1], flush_interval_s=3600)
    store.export(Invocation(start=1, duration_ms=1.0, id="new"))
    print(store.flush())
"""


def test_a_store_laid_out_by_a_newer_inferobs_is_neither_written_nor_read(
    tmp_path: Path,
) -> None:
    built = classifier()
    written(tmp_path, counted(built, 1))
    connection = sqlite3.connect(tmp_path / "records.db")
    with connection:
        connection.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    connection.close()
    done = run(WRITE_ONE, str(tmp_path))
    assert done.returncode == 0 and done.stdout == "False\n"  # never written into it
    faults = [json.loads(line) for line in done.stderr.splitlines()]
    assert [f["kind"] for f in faults] == ["store", "store_exit"]
    assert (
        "laid out by a newer inferobs (store layout 4; this one writes layout 3)"
        in (faults[0]["message"])
    )
    assert layout(tmp_path)[0] == "4"
    with pytest.raises(ReadError, match=r"laid out by a newer inferobs \(store layout 4"):
        Store(str(tmp_path)).windows(built, [])
    with pytest.raises(ReadError, match=r"store layout 4; this one reads up to 3"):
        read([str(tmp_path)])


def log_lines(windows: list[dict[str, Any]]) -> tuple[str, str]:
    """A log export: invocations, windows after a timestamp, the platform's lines, a
    broken window; and what the broken line's problem says."""
    broken = {**windows[0], "window_start": "soon"}
    lines = [
        "START RequestId: r1 Version: $LATEST",
        Invocation(start=1, duration_ms=1.0, id="r1").to_json(),
        *(f"2026-11-27T10:00:00.000Z\t{json.dumps(w)}" for w in windows),
        json.dumps(broken),
        "REPORT RequestId: r1 Duration: 1.00 ms",
    ]
    return "\n".join(lines) + "\n", "window_start='soon': expected an integer"


@pytest.mark.parametrize("form", ["plain", "gzip", "utf-16"])
def test_windows_among_invocations_in_log_lines(tmp_path: Path, form: str) -> None:
    built = classifier()
    windows = counted(built, 3) + counted(regressor(), 1)
    text, why = log_lines(windows)
    log = tmp_path / f"export.log{'.gz' if form == 'gzip' else ''}"
    if form == "gzip":
        log.write_bytes(gzip.compress(text.encode()))
    else:
        log.write_text(text, encoding="utf-16" if form == "utf-16" else "utf-8")
    broken_at = f"{log}:{3 + len(windows)}"
    if form != "gzip":  # the record-by-record reader reads plain files only
        reading = read([str(log)])
        assert [r.id for r in reading.records] == ["r1"]
        assert reading.windows == sorted(windows, key=lambda w: w["window_start"])
        assert [str(p) for p in reading.problems] == [f"{broken_at}: {why}"]
    problems: list[Problem] = []
    table = LogLines(str(log)).windows(built, problems)
    assert [str(p) for p in problems] == [f"{broken_at}: {why}"]
    assert_same(table, WindowTable.from_records(built, windows)[0])
    assert table.other == 1


def test_a_file_of_windows_alone_holds_records(tmp_path: Path) -> None:
    from inferobs.analyze.frames import read_frames

    windows = counted(classifier(), 2)
    log = tmp_path / "windows.jsonl"
    log.write_text("".join(json.dumps(w) + "\n" for w in windows))
    assert read([str(log)]).windows == windows
    frames = read_frames([str(log)])  # no invocations, and nothing wrong
    assert frames.problems == [] and frames.count() == 0


def parts(baseline: Baseline) -> list[dict[str, Any]]:
    """One window emitted in two parts, as ``drift_every_invocation`` does: alike but for
    their counts, both to be counted."""
    counting = DriftWindows(baseline, 60, clock=Clock(1_900_000_000.0))
    out = []
    for _ in range(2):
        counting.observe_prediction(RNG.dirichlet([2, 1, 1], 3))
        (part,) = counting.take_closed(flush=True)
        out.append({**part, "function": "f", "instance_id": "i1"})
    assert out[0]["window_start"] == out[1]["window_start"]
    return out


def test_a_window_in_the_store_and_in_a_saved_log_counts_once_and_its_parts_all_count(
    tmp_path: Path,
) -> None:
    built = classifier()
    windows = counted(built, 3) + parts(built)
    written(tmp_path / "store", windows)
    log = tmp_path / "stdout.log"
    log.write_text("".join(json.dumps(w) + "\n" for w in windows[1:]))
    assert read([str(tmp_path / "store"), str(log)]).windows == windows
    assert read([str(log)]).windows == windows[1:]
    problems: list[Problem] = []
    sources = [Store(str(tmp_path / "store")), LogLines(str(log))]
    tables = [source.windows(built, problems) for source in sources]
    assert [len(t) for t in tables] == [5, 4] and problems == []
    assert_same(distinct_windows(built, tables), WindowTable.from_records(built, windows)[0])
