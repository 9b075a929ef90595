"""AWS Lambda: its logs, metrics and configuration, through boto3 and its credential chain.

- **Logs** (CloudWatch Logs ``FilterLogEvents``, page by page): our JSON lines,
  and Lambda's REPORT lines in the text and the JSON log format, from the
  function's log group (its ``LoggingConfig`` names it when it is not
  ``/aws/lambda/NAME``).
- **Metrics** (CloudWatch ``GetMetricData``): Lambda's per-function series, at
  the finest period CloudWatch still keeps for each stretch (1 minute for 15
  days, 5 minutes for 63, then an hour).
- **Configuration** (Lambda ``GetFunctionConfiguration`` and
  ``ListProvisionedConcurrencyConfigs``): memory, architecture, timeout and
  the provisioned concurrency in force. The function's environment variables
  are never read into the store: they are where users keep secrets.

Throttling is retried by botocore's ``standard`` mode (exponential backoff
with jitter, AWS's documented retry behaviour), up to ``AWS_MAX_ATTEMPTS``
attempts (10 unless set); ``AWS_RETRY_MODE`` may choose ``adaptive``. What
is shown of an AWS error is its code and our words, never its message, so no
credential or token can reach the terminal.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from . import Feed, Page, PullError, Summary, failing, open_store, run_feed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from . import Progress
    from .plan import Piece

__all__ = ["METRICS", "pull"]

DAY_NS = 86_400 * 1_000_000_000
# (metric, statistic): what a cost and capacity answer uses of Lambda's per-function metrics
METRICS: tuple[tuple[str, str], ...] = (
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("Duration", "Average"),
    ("Duration", "Maximum"),
    ("ConcurrentExecutions", "Maximum"),
    ("ProvisionedConcurrentExecutions", "Maximum"),
    ("ProvisionedConcurrencyUtilization", "Maximum"),
    ("ProvisionedConcurrencyInvocations", "Sum"),
    ("ProvisionedConcurrencySpilloverInvocations", "Sum"),
)
# CloudWatch keeps 1-minute points for 15 days and 5-minute points for 63 (then hours)
_RETENTION = ((15 * DAY_NS, 60), (63 * DAY_NS, 300))
_PAGE_EVENTS = 10_000  # FilterLogEvents' largest page
_REPORT = ("REPORT RequestId:", '"platform.report"')
# error codes that mean the credentials, not the request, were refused
_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "RequestExpired",
}
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
}


def pull(
    function: str,
    store: str,
    since_ns: int,
    until_ns: int,
    *,
    region: str | None = None,
    profile: str | None = None,
    log_group: str | None = None,
    progress: Progress | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Pull ``function``'s logs, metrics and configuration into the store at ``store``.

    Each page is committed as it comes, into ``summary`` (a new one if None), so a
    `PullError` part-way leaves what was fetched in the store and counted there; the
    next pull resumes from the last page kept.
    """
    summary = summary if summary is not None else Summary()
    function, qualifier, arn_region = _named(function)
    summary.function = function
    session = _session(region or arn_region, profile)
    region = session.region_name
    config = _client_config()
    landing = open_store(store)
    summary.expect("CloudWatch Logs", "CloudWatch metrics")
    try:
        with failing(summary, "AWS Lambda", _words):
            lambda_client = session.client("lambda", config=config)
            found = _configuration(lambda_client, function, qualifier, summary)
            if found is not None:
                landing.config(f"aws:{region}:{function}:config", **found, region=region)
                summary.config = (
                    f"{found['memory_mb']} MB, {found['arch']}, timeout {found['timeout_s']} s, "
                    f"provisioned concurrency {found['provisioned']}"
                )
        group = log_group or _log_group(found, function)
        with failing(summary, "CloudWatch Logs", _words):
            logs = _Logs(session.client("logs", config=config), group, function, region)
            run_feed(landing, logs, (since_ns, until_ns), summary, progress)
        with failing(summary, "CloudWatch", _words):
            metrics = _Metrics(session.client("cloudwatch", config=config), function, region)
            run_feed(landing, metrics, (since_ns, until_ns), summary, progress)
    finally:
        landing.close()
    return summary


