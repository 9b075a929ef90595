"""The store in a whole process: its background thread, its exit flush, bad values, bad paths.

Each test runs a real process that exits normally, because the background
flush and the flush at exit only happen in one, and then counts what reached
the database.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from inferobs.read import read

from .helpers import open_folder, unprivileged


def run(script: str, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **options,
    )


def stored(path: Path) -> int:
    connection = sqlite3.connect(f"file:{path / 'records.db'}?mode=ro", uri=True)
    try:
        (count,) = connection.execute("SELECT count(*) FROM invocations").fetchone()
    finally:
        connection.close()
    return int(count)


AFTER_A_BACKGROUND_FLUSH = """
    import sqlite3, sys, time
    import inferobs as obs
    from inferobs.export.store import StoreExporter

    path, later = sys.argv[1], int(sys.argv[2])
    obs.configure(exporters=[StoreExporter(path, flush_interval_s=0.05)])
    handler = obs.instrument(lambda event, context: "ok")
    for _ in range(10):
        handler({}, None)

    def stored():
        try:
            db = sqlite3.connect(f"file:{path}/records.db?mode=ro", uri=True)
            return db.execute("SELECT count(*) FROM invocations").fetchone()[0]
        except sqlite3.Error:  # not created yet
            return 0

    while stored() < 10:  # the background thread writes them, on its own thread
        time.sleep(0.01)
    for _ in range(later):  # 300: a full batch of 256 is written on this thread
        handler({}, None)
    # and the rest at exit
"""


@pytest.mark.parametrize("later", [10, 300])
def test_records_after_a_background_flush_are_all_stored(tmp_path: Path, later: int) -> None:
    done = run(AFTER_A_BACKGROUND_FLUSH, str(tmp_path), str(later))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no fault, no traceback at exit
    assert stored(tmp_path) == 10 + later


def test_the_exit_flush_writes_what_is_pending(tmp_path: Path) -> None:
    script = """
        import sys
        import inferobs as obs
        from inferobs.export.store import StoreExporter

        obs.configure(exporters=[StoreExporter(sys.argv[1], flush_interval_s=3600)])
        handler = obs.instrument(lambda event, context: "ok")
        for _ in range(7):
            handler({}, None)
    """
    done = run(script, str(tmp_path))
    assert (done.returncode, done.stderr) == (0, "")
    # the store is left as one file: its write-ahead log folded back in at exit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.db"]
    assert stored(tmp_path) == 7


def test_a_value_sqlite_cannot_hold_blocks_nothing(tmp_path: Path) -> None:
    script = """
        import json, sys
        import inferobs as obs

        obs.configure(exporters=["stdout", "store"], store_path=sys.argv[1])
        # valid JSON a request can carry: a lone surrogate, which UTF-8 cannot encode
        odd = json.loads('{"variant": "B\\\\udcff"}')["variant"]

        def handler(event, context):
            if event["odd"]:
                obs.set_model(variant=odd)
            return "ok"

        instrumented = obs.instrument(handler)
        for n in range(1000):
            instrumented({"odd": n == 3}, None)
    """
    done = run(script, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1000
    assert '"variant":"B\\udcff"' in lines[3]  # the stdout line keeps it, escaped as JSON
    assert stored(tmp_path) == 1000
    reading = read([str(tmp_path)])
    assert len(reading.records) == 1000 and reading.problems == []
    assert [r.variant for r in reading.records if r.variant] == ["B\udcff"]
    column = sqlite3.connect(str(tmp_path / "records.db")).execute(
        "SELECT variant FROM invocations WHERE variant IS NOT NULL"
    )
    assert column.fetchall() == [("B\\udcff",)]  # escaped where SQLite needs text it can hold


WRITES_TO = """
    import sys
    import inferobs as obs

    obs.configure(exporters=["stdout", "store"], store_path=sys.argv[1])
    handler = obs.instrument(lambda event, context: "ok")
    for _ in range(10):
        handler({}, None)
"""


def faults(stderr: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_a_store_path_that_is_a_file_is_one_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.write_text("")
    done = run(WRITES_TO, str(path))
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert [json.loads(line)["event"] for line in done.stdout.splitlines()] == [
        "inferobs.invocation"
    ] * 10
    (fault,) = faults(done.stderr)
    assert fault["kind"] == "store_exit"
    assert f"{path} is a file, not a folder" in fault["message"]
    assert "10 records never reached it" in fault["message"]


def test_a_store_folder_that_is_not_writable_is_one_clear_message() -> None:
    options = unprivileged()
    with open_folder() as folder:
        path = folder / "store"
        path.mkdir()
        path.chmod(0o555)
        done = run(WRITES_TO, str(path), **options)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert len(done.stdout.splitlines()) == 10
    (fault,) = faults(done.stderr)
    assert "permission denied" in fault["message"]


IN_A_POOL = """
import multiprocessing
import sys

import inferobs as obs


def work(n):
    obs.configure(exporters=["store"], store_path=sys.argv[1])
    handler = obs.instrument(lambda event, context: event)
    for i in range(100):
        handler(i, None)
    return n


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[2])
    with context.Pool(4) as pool:  # leaving the block terminates the workers
        print(pool.map(work, range(4)))
"""


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_records_made_in_pool_workers_all_reach_the_store(tmp_path: Path, method: str) -> None:
    script = tmp_path / "pool.py"
    script.write_text(IN_A_POOL)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 2, 3]"
    assert stored(tmp_path / "store") == 400


def test_a_stream_finalised_at_shutdown_is_stored_and_the_exit_does_not_hang(
    tmp_path: Path,
) -> None:
    script = """
        import sys
        import inferobs as obs

        obs.configure(exporters=["stdout", "store"], store_path=sys.argv[1])


        @obs.instrument
        def stream(event, context):
            with obs.stage("generate"):
                yield 1
                yield 2


        KEPT = stream({}, None)
        next(KEPT)  # left unfinished: Python closes it while the interpreter shuts down
    """
    done = run(script, str(tmp_path))
    assert (done.returncode, done.stderr) == (0, "")
    assert len(done.stdout.splitlines()) == 1
    assert stored(tmp_path) == 1
