"""`obs pull aws|gcp|azure`: a function's invocation data from its cloud into the store.

Kept apart from `inferobs.cli` so that module stays the commands' shape; the
pulls themselves are `inferobs.pull`. ``obs report --source aws:NAME`` pulls
through `pull_source` before it reads the store.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

    from .pull import Feed, Progress, Summary
    from .pull.landing import Counts

__all__ = ["CLOUD_PREFIXES", "pull", "pull_source"]

CLOUDS = ("aws", "gcp", "azure")
CLOUD_PREFIXES = tuple(
    f"{cloud}:" for cloud in CLOUDS
)  # --source values that name a cloud function, not a path
DEFAULT_SINCE = "14d"


@click.group()
def pull() -> None:
    """Pull a function's invocation data from its cloud into the store.

    Our records, the platform's per-invocation reports, its metric series and
    the function's configuration, so that `obs report --costs` and `--drift`
    run offline on them; the next pull fetches only what is new.
    """


def _window_options(command: Any) -> Any:
    options = [
        click.option("--function", required=True, metavar="NAME", help="The function to pull."),
        click.option(
            "--since",
            default=DEFAULT_SINCE,
            show_default=True,
            metavar="WHEN",
            help="From then on: 30m, 2h, 7d, or ISO time (what is already stored is not "
            "fetched again).",
        ),
        click.option("--until", metavar="WHEN", help="Up to then (default: now)."),
        click.option(
            "--store",
            metavar="PATH",
            help="The store to pull into. Default: INFEROBS_STORE_PATH (.inferobs).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@pull.command("aws")
@_window_options
@click.option("--region", help="The function's region (default: the AWS config's).")
@click.option("--profile", help="A named profile of the AWS config files.")
@click.option(
    "--log-group",
    metavar="NAME",
    help="Default: the function's configured log group, else /aws/lambda/NAME.",
)
def aws(
    *,
    function: str,
    since: str,
    until: str | None,
    store: str | None,
    region: str | None,
    profile: str | None,
    log_group: str | None,
) -> None:
    """AWS Lambda: CloudWatch Logs and metrics, and the function's configuration."""
    since_ns, until_ns = _window(since, until)
    path = store or _store()
    summary = _pulled(
        "aws",
        function,
        path,
        (since_ns, until_ns),
        region=region,
        profile=profile,
        log_group=log_group,
    )
    _say(summary, function, path)


@pull.command("gcp")
@_window_options
@click.option(
    "--project",
    help="The Google Cloud project (default: GOOGLE_CLOUD_PROJECT, else the credentials').",
)
def gcp(
    *, function: str, since: str, until: str | None, store: str | None, project: str | None
) -> None:
    """Cloud Run services and functions: Cloud Logging and Cloud Monitoring."""
    since_ns, until_ns = _window(since, until)
    path = store or _store()
    summary = _pulled("gcp", function, path, (since_ns, until_ns), project=project)
    _say(summary, function, path)


@pull.command("azure")
@_window_options
@click.option(
    "--workspace",
    required=True,
    metavar="ID",
    help="The Log Analytics workspace (its ID) of the app's Application Insights.",
)
@click.option(
    "--resource-id",
    metavar="ID",
    help="The function app's resource ID, for its platform metrics "
    "(/subscriptions/.../providers/Microsoft.Web/sites/NAME).",
)
@click.option("--region", metavar="LOCATION", help="The function app's location (eastus, ...).")
def azure(
    *,
    function: str,
    since: str,
    until: str | None,
    store: str | None,
    workspace: str,
    resource_id: str | None,
    region: str | None,
) -> None:
    """Azure Functions: Log Analytics and the function app's platform metrics."""
    since_ns, until_ns = _window(since, until)
    path = store or _store()
    options = {"workspace": workspace, "resource_id": resource_id, "region": region}
    summary = _pulled("azure", function, path, (since_ns, until_ns), **options)
    _say(summary, function, path)


