"""The ``obs`` command: reports and a live view over recorded invocations.

Needs the ``cli`` extra (click, rich); the SDK itself never imports this module.

Every way a command can fail ends in one ``Error: <what was wrong>`` line on
stderr and a non-zero exit, never a traceback. The statuses are
`inferobs.exit_codes.ExitCode`: 1 for bad arguments as for a source, store or
setting that cannot be used (click's own 2 for a usage error is mapped to 1),
130 when interrupted; 3 when an alert rule fired, 4 when over budget.
Commands that only read (``report``, ``tail``) heed ``INFEROBS_STORE_PATH``
alone of the ``INFEROBS_*`` variables; ``demo`` records, so it checks them
all as `inferobs.configure` does.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click

from . import __version__
from .analyze.cost_render import COST_FORMATS
from .analyze.render import FORMATS, counted
from .cli_costs import CostRequest, Finite, cost_options
from .cli_drift import DriftRequest, check_alert, drift_options, load_rules_option
from .cli_pull import CLOUD_PREFIXES, pull, pull_source
from .config import Settings
from .demo import (
    BASELINE_FILE,
    MAX_BURSTS_PER_HOUR,
    MAX_KEEP_ALIVE_MINUTES,
    MAX_MINUTES,
    OutOfRange,
    run_demo,
)
from .exit_codes import ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import TextIO

    from .analyze.frames import Frames
    from .analyze.render import Section
    from .drift.baseline import Baseline
    from .record import Invocation

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SQLITE_MAX_INT = 2**63 - 1  # the most rows a LIMIT can ask for
DEMO_MAX_COLD_START_RATE = 0.01  # the target the demo's cost section prices against


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``30m``, ``2h``, ``7d`` ago, or an ISO-8601 time, as Unix epoch nanoseconds.

    Raises ValueError, naming the text, for anything else.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        match = _AGO.match(text.strip())
        if match:
            return now_ns - int(float(match.group(1)) * _UNIT_S[match.group(2)] * 1e9)
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1e9)
    except (ValueError, OverflowError):  # not a time, or one out of any clock's range
        raise ValueError(
            f"{text!r}: expected a duration such as 30m, 2h, 7d, or an ISO-8601 time"
        ) from None


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--since``, read as the command line is, so a mistake names the option."""
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


class _Interrupted(click.ClickException):
    """Ctrl-C: one ``Error:`` line and the shell's exit status for SIGINT."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted")


class _Commands(click.Group):
    """The ``obs`` group: its exit statuses are `ExitCode`'s.

    A usage error (a bad option value, an unknown command or option) is
    printed as click prints it but exits 1, not click's 2; a command stopped
    by Ctrl-C says so in one line and exits 130. Every usage error passes
    through one of these two methods: the group's own arguments are parsed in
    `make_context`, a command's (and the command's name) in `invoke`.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _usage_errors_exit_1():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _usage_errors_exit_1():
                return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None


@contextlib.contextmanager
def _usage_errors_exit_1() -> Iterator[None]:
    """Bad arguments are an error like any other: exit 1, message unchanged."""
    try:
        yield
    except click.UsageError as exc:
        # click declares the status on the class; this one error's status is ours
        setattr(exc, "exit_code", ExitCode.ERROR)  # noqa: B010
        raise


_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(COST_FORMATS),
    default="table",
    show_default=True,
    help="html: with --costs or --drift only.",
)


def _default_source() -> str:
    """The store at ``INFEROBS_STORE_PATH``, the one variable a reading command heeds.

    The others configure recording; a bad one is no reason to refuse a report.
    """
    variable = Settings.ENV["store_path"]
    return Settings.from_env({variable: os.environ.get(variable, "")}).store_path


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inferobs", message="%(prog)s %(version)s")
def main() -> None:
    """Observability and cost answers for ML inference on serverless platforms."""


@main.group()
def baseline() -> None:
    """Baselines: the reference distributions drift is measured against."""