class _Logs(Feed):
    title = "CloudWatch Logs"

    def __init__(self, client: Any, group: str, function: str, region: str) -> None:
        self.client = client
        self.group = group
        self.function = function
        self.source = f"aws:{region}:{function}:logs:{group}"  # another group: another place

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        from ..analyze.sources.lambda_report import parse
        from ..read import Problem

        low, high = piece
        asked: dict[str, Any] = {
            "logGroupName": self.group,
            "startTime": -(-low // 1_000_000),  # milliseconds, both ends inclusive
            "endTime": -(-high // 1_000_000) - 1,
            "limit": _PAGE_EVENTS,
        }
        again = False
        while True:
            if token is not None:
                asked["nextToken"] = token
            try:
                answer = self.client.filter_log_events(**asked)
            except Exception as exc:
                if _code(exc) == "ResourceNotFoundException":
                    raise PullError(
                        f"no log group {self.group} in this region: pass --log-group, or "
                        "--region for the function's region"
                    ) from None
                if token is not None and _code(exc) == "InvalidParameterException":
                    token = None  # a resumed page token that has expired: read the piece again
                    asked.pop("nextToken", None)
                    again = True
                    continue
                raise
            events = answer.get("events", [])
            lines = [str(event.get("message", "")) for event in events]
            problems: list[Problem] = []
            candidates = [(i, line) for i, line in enumerate(lines) if _is_report(line)]
            reports = parse(candidates, self.source, problems, self.function)
            for report in reports:
                end = report.pop("end")
                stamp = events[int(str(report["line"]))].get("timestamp")
                report["end_ns"] = end if end is not None else _ns(stamp)
            token = answer.get("nextToken") or None
            yield Page(token, again=again, lines=lines, reports=reports)
            again = False
            if token is None:
                return


class _Metrics(Feed):
    title = "CloudWatch metrics"
    piece_ns = 7 * DAY_NS
    holds_records = False

    def __init__(self, client: Any, function: str, region: str) -> None:
        self.client = client
        self.function = function
        self.source = f"aws:{region}:{function}:metrics"

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        low, high = piece
        period = _period(low)
        dimensions = [{"Name": "FunctionName", "Value": self.function}]
        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": name,
                        "Dimensions": dimensions,
                    },
                    "Period": period,
                    "Stat": statistic,
                },
                "ReturnData": True,
            }
            for index, (name, statistic) in enumerate(METRICS)
        ]
        asked: dict[str, Any] = {
            "MetricDataQueries": queries,
            # whole periods: CloudWatch rounds the start down and the end up to them
            "StartTime": _utc(low),
            "EndTime": _utc(high),
            "ScanBy": "TimestampAscending",
        }
        again = False
        while True:
            if token is not None:
                asked["NextToken"] = token
            try:
                answer = self.client.get_metric_data(**asked)
            except Exception as exc:
                # a kept token that no longer fits (it expired, or the period changed
                # as the piece aged): read the piece again, points replace themselves
                if token is not None and _code(exc) in (
                    "InvalidNextToken",
                    "InvalidParameterValue",
                ):
                    token, again = None, True
                    asked.pop("NextToken", None)
                    continue
                raise
            points = []
            for result in answer.get("MetricDataResults", []):
                name, statistic = METRICS[int(str(result["Id"])[1:])]
                for stamp, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=True
                ):
                    points.append((name, statistic, period, _ns(stamp), float(value)))
            token = answer.get("NextToken") or None
            yield Page(token, again=again, points=points)
            again = False
            if token is None:
                return


def _configuration(
    client: Any, function: str, qualifier: str | None, summary: Summary
) -> dict[str, Any] | None:
    """The function's memory, architecture, timeout and provisioned concurrency, as
    `Landing.config` takes them; None (and a warning) where Lambda would not say."""
    try:
        which = {"FunctionName": function, **({"Qualifier": qualifier} if qualifier else {})}
        found = client.get_function_configuration(**which)
    except Exception as exc:
        code = _code(exc)
        if code in _CREDENTIALS or code is None:
            raise
        why = {
            "ResourceNotFoundException": f"there is no function {function}"
            + (f" with the qualifier {qualifier}" if qualifier else "")
            + " in this region",
            "AccessDeniedException": "access denied (needs lambda:GetFunctionConfiguration)",
        }.get(code, code)
        summary.warnings.append(
            f"the function's configuration could not be read ({why}): a cost report prices "
            "the memory the records show, on demand"
        )
        return None
    configs: list[dict[str, Any]] = []
    try:
        asked: dict[str, Any] = {"FunctionName": function}
        while True:
            answer = client.list_provisioned_concurrency_configs(**asked)
            configs.extend(answer.get("ProvisionedConcurrencyConfigs", []))
            if not answer.get("NextMarker"):
                break
            asked["Marker"] = answer["NextMarker"]
    except Exception as exc:
        code = _code(exc)
        if code in _CREDENTIALS or code is None:
            raise
        summary.warnings.append(
            f"the provisioned concurrency could not be read ({code}): a cost report takes "
            "the function to run on demand"
        )
    provisioned = [
        {
            "qualifier": str(entry.get("FunctionArn", "")).rsplit(":", 1)[-1],
            "requested": entry.get("RequestedProvisionedConcurrentExecutions"),
            "allocated": entry.get("AllocatedProvisionedConcurrentExecutions"),
            "available": entry.get("AvailableProvisionedConcurrentExecutions"),
            "status": entry.get("Status"),
        }
        for entry in configs
    ]
    in_force = sum(int(p["allocated"] or 0) for p in provisioned if p["status"] != "FAILED")
    arches = found.get("Architectures") or ["x86_64"]
    details = {name: found[name] for name in _KEPT if name in found}
    details["ProvisionedConcurrency"] = provisioned
    return {
        "provider": "aws",
        "function": function,
        "memory_mb": found.get("MemorySize"),
        "arch": arches[0],
        "timeout_s": found.get("Timeout"),
        "provisioned": in_force,
        "details": details,
    }