def pull_source(source: str, since_ns: int | None, until_ns: int | None) -> tuple[str, str]:
    """Pull the function a ``--source`` such as ``aws:NAME`` names into the default store
    (from ``since_ns``, else the last 14 days); its store path and function name."""
    from .cli import parse_since

    provider, _, function = source.partition(":")
    options: dict[str, Any] = {}
    if provider == "azure":  # Log Analytics needs its workspace: azure:APP@WORKSPACE
        function, _, options["workspace"] = function.partition("@")
    if not function or options.get("workspace") == "":
        raise click.BadParameter(
            f"{source!r}: name the function, as aws:NAME, gcp:NAME or azure:APP@WORKSPACE",
            param_hint="'--source'",
        )
    now = time.time_ns()
    low = since_ns if since_ns is not None else parse_since(DEFAULT_SINCE, now)
    path = _store()
    summary = _pulled(provider, function, path, (low, until_ns or now), **options)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    return path, summary.function or function


def _pulled(
    provider: str, function: str, store: str, window: tuple[int, int], **options: Any
) -> Summary:
    """The pull, its errors as click's, with a progress bar on a terminal."""
    from .pull import PullError, Summary

    summary = Summary()
    try:
        with _progress(sys.stderr) as progress:
            if provider not in CLOUDS:
                raise click.BadParameter(
                    f"{provider!r}: no such cloud ({', '.join(CLOUDS)})", param_hint="'--source'"
                )
            cloud = importlib.import_module(f"inferobs.pull.{provider}")
            cloud.pull(function, store, *window, progress=progress, summary=summary, **options)
    except PullError as exc:
        for warning in summary.warnings:
            click.echo(f"warning: {warning}", err=True)
        raise click.ClickException(str(exc)) from None
    return summary


def _window(since: str, until: str | None) -> tuple[int, int]:
    from .cli import parse_since

    now = time.time_ns()
    try:
        since_ns = parse_since(since, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None
    if since_ns >= now:
        raise click.BadParameter(f"{since!r} is in the future", param_hint="'--since'")
    try:
        until_ns = now if until is None else parse_since(until, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--until'") from None
    if until_ns <= since_ns:
        raise click.BadParameter("must be after --since", param_hint="'--until'")
    return since_ns, min(until_ns, now)


def _store() -> str:
    from .cli import _default_source

    return _default_source()


def _say(summary: Summary, function: str, store: str) -> None:
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"pulled {summary.function or function} into {store}")
    for title, counts in summary.feeds.items():
        if title in summary.point_feeds:
            click.echo(f"  {title}: {counts.metric_points:,} metric points")
            continue
        again = f" ({counts.skipped:,} already stored)" if counts.skipped else ""
        aside = f", {counts.set_aside:,} unreadable lines set aside" if counts.set_aside else ""
        click.echo(
            f"  {title}: {counts.events:,} log events, {counts.records:,} records{again}, "
            f"{counts.windows:,} drift windows, {counts.reports:,} platform reports{aside}"
        )
    if summary.config:
        click.echo(f"  configuration: {summary.config}")
    if summary.marks:
        mark = min(summary.marks.values())
        when = datetime.fromtimestamp(mark / 1e9, tz=timezone.utc).isoformat(timespec="seconds")
        click.echo(f"  read whole up to {when.replace('+00:00', 'Z')}")


@contextlib.contextmanager
def _progress(stream: TextIO) -> Iterator[Progress | None]:
    """A transient progress bar on ``stream`` when it is a terminal; nothing on a pipe."""
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=stream, force_terminal=True),
        transient=True,
    )
    task = bar.add_task("pulling", total=None)

    def step(feed: Feed, counts: Counts, done: int, total: int) -> None:
        what = (
            f"{counts.records:,} records, {counts.reports:,} reports"
            if feed.holds_records
            else f"{counts.metric_points:,} points"
        )
        bar.update(task, completed=done, total=total, description=f"{feed.title}: {what}")
        bar.refresh()  # a short pull ends before the next tick: show each page as it lands

    with bar:
        yield step
