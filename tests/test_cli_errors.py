"""Every way an `obs` command fails ends in one ``Error:`` line and a non-zero exit.

Each case compares the whole line a user sees, and the runner re-raises
anything but the command's own exit, so a traceback fails the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from inferobs.cli import main
from inferobs.exit_codes import ExitCode
from inferobs.export.store import DATABASE, StoreExporter, connect
from inferobs.record import Invocation

from .helpers import open_folder, unprivileged

OBS = os.path.join(os.path.dirname(sys.executable), "obs")
RANGE = "is not in the range"
NOT_FINITE = "is not a finite number."
WHEN = "expected a duration such as 30m, 2h, 7d, or an ISO-8601 time"
BURSTS = "0<x<=1000000"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def a_store(path: Path) -> Path:
    store = StoreExporter(str(path))
    store.export(Invocation(start=1, duration_ms=1.0, function="f"))
    store.flush()
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tail", "--interval", "-1"], f"'--interval': -1.0 {RANGE} 0<x<=3600."),
        (["tail", "--interval", "0"], f"'--interval': 0.0 {RANGE} 0<x<=3600."),
        (["tail", "--interval", "nan"], f"'--interval': 'nan' {NOT_FINITE}"),
        (["tail", "--interval", "1e300"], f"'--interval': 1e+300 {RANGE} 0<x<=3600."),
        (["tail", "-n", "-5"], f"'-n' / '--lines': -5 {RANGE} x>=0."),
        (["report", "--since", "garbage"], f"'--since': 'garbage': {WHEN}"),
        # more seconds than a float holds
        (["report", "--since", "1" + "0" * 400 + "d"], f"'--since': '1{'0' * 400}d': {WHEN}"),
        (["demo", "--minutes", "0"], f"'--minutes': 0.0 {RANGE} 0<x<=527040."),
        (["demo", "--minutes", "1e12"], f"'--minutes': 1000000000000.0 {RANGE} 0<x<=527040."),
        (["demo", "--minutes", "nan"], f"'--minutes': 'nan' {NOT_FINITE}"),
        (["demo", "--minutes", "inf"], f"'--minutes': 'inf' {NOT_FINITE}"),
        (["demo", "--bursts-per-hour", "0"], f"'--bursts-per-hour': 0.0 {RANGE} {BURSTS}."),
        (["demo", "--bursts-per-hour", "-2"], f"'--bursts-per-hour': -2.0 {RANGE} {BURSTS}."),
        (["demo", "--bursts-per-hour", "1e308"], f"'--bursts-per-hour': 1e+308 {RANGE} {BURSTS}."),
        (["demo", "--keep-alive", "-1"], f"'--keep-alive': -1.0 {RANGE} 0<=x<=527040."),
        (["demo", "--keep-alive", "1e308"], f"'--keep-alive': 1e+308 {RANGE} 0<=x<=527040."),
        (["demo", "--keep-alive", "inf"], f"'--keep-alive': 'inf' {NOT_FINITE}"),
        # each number in range, the traffic they make together too much to serve
        (
            ["demo", "--bursts-per-hour", "50000"],
            "1440 minutes at 50000 bursts per hour is about 3,000,000 requests; "
            "the demo serves at most 1,000,000",
        ),
    ],
)
def test_a_bad_option_value_is_a_usage_error_naming_it(
    args: list[str], message: str, tmp_path: Path
) -> None:
    if args[0] == "demo":
        args = [*args, "--store", str(tmp_path)]
    result = run(*args)
    assert result.exit_code == 1
    invalid = "" if message[0].isdigit() else "Invalid value for "
    assert error_line(result) == f"Error: {invalid}{message}"
    assert not (tmp_path / DATABASE).exists()  # refused before anything was done


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "No such command 'frobnicate'."),
        (["--bogus"], "No such option '--bogus'."),
        (["report", "--bogus"], "No such option '--bogus'."),
        (["report", "extra"], "Got unexpected extra argument (extra)"),
        (["report", "--format", "xml"], "Invalid value for '--format': 'xml' is not one of"),
        (["report", "--since"], "Option '--since' requires an argument."),
        (["tail", "-n", "many"], "Invalid value for '-n' / '--lines': 'many' is not"),
        (["version", "now"], "Got unexpected extra argument (now)"),
    ],
)
def test_bad_arguments_exit_1_as_every_error_does(args: list[str], message: str) -> None:
    """Scripts tell success from failure by 0 and 1 alone; 3 and 4 are findings, never 2."""
    result = run(*args)
    assert result.exit_code == ExitCode.ERROR
    assert error_line(result).startswith(f"Error: {message}")
    assert "Traceback" not in result.output


def test_the_installed_command_exits_1_on_bad_arguments() -> None:
    """The console script, not only the test runner, maps click's usage errors to 1."""
    done = subprocess.run(
        [OBS, "report", "--since", "yesterday-ish"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr.splitlines()[-1]
        == f"Error: Invalid value for '--since': 'yesterday-ish': {WHEN}"
    )
    assert done.stdout == ""


def test_the_exit_codes_are_fixed() -> None:
    """Their meaning is promised in docs/cli.md before any command returns 3 or 4."""
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "ALERT": 3,
        "OVER_BUDGET": 4,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"bursts_per_hour": 0},
            "bursts_per_hour=0: expected a finite number above 0 and at most 1,000,000",
        ),
        (
            {"minutes": float("nan")},
            "minutes=nan: expected a finite number above 0 and at most 527,040",
        ),
        (
            {"keep_alive_minutes": -1},
            "keep_alive_minutes=-1: expected a finite number at least 0 and at most 527,040",
        ),
        (
            {"keep_alive_minutes": 1e308},
            "keep_alive_minutes=1e+308: expected a finite number at least 0 and at most 527,040",
        ),
        (
            {"bursts_per_hour": 1e308},
            "bursts_per_hour=1e+308: expected a finite number above 0 and at most 1,000,000",
        ),
        ({"error_rate": 2}, "error_rate=2: expected a finite number at least 0 and at most 1"),
    ],
)
def test_run_demo_checks_its_numbers_before_doing_anything(
    options: dict[str, float], message: str, tmp_path: Path
) -> None:
    from inferobs.demo import run_demo

    with pytest.raises(ValueError) as raised:
        run_demo(str(tmp_path), **options)  # type: ignore[arg-type]
    assert str(raised.value) == message
    assert list(tmp_path.iterdir()) == []