# what of GetFunctionConfiguration is kept: never Environment (users' secrets live there)
_KEPT = (
    "FunctionName",
    "Runtime",
    "PackageType",
    "Handler",
    "MemorySize",
    "Timeout",
    "Architectures",
    "EphemeralStorage",
    "SnapStart",
    "LoggingConfig",
    "Version",
    "LastModified",
)


def _named(function: str) -> tuple[str, str | None, str | None]:
    """The function's name, its qualifier (alias or version) and its ARN's region, from
    what ``--function`` takes: a name, ``NAME:ALIAS``, or an ARN. Records, metrics and the
    configuration are the function's, under its bare name, whatever the qualifier."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7:
        return parts[6], (parts[7] if len(parts) > 7 else None), parts[3] or None
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], None
    return function, None, None


def _log_group(found: dict[str, Any] | None, function: str) -> str:
    if found is not None:
        group = found["details"].get("LoggingConfig", {}).get("LogGroup")
        if isinstance(group, str) and group:
            return group
    return f"/aws/lambda/{function}"


def _session(region: str | None, profile: str | None) -> Any:
    try:
        import boto3
    except ImportError:
        raise PullError("obs pull aws needs boto3: pip install 'inferobs[aws-pull]'") from None
    import botocore.exceptions

    try:
        # AWS_REGION as the AWS CLI reads it (botocore itself reads AWS_DEFAULT_REGION)
        region = region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise PullError(f"no AWS profile named {profile!r} in the AWS config files") from None
    if not session.region_name:
        raise PullError("no AWS region: pass --region, or set AWS_REGION (or the profile's region)")
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # a credential process, SSO, a role
        raise PullError(
            f"the AWS credentials could not be had ({type(exc).__name__}): check the profile "
            "or sign in again (aws sso login)"
        ) from None
    if credentials is None:
        raise PullError(
            "no AWS credentials found (environment, shared files, SSO, container or instance "
            "role): configure them as for the AWS CLI"
        )
    return session


def _client_config() -> Any:
    from botocore.config import Config

    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")
    mode = os.environ.get("AWS_RETRY_MODE", "standard")
    return Config(
        retries={
            "mode": mode if mode in ("standard", "adaptive") else "standard",
            "total_max_attempts": int(attempts) if attempts.isdigit() and int(attempts) else 10,
        },
        user_agent_appid="inferobs-pull",
    )


def _words(exc: Exception, service: str) -> str | None:
    """What an AWS error means for the user, by its code (never its message)."""
    import botocore.exceptions

    code = _code(exc)
    if code in _CREDENTIALS:
        return f"the AWS credentials were refused ({code}): refresh them and run again"
    if code in _THROTTLED:
        return f"{service} kept throttling ({code}) past the retries"
    if code == "AccessDeniedException":
        return f"access denied by {service} (check the IAM policy: docs/pull.md)"
    if code is not None:
        return f"{service} refused the request ({code})"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found: configure them as for the AWS CLI"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"could not reach {service} (network, or the endpoint URL)"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return f"{service} could not be read ({type(exc).__name__})"
    return None


def _code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _is_report(line: str) -> bool:
    return any(marker in line for marker in _REPORT)


def _period(low_ns: int) -> int:
    """The finest period CloudWatch still keeps for points from ``low_ns`` on."""
    age = time.time_ns() - low_ns
    for kept, period in _RETENTION:
        if age < kept:
            return period
    return 3600


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def _ns(stamp: object) -> int:
    """Unix epoch ns of a CloudWatch timestamp (epoch milliseconds, or a datetime)."""
    if isinstance(stamp, datetime):
        return int(stamp.timestamp() * 1_000_000) * 1000
    return int(str(stamp)) * 1_000_000