@baseline.command("build")
@click.argument("data", metavar="DATA")
@click.option("--prediction", required=True, metavar="COL", help="The prediction column.")
@click.option(
    "--features", default="", metavar="A,B,C", help="Input columns to watch, comma-separated."
)
@click.option("--bins", type=click.IntRange(2, 1000), default=10, show_default=True)
@click.option(
    "--categorical",
    default="",
    metavar="A,B",
    help="Columns to count by category whatever they hold.",
)
@click.option(
    "--classes",
    default="",
    metavar="A,B,C",
    help="Names of a probability vector's classes, in order.",
)
@click.option("--out", required=True, metavar="FILE", help="Where to write the baseline (JSON).")
def baseline_build(
    data: str,
    *,
    prediction: str,
    features: str,
    bins: int,
    categorical: str,
    classes: str,
    out: str,
) -> None:
    """Build a baseline from training or validation DATA (CSV, Parquet, JSON Lines, .npz)."""
    from .drift.baseline import Baseline, BaselineError
    from .drift.reference_data import read_reference

    def names(text: str) -> list[str]:
        return [name.strip() for name in text.split(",") if name.strip()]

    try:
        columns, digest = read_reference(data)
        built = Baseline.from_frame(
            columns,
            prediction=prediction,
            features=names(features),
            bins=bins,
            categorical=names(categorical),
            classes=names(classes) or None,
            source_hash=digest,
        )
        built.save(out)
    except BaselineError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot be written ({exc.strerror or exc})") from None
    kinds = ", ".join(f"{name} ({column.kind})" for name, column in built.features.items())
    click.echo(
        f"baseline {built.hash} for {prediction} ({built.prediction[1].kind})"
        + (f" and {kinds}" if kinds else "")
        + f" written to {out}",
        err=True,
    )


@main.command()
def version() -> None:
    """Print the inferobs version."""
    click.echo(f"inferobs {__version__}")


@main.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH",
    help="A store, a file of JSON lines or a log export, an invocation table (CSV, "
    "JSON Lines, Parquet) or an Azure trace; text may be gzip; or aws:FUNCTION, "
    "gcp:SERVICE or azure:APP@WORKSPACE, pulled into the store first (repeatable; "
    "docs/sources.md). "
    "Default: the store at INFEROBS_STORE_PATH (.inferobs).",
)
@_format_option
@click.option(
    "--since",
    callback=_since,
    metavar="WHEN",
    help="Only records from then on: 30m, 2h, 7d, or ISO time.",
)
@click.option("--function", metavar="NAME", help="Only this function.")
@cost_options
@drift_options
def report(
    sources: Sequence[str],
    output_format: str,
    since: int | None,
    function: str | None,
    costs: bool,
    **arguments: Any,
) -> None:
    """Counts, error, timeout and cold-start rates, and latency percentiles.

    With --costs: what each way of running each function costs on its real
    arrivals (on-demand, provisioned concurrency, always-on instances), with
    the cold starts and latency of each, and the cheapest meeting the SLO.

    With --drift: how far predictions and features have moved from a
    baseline, per period, and which alert rules fire (exit status 3 on an
    alert).
    """

    drift = arguments.pop("drift")
    if costs and drift:
        raise click.UsageError("--costs and --drift are separate reports: ask for one")
    drift_arguments = {name: arguments.pop(name) for name in ("baseline", "period", "rules")}
    cost_arguments = arguments
    _check_report(costs, drift, output_format, drift_arguments, cost_arguments)
    paths, function = _pulled_sources(list(sources) or [_default_source()], since, function)
    if drift:
        from .analyze.drift_render import write_drift

        asked = DriftRequest(**drift_arguments, sources=paths)
        found = asked.answer(_read(paths, since, function, asked.baseline), since)
        write_drift(found, output_format, sys.stdout)
        check_alert(found["findings"])
        return
    if costs:
        from .analyze.cost_render import write_costs

        request = CostRequest(**cost_arguments)
        request.check()
        reading = _read(paths, since, function)
        answer = request.answer(reading, since)
        request.warn(answer)
        write_costs(answer, output_format, sys.stdout)
        request.check_budget(answer)
        return
    _operations_report(paths, since, function, drift_arguments["rules"], output_format)


def _check_report(
    costs: bool,
    drift: bool,
    output_format: str,
    drift_arguments: dict[str, Any],
    cost_arguments: dict[str, Any],
) -> None:
    """Options that go with another, refused before anything is read or pulled."""
    if drift:
        return
    if drift_arguments["baseline"] is not None or drift_arguments["period"] != "1h":
        named = "--baseline" if drift_arguments["baseline"] is not None else "--window"
        raise click.UsageError(f"{named} goes with --drift")
    if costs:
        return
    given = [name for name, value in cost_arguments.items() if value not in (None, False, ())]
    if output_format == "html":
        raise click.UsageError("--format html goes with --costs or --drift")
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} goes with --costs")


def _pulled_sources(
    paths: list[str], since: int | None, function: str | None
) -> tuple[list[str], str | None]:
    """``--source`` values with each cloud function (``aws:NAME``) pulled into the store
    and read from there; with no ``--function``, one function so named is the one reported."""
    clouds = [path for path in paths if path.startswith(CLOUD_PREFIXES)]
    if not clouds:
        return paths, function
    out: list[str] = []
    names = set()
    for given in paths:
        path = given
        if given in clouds:
            path, name = pull_source(given, since, None)
            names.add(name)
        if path not in out:
            out.append(path)
    if function is None and len(names) == 1 and len(clouds) == len(paths):
        function = names.pop()
    return out, function