def test_a_bad_number_in_a_variable_is_named_as_the_configuration_page_shows(
    tmp_path: Path,
) -> None:
    result = run("demo", "--store", str(tmp_path), env={"INFEROBS_SAMPLE_RATE": "lots"})
    assert result.exit_code == 1
    assert result.stderr == "Error: INFEROBS_SAMPLE_RATE='lots': expected a number\n"


def test_a_bad_variable_stops_the_demo_before_its_old_store_is_touched(tmp_path: Path) -> None:
    store = a_store(tmp_path / "demo")
    connection = connect(str(store))
    connection.execute("INSERT INTO meta (key, value) VALUES ('origin', 'demo')")  # the demo's
    connection.close()
    before = (store / DATABASE).read_bytes()
    result = run("demo", "--store", str(store), env={"INFEROBS_ENABLED": "maybe"})
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: INFEROBS_ENABLED='maybe': expected one of true/false/1/0/yes/no/on/off\n"
    )
    assert (store / DATABASE).read_bytes() == before


def test_reading_commands_heed_only_the_store_path(tmp_path: Path) -> None:
    """`obs report` and `obs tail` record nothing: a bad recording setting is not their business."""
    env = {
        "INFEROBS_STORE_PATH": str(a_store(tmp_path)),
        "INFEROBS_SAMPLE_RATE": "lots",
        "INFEROBS_ENABLED": "maybe",
    }
    report = run("report", "--format", "json", env=env)
    assert report.exit_code == 0
    assert report.stderr == ""
    assert '"invocations": 1' in report.stdout
    tail = run("tail", "--no-follow", env=env)
    assert tail.exit_code == 0
    assert tail.stderr == ""
    assert " f " in tail.stdout


def test_the_demo_never_empties_a_store_it_did_not_write(tmp_path: Path) -> None:
    store = a_store(tmp_path / "mine")  # the user's own records
    before = (store / DATABASE).read_bytes()
    result = run("demo", "--store", str(store), "--minutes", "60")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {store} holds records that obs demo did not write; "
        "choose another --store (the demo empties its store first)\n"
    )
    assert (store / DATABASE).read_bytes() == before


def test_the_demo_store_must_be_a_folder(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    result = run("demo", "--store", str(a_file))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {a_file}/{DATABASE}: Not a directory\n"
    assert a_file.read_text() == "mine"


def test_sources_that_cannot_be_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()  # a folder without a store in it
    assert error_line(run("report", "--source", str(empty))) == (
        f"Error: {empty}: no such file or store"
    )
    assert error_line(run("tail", "--source", str(empty))) == f"Error: {empty}: no such store"
    odd = tmp_path / "odd"
    (odd / DATABASE).mkdir(parents=True)  # where the database should be, a folder
    result = run("report", "--source", str(odd))
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {odd}: [Errno 21] Is a directory: '{odd}/{DATABASE}'"
    lines = tmp_path / "lines.jsonl"
    lines.write_text(Invocation(start=1, duration_ms=1.0).to_json() + "\n")
    result = run("tail", "--source", str(lines))
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {lines}: not a readable inferobs store (file is not a database)"
    )


def test_an_unreadable_file_is_named() -> None:
    options = unprivileged()
    with open_folder() as folder:
        secret = folder / "secret.jsonl"
        secret.write_text(Invocation(start=1, duration_ms=1.0).to_json() + "\n")
        secret.chmod(0)
        done = subprocess.run(
            [OBS, "report", "--source", str(secret)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            **options,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {secret}: [Errno 13] Permission denied: '{secret}'"
    )


def test_ctrl_c_ends_the_demo_in_one_error_line(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [OBS, "demo", "--store", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stderr is not None
    assert demo.stderr.readline().startswith("Serving ")  # it has started its work
    demo.send_signal(signal.SIGINT)
    rest = demo.stderr.read()
    assert demo.wait(timeout=30) == 130
    assert rest == "Error: interrupted\n"


def test_ctrl_c_stops_following_without_an_error(tmp_path: Path) -> None:
    follower = subprocess.Popen(
        [OBS, "tail", "--source", str(a_store(tmp_path)), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    assert " f " in follower.stdout.readline()  # following now
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert err == ""
