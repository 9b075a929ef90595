"""What `obs report` and `obs tail` put on a terminal, a pipe or a file.

Each command runs as a user runs it, in its own process, so the standard
streams have the encoding the environment gives them (PYTHONIOENCODING, or
the C locale) and are pipes, not terminals.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferobs.export.store import StoreExporter
from inferobs.record import Invocation

OBS = os.path.join(os.path.dirname(sys.executable), "obs")
SECOND = 1_000_000_000
# valid JSON a request can carry, which no UTF-8 stream can write as it is
LONE_LOW = json.loads('"B\\udcff"')
LONE_HIGH = json.loads('"s\\ud800"')


def obs(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``obs`` in its own process, its output captured through pipes as bytes."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONIOENCODING", "PYTHONUTF8", "COLUMNS", "LC_ALL", "LANG")
    }
    return subprocess.run(
        [OBS, *args], capture_output=True, env={**base, **env}, timeout=60, check=False
    )


def store_of(tmp_path: Path, records: list[Invocation]) -> str:
    store = StoreExporter(str(tmp_path / "store"))
    for record in records:
        store.export(record)
    assert store.flush()
    return str(tmp_path / "store")


SETTINGS = [
    pytest.param({"PYTHONIOENCODING": "utf-8"}, id="utf-8"),
    pytest.param({"LC_ALL": "C"}, id="C"),
]


@pytest.mark.parametrize("env", SETTINGS)
@pytest.mark.parametrize(
    "command", [["report"], ["report", "--format", "markdown"], ["tail", "--no-follow"]]
)
def test_text_no_stream_can_encode_is_shown_escaped(
    tmp_path: Path, env: dict[str, str], command: list[str]
) -> None:
    odd = Invocation(
        start=SECOND,
        duration_ms=1.0,
        function="f",
        model="m",
        variant=LONE_LOW,
        stages={LONE_HIGH: 1.0},
        status="error",
        error_type=LONE_LOW,
    )
    done = obs(*command, "--source", store_of(tmp_path, [odd]), **env)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.decode("utf-8")  # valid UTF-8: no raw byte of a lone surrogate
    assert "B\\udcff" in shown
    assert "s\\ud800" in shown


@pytest.mark.parametrize("env", SETTINGS)
def test_json_carries_such_text_as_its_backslash_escape(
    tmp_path: Path, env: dict[str, str]
) -> None:
    odd = Invocation(start=SECOND, duration_ms=1.0, variant=LONE_LOW, stages={LONE_HIGH: 1.0})
    done = obs("report", "--format", "json", "--source", store_of(tmp_path, [odd]), **env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.decode("utf-8"))
    # the columnar form is UTF-8 throughout: such text arrives as its backslash escape
    assert report["operations"][0]["variant"] == "B\\udcff"
    assert report["stages"][0]["stage"] == LONE_HIGH.encode("utf-8", "backslashreplace").decode()


def test_tail_writes_one_line_a_record_to_a_pipe_with_utc_times(tmp_path: Path) -> None:
    records = [
        Invocation(
            start=n * SECOND,
            duration_ms=12.5,
            function="a-function-with-a-rather-long-name",
            model="a-model-with-a-long-name-too",
            model_version="2026-11-01",
            variant="shadow",
            stages={"preprocess": 1.25, "inference": 10.5, "postprocess": 0.75},
        )
        for n in (1, 2, 3)
    ]
    done = obs("tail", "--source", store_of(tmp_path, records), "--no-follow")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("utf-8").splitlines()
    assert len(lines) == 3
    for n, line in enumerate(lines, 1):
        assert len(line) > 80  # longer than the width rich assumes off a terminal
        assert line.startswith(f"00:00:0{n}.000Z ")  # the record's start, in UTC, marked so
        assert line.endswith("postprocess=0.75")


def test_report_groups_by_model_too(tmp_path: Path) -> None:
    """Off-cloud there is no function name: models with the same version are told apart."""
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        "".join(
            Invocation(
                start=n * SECOND, duration_ms=float(n), model=model, model_version="1"
            ).to_json()
            + "\n"
            for n, model in enumerate(["ranker", "tagger", "ranker", "embedder"], 1)
        )
    )
    report = json.loads(obs("report", "--format", "json", "--source", str(lines)).stdout)
    assert [(g["model"], g["model_version"], g["invocations"]) for g in report["operations"]] == [
        ("ranker", "1", 2),
        ("tagger", "1", 1),
        ("embedder", "1", 1),
    ]
    markdown = obs("report", "--format", "markdown", "--source", str(lines)).stdout.decode()
    assert "| function | model | model version | variant | requests |" in markdown
    assert "| - | tagger | 1 | - | 1 |" in markdown
    table = obs("report", "--source", str(lines)).stdout.decode()
    assert re.search(r"\bembedder\b", table)


def test_report_counts_unreadable_sources_apart_from_records(tmp_path: Path) -> None:
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        Invocation(start=SECOND, duration_ms=1.0).to_json()
        + "\n"
        + '{"event":"inferobs.invocation"}\n'
    )
    missing = tmp_path / "missing.jsonl"
    done = obs("report", "--source", str(lines), "--source", str(missing))
    assert done.returncode == 0
    warnings = done.stderr.decode().splitlines()
    assert warnings[-1] == (
        "warning: 1 record and 1 source could not be read; reporting the 1 record read"
    )
    good = tmp_path / "good.jsonl"
    good.write_text(Invocation(start=SECOND, duration_ms=1.0).to_json() + "\n")
    done = obs("report", "--source", str(good), "--source", str(missing))
    assert done.stderr.decode().splitlines()[-1] == (
        "warning: 1 source could not be read; reporting the 1 record read"
    )


def test_sources_partly_unreadable_give_a_report_and_each_problem_by_file_and_line(
    tmp_path: Path,
) -> None:
    """Every format at once: what can be read is reported (exit 0), the rest named by place."""
    import gzip

    def line(n: int) -> str:
        return Invocation(
            start=n * SECOND, duration_ms=float(n), function="f", id=f"r{n}"
        ).to_json()

    export = tmp_path / "export.log"  # a log export: a timestamp before each line
    export.write_text(
        f"2024-01-01T00:00:01.000Z {line(1)}\n"
        '2024-01-01T00:00:02.000Z {"event":"inferobs.invocation","start":\n'  # cut
        f"2024-01-01T00:00:03.000Z {line(3)}\n"
        "2024-01-01T00:00:04.000Z REPORT RequestId: cut\n"
    )
    table = tmp_path / "calls.csv"
    table.write_text("start,duration_ms\n1700000000,12.5\n1700000001,oops\n")
    packed = tmp_path / "more.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(line(5) + '\n{"event":"inferobs.invocation"\n')
    missing = tmp_path / "missing.jsonl"
    sources = [option for path in (export, table, packed, missing) for option in ("--source", path)]
    done = obs("report", "--format", "json", *map(str, sources))
    assert done.returncode == 0
    operations = json.loads(done.stdout)["operations"]
    assert sum(group["invocations"] for group in operations) == 4  # three of ours, one row
    warnings = done.stderr.decode().splitlines()
    places = [warning.removeprefix("warning: ").split(": ")[0] for warning in warnings[:-1]]
    assert places == [f"{export}:2", f"{export}:4", f"{table}:3", f"{packed}:2", f"{missing}"]
    assert warnings[-1] == (
        "warning: 4 records and 1 source could not be read; reporting the 4 records read"
    )


def test_a_pipe_gets_no_progress_bar_and_no_control_codes(tmp_path: Path) -> None:
    lines = tmp_path / "calls.jsonl"
    records = [Invocation(start=n * SECOND, duration_ms=1.0) for n in range(1, 50)]
    lines.write_text(
        "".join(r.to_json() + "\n" for r in records) + '{"event":"inferobs.invocation"}\n'
    )
    done = obs("report", "--source", str(lines), FORCE_COLOR="1", TERM="xterm")  # colour asked for
    assert done.returncode == 0
    stderr = done.stderr.decode()
    assert "\x1b" not in stderr and "\r" not in stderr
    first, last = stderr.splitlines()  # the warnings, and nothing else
    assert first.startswith(f"warning: {lines}:50: ")
    assert last == "warning: 1 record could not be read; reporting the 49 records read"
