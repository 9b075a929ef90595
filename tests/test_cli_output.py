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