def _operations_report(
    paths: list[str], since: int | None, function: str | None, rules: str | None, fmt: str
) -> None:
    """The operations report, and the operations rules that fired (exit 3 on an alert)."""
    from .analyze.drift_render import fired_section
    from .analyze.drift_report import finding_dict, newest_first, operations_by_rule
    from .analyze.render import render_report
    from .analyze.rules import judge

    judged = load_rules_option(rules)
    reading = _read(paths, since, function)
    sections = _operations(reading)
    findings = judge(judged, operations=operations_by_rule(reading, judged))
    fired, lines = fired_section([finding_dict(f) for f in sorted(findings, key=newest_first)])
    if fired is not None:
        sections.append(fired)
    render_report(sections, fmt, sys.stdout)
    if fmt != "json":  # JSON holds every finding, and must stay one document
        for line in lines:
            sys.stdout.write(line + "\n")
    check_alert(fired.data if fired is not None else [])


def _read(
    paths: list[str], since: int | None, function: str | None, baseline: Baseline | None = None
) -> Frames:
    """Every source read (a progress bar on a terminal), and what could not be, warned of;
    with ``baseline``, its drift windows too."""
    from .analyze.frames import read_frames
    from .read import ReadError

    try:
        with _progress(sys.stderr) as progress:  # the bar ends before any warning
            reading = read_frames(
                paths, since_ns=since, function=function, progress=progress, baseline=baseline
            )
    except ReadError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in reading.problems[:20]:
        click.echo(f"warning: {problem}", err=True)
    if len(reading.problems) > 20:
        click.echo(f"warning: ... and {len(reading.problems) - 20} more", err=True)
    if reading.problems:
        # a problem located at a source as given is the whole source (missing,
        # unreadable, holding no records); the others are a line or a row each
        whole = sum(problem.location in paths for problem in reading.problems)
        unread = [(len(reading.problems) - whole, "record"), (whole, "source")]
        click.echo(
            f"warning: {' and '.join(counted(*part) for part in unread if part[0])} "
            "could not be read; "
            f"reporting the {counted(reading.count(), 'record')} read",
            err=True,
        )
    for loss in reading.losses:  # records that never reached the store: the report is short
        click.echo(f"warning: {loss}", err=True)
    return reading


def _operations(reading: Frames) -> list[Section]:
    """The operations and stages sections of what was read."""
    from .analyze.figures import figures
    from .analyze.render import operations_section, stages_section

    groups = figures(reading)
    return [operations_section(groups), stages_section(groups)]


@contextlib.contextmanager
def _progress(stream: TextIO) -> Iterator[Callable[[int, int, str], None] | None]:
    """A progress bar for `read_frames` on ``stream`` when it is a terminal, else None.

    On a pipe or a file nothing at all is written: no bar, no control codes, so
    a log of ``obs report`` holds only its warnings. The bar is transient: it
    is erased when the figures are computed, before any warning is printed.
    """
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream, force_terminal=True),
        transient=True,
    )
    task = bar.add_task("reading", total=None)

    def step(done: int, total: int, source: str) -> None:
        # called before each source, then once with none when all are read
        what = f"reading {_name(source)}" if source else "computing figures"
        bar.update(task, completed=done, total=total, description=what)

    with bar:
        yield step


def _name(source: str) -> str:
    """A source as the bar names it: its last part, so the bar fits a line."""
    return os.path.basename(source.rstrip(os.sep)) or source


@main.command()
@click.option(
    "--store",
    default=None,
    metavar="PATH",
    help="The demo's own store, emptied first (never one holding records the demo did not "
    "write). Default: <INFEROBS_STORE_PATH>/demo.",
)
@click.option(
    "--minutes",
    type=Finite(min=0, min_open=True, max=MAX_MINUTES),
    default=24 * 60.0,
    show_default=True,
    help="Simulated minutes of traffic.",
)
@click.option(
    "--bursts-per-hour",
    type=Finite(min=0, min_open=True, max=MAX_BURSTS_PER_HOUR),
    default=15.0,
    show_default=True,
    help="Mean rate of request bursts.",
)
@click.option(
    "--keep-alive",
    "keep_alive",
    type=Finite(min=0, max=MAX_KEEP_ALIVE_MINUTES),
    default=10.0,
    show_default=True,
    help="Minutes an idle environment is kept before it is reclaimed.",
)
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True
)
@click.pass_context
def demo(
    ctx: click.Context,
    *,
    store: str | None,
    minutes: float,
    bursts_per_hour: float,
    keep_alive: float,
    output_format: str,
) -> None:
    """Serve a real model for a simulated day, then report on it."""
    path = store or os.path.join(_default_source(), "demo")
    try:
        result = run_demo(
            path,
            minutes=minutes,
            bursts_per_hour=bursts_per_hour,
            keep_alive_minutes=keep_alive,
            progress=lambda line: click.echo(line, err=True),
        )
    except OutOfRange as exc:  # options each in range, too much traffic together
        raise click.UsageError(str(exc), ctx) from None
    except ValueError as exc:  # a store not the demo's; ConfigError for INFEROBS_* variables
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or path}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"{path}: not a usable store ({exc})") from None
    click.echo(
        f"{result.invocations} requests, {result.environments} execution environments, "
        f"{result.cold_starts} cold starts, {result.errors} malformed requests; "
        f"records in {path}\n",
        err=True,
    )
    _demo_report(path, output_format)


