"""`obs report` shows a progress bar while it reads on a terminal, and nothing elsewhere.

The terminal is a real one: ``obs`` runs in its own process with stderr on
a pseudo-terminal, as in a shell, so the test sees what a user would. A pipe
is checked in test_cli_output.py.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from inferobs.cli import main
from inferobs.record import Invocation

OBS = os.path.join(os.path.dirname(sys.executable), "obs")
SECOND = 1_000_000_000
ERASE_LINE = "\x1b[2K"  # how a transient bar takes itself away


def lines_file(path: Path, bad: bool = False) -> Path:
    records = [Invocation(start=n * SECOND, duration_ms=1.0, function="f") for n in range(1, 50)]
    text = "".join(record.to_json() + "\n" for record in records)
    path.write_text(text + ('{"event":"inferobs.invocation"}\n' if bad else ""))
    return path


def on_a_terminal(*args: str) -> tuple[int, str, str]:
    """``obs`` with stderr on a pseudo-terminal: exit status, stdout, and all the terminal got."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    with subprocess.Popen(
        [OBS, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=env
    ) as command:
        os.close(terminal)
        shown = bytearray()
        while True:  # read as it is written, so a full terminal never blocks the command
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the command has exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
        assert command.stdout is not None
        out = command.stdout.read().decode()
        status = command.wait(timeout=60)
    return status, out, shown.decode("utf-8", "replace")


def test_a_terminal_shows_the_bar_and_it_is_gone_before_the_warnings(tmp_path: Path) -> None:
    source = lines_file(tmp_path / "calls.jsonl", bad=True)
    status, out, shown = on_a_terminal("report", "--source", str(source), "--format", "json")
    assert status == 0
    assert '"invocations": 49' in out
    assert "reading calls.jsonl" in shown or "computing figures" in shown
    assert "1/1" in shown  # the sources read, of those given
    # the bar is erased, then the warnings are printed on clean lines
    warning = shown.index(f"warning: {source}:50:")
    assert ERASE_LINE in shown[:warning]
    assert ERASE_LINE not in shown[warning:]


def test_the_test_runner_is_not_a_terminal_either(tmp_path: Path) -> None:
    source = lines_file(tmp_path / "calls.jsonl")
    result = CliRunner().invoke(main, ["report", "--source", str(source)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr == ""
