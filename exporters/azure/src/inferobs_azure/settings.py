"""The Azure exporter's settings: the connection string, where it runs, and the SDK's own traffic.

Standard library only: this runs when the exporter is made, on the first
invocation's path, long before the Azure SDK is imported (on the sending
thread, see `inferobs_azure.exporter`).

The connection string is checked here, by the rules the SDK's parser applies
(``key=value`` pairs; an ``InstrumentationKey`` that is a UUID; ``ikey``
authorization only), so a bad one is a configure-time error and not a fault on
every send. Messages name what is wrong, never the string: it is a secret.
"""

from __future__ import annotations

import os

from inferobs.config import ConfigError

__all__ = [
    "ENV_CONNECTION_STRING",
    "ENV_REQUESTS",
    "ENV_STATSBEAT",
    "SDK_OFF",
    "SITE",
    "Connection",
    "connection",
    "flag",
    "invocations_as_requests",
    "quiet_sdk",
    "region",
    "under_functions_host",
]

ENV_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
ENV_STATSBEAT = "INFEROBS_AZURE_STATSBEAT"  # "true": let the SDK send its statsbeat to Microsoft
ENV_REQUESTS = "INFEROBS_AZURE_REQUESTS"  # "true"/"false": invocations as requests or not
# Set by the Azure Functions host in every worker process; the second by App Service too
# (which Functions runs on): the app's name, the cloud role of the host's own telemetry.
WORKER_RUNTIME = "FUNCTIONS_WORKER_RUNTIME"
SITE = "WEBSITE_SITE_NAME"
REGION_VARIABLES = ("REGION_NAME", "AWS_REGION", "GOOGLE_CLOUD_REGION")

# The SDK's own traffic beside what inferobs sends, each turned off by its own variable
# (azure-monitor-opentelemetry-exporter 1.0.0b58, read when its exporters are made):
STATSBEAT = "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"  # usage telemetry to Microsoft
SDK_OFF = {
    # OneSettings: a thread polling settings.sdk.monitor.azure.com for remote configuration
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    # "customer SDK stats": counts of items sent and dropped, to the user's own resource
    # every 15 minutes from a thread of its own; a frozen function never sends them
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    # an extra `_OTELRESOURCE_` metric item with every trace export: one per invocation here
    "APPLICATIONINSIGHTS_OPENTELEMETRY_RESOURCE_METRIC_DISABLED": "true",
}
_UUID_GROUPS = (8, 4, 4, 4, 12)
_HEX = frozenset("0123456789abcdef")


class Connection:
    """A checked connection string: kept whole for the SDK, with the endpoint it names."""

    __slots__ = ("endpoint", "text")

    def __init__(self, text: str, endpoint: str) -> None:
        self.text = text
        self.endpoint = endpoint

    def __repr__(self) -> str:  # the string holds the instrumentation key: never shown
        return f"Connection(endpoint={self.endpoint!r})"


def connection(text: str | None) -> Connection:
    """The connection string given, else ``APPLICATIONINSIGHTS_CONNECTION_STRING``'s, checked.

    The SDK reads the variable too, even when given a string in code, so a
    malformed variable is refused here whichever is used.
    """
    from_env = os.environ.get(ENV_CONNECTION_STRING)
    if from_env:
        env_fields = _fields(from_env, ENV_CONNECTION_STRING)
    if text is None:
        if not from_env:
            raise ConfigError(
                f"azure: {ENV_CONNECTION_STRING} is not set (the Application Insights "
                "resource's connection string, from its Overview page)"
            )
        text, fields = from_env, env_fields
    else:
        fields = _fields(text, "azure connection_string")
    return Connection(text, fields.get("ingestionendpoint", "https://dc.services.visualstudio.com"))


def _fields(text: str, name: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in text.split(";"):
        key, equals, value = pair.partition("=")
        if not equals or "=" in value:
            raise ConfigError(f"{name}: expected Key=Value pairs separated by ';'")
        fields[key.lower()] = value
    if fields.get("authorization", "ikey").lower() != "ikey":
        raise ConfigError(
            f"{name}: Authorization may only be 'ikey' (Entra ID sign-in is set with "
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING)"
        )
    if not _is_uuid(fields.get("instrumentationkey", "")):
        raise ConfigError(f"{name}: InstrumentationKey must be a UUID (lower-case hex)")
    endpoint = fields.get("ingestionendpoint")
    if endpoint is not None:
        scheme, _, rest = endpoint.partition("://")
        if scheme not in ("http", "https") or not rest.strip("/"):
            raise ConfigError(f"{name}: IngestionEndpoint must be an http(s):// URL")
    return fields


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == list(_UUID_GROUPS) and set("".join(parts)) <= _HEX


def flag(name: str, value: bool | None) -> bool | None:
    """``value`` if given, else the variable ``name`` as true/false, else None (unset)."""
    if value is not None:
        return value
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name}={text!r}: expected true or false")


def under_functions_host() -> bool:
    return bool(os.environ.get(WORKER_RUNTIME))


def invocations_as_requests(chosen: bool | None) -> bool:
    """Whether each invocation is a request (a SERVER span) rather than an in-process
    dependency: not where the Functions host (or App Service's agent) already records
    each invocation as its request, which would count it twice; elsewhere yes, unless
    ``chosen`` says."""
    if chosen is not None:
        return chosen
    return not (under_functions_host() or os.environ.get(SITE))


def region() -> str | None:
    for name in REGION_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def quiet_sdk(statsbeat: bool) -> None:
    """Keep the SDK to what inferobs sends: its statsbeat only if asked for, the rest off.

    Process-wide environment variables, because that is where the SDK reads
    them, each time it makes an exporter; set before it makes any. One the
    user set already is theirs and is left as it is.
    """
    if not statsbeat:
        os.environ.setdefault(STATSBEAT, "true")
    for name, value in SDK_OFF.items():
        os.environ.setdefault(name, value)