def _demo_report(path: str, output_format: str) -> None:
    """The demo's answer: the operations report, what it would cost each way, and drift.

    The cost section asks for at most 1% cold starts, so it shows the trade-off
    (docs/costs.md); the drift section judges the demo's day by the shipped
    rules against the baseline it built. JSON output is one document holding
    all three. An alert is the demo's point, not a failure: it exits 0.
    """
    import json

    from .analyze.cost_render import write_costs
    from .analyze.drift_render import write_drift
    from .analyze.render import render_report

    drift = DriftRequest(
        baseline=os.path.join(path, BASELINE_FILE), period="1h", rules=None, sources=[path]
    )
    reading = _read([path], None, None, drift.baseline)
    sections = _operations(reading)
    answer = CostRequest(max_cold_start_rate=DEMO_MAX_COLD_START_RATE).answer(reading, None)
    drifted = drift.answer(reading, None)
    if output_format == "json":
        document: dict[str, Any] = {s.title.lower(): s.data for s in sections}
        document.update(costs=answer, drift=drifted)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    render_report(sections, output_format, sys.stdout)
    write_costs(answer, output_format, sys.stdout)
    write_drift(drifted, output_format, sys.stdout)


@main.command()
@click.option(
    "--source",
    default=None,
    metavar="PATH",
    help="The store to follow. Default: INFEROBS_STORE_PATH (.inferobs).",
)
@click.option(
    "-n",
    "--lines",
    "last",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many recent records to show first.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep printing new records as they arrive.",
)
@click.option(
    "--interval",
    type=Finite(min=0, min_open=True, max=3600),
    default=0.5,
    show_default=True,
    help="Seconds between polls.",
)
def tail(source: str | None, last: int, follow: bool, interval: float) -> None:
    """Show recent records from the store, then follow new ones (Ctrl-C stops, exit 0)."""
    from rich.console import Console

    from .analyze.render import encodable
    from .read import ReadError, follow_store

    console = Console()

    def show(records: list[Invocation]) -> None:
        # one line a record, however long: a terminal wraps it for the eye, and
        # a pipe or file gets it whole (rich would fold it at 80 columns)
        for record in records:
            line = encodable(describe(record), console.encoding)
            console.print(line, highlight=False, soft_wrap=True)

    path = source or _default_source()
    try:
        # at least one row, to find the end; at most what SQLite can count
        records, row = follow_store(path, 0, last=min(max(last, 1), _SQLITE_MAX_INT))
        show(records[-last:] if last > 0 else [])
        while follow:
            time.sleep(interval)
            records, row = follow_store(path, row)
            show(records)
    except ReadError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:  # how a user stops following: not an error
        pass


def describe(record: Invocation) -> str:
    """One record as one readable line, with rich markup (the record's own text escaped).

    The line starts with the record's start time of day in UTC, marked ``Z``.
    """
    from rich.markup import escape

    from .read import function_of

    when = datetime.fromtimestamp(record.start / 1e9, tz=timezone.utc).strftime("%H:%M:%S.%f")
    status = (
        "[green]ok[/]"
        if record.status == "ok"
        else f"[red]{escape(record.error_type or 'error')}[/]"
    )
    if record.kind != "invocation":
        status = f"[yellow]{record.kind}[/] {status}"
    cold = f" [cyan]cold {record.init_ms or 0:.0f} ms init[/]" if record.cold_start else ""
    stages = escape(" ".join(f"{name}={ms:g}" for name, ms in record.stages.items()))
    model = escape("/".join(p for p in (record.model, record.model_version, record.variant) if p))
    return (
        f"{when[:-3]}Z {escape(function_of(record) or '-')} {model} {status} "
        f"{record.duration_ms:g} ms{cold} {stages}"
    ).rstrip()


main.add_command(pull)

if __name__ == "__main__":
    sys.exit(main())
