"""The ``OTEL_EXPORTER_OTLP_*`` variables this package reads itself, per signal.

The OpenTelemetry exporters read the endpoint, headers, compression,
certificates and ``insecure`` from the environment on their own; what is
read here is what decides which exporter to build and how long it may take:
the protocol, the timeout (in milliseconds, as the specification says; the
Python exporters read a bare number as seconds, so it is passed to them
converted) and the metrics temporality. A signal's own variable
(``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``) wins over the shared one.
"""

from __future__ import annotations

import os

from inferobs.config import ConfigError

__all__ = ["DEFAULT_TIMEOUT_MS", "PROTOCOLS", "Signal", "delta_temporality", "signal"]

PROTOCOLS = ("grpc", "http/protobuf")
# The specification's default transport.
DEFAULT_PROTOCOL = "http/protobuf"
# Not the libraries' 10 s: a black hole holds the sending thread this long, and
# records wait in the queue meanwhile.
DEFAULT_TIMEOUT_MS = 1000.0
TEMPORALITY = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"


class Signal:
    """How one signal (``traces`` or ``metrics``) is sent."""

    __slots__ = ("protocol", "timeout_s")

    def __init__(self, protocol: str, timeout_s: float) -> None:
        self.protocol = protocol
        self.timeout_s = timeout_s


def signal(name: str, protocol: str | None = None, timeout_ms: float | None = None) -> Signal:
    """The settings of ``traces`` or ``metrics``: arguments first, then the environment.

    A value that is not one the specification allows is a `ConfigError` naming
    the variable.
    """
    if protocol is None:
        variable, protocol = _read(name, "PROTOCOL")
    else:
        variable = "protocol"
    protocol = (protocol or DEFAULT_PROTOCOL).strip().lower()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{variable}={protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if timeout_ms is None:
        variable, text = _read(name, "TIMEOUT")
        try:
            timeout_ms = float(text) if text else DEFAULT_TIMEOUT_MS
        except ValueError:
            raise ConfigError(f"{variable}={text!r}: expected milliseconds") from None
    else:
        variable = "timeout_ms"
    if not 0 < timeout_ms < float("inf"):
        raise ConfigError(f"{variable}={timeout_ms!r}: expected a positive number of milliseconds")
    return Signal(protocol, timeout_ms / 1000)


def delta_temporality(temporality: str | None = None) -> bool:
    """Whether sums and histograms are sent as deltas (``delta``, ``lowmemory``) rather
    than per-process totals (``cumulative``, the specification's default)."""
    variable = "temporality"
    if temporality is None:
        variable, temporality = TEMPORALITY, os.environ.get(TEMPORALITY, "")
    value = (temporality or "cumulative").strip().lower()
    if value not in ("cumulative", "delta", "lowmemory"):
        raise ConfigError(f"{variable}={temporality!r}: expected cumulative, delta or lowmemory")
    return value != "cumulative"


def _read(signal_name: str, setting: str) -> tuple[str, str]:
    """The signal's own variable if set, else the shared one: (its name, its value)."""
    own = f"OTEL_EXPORTER_OTLP_{signal_name.upper()}_{setting}"
    value = os.environ.get(own)
    if value:
        return own, value
    shared = f"OTEL_EXPORTER_OTLP_{setting}"
    return shared, os.environ.get(shared, "")
