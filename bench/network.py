"""The network exporters' budgets, side by side with OpenTelemetry's Lambda instrumentation.

    .venv/bin/python bench/network.py [--quick] [--rounds N] [--warm-rounds N]

For each backend (OTLP over gRPC and HTTP, Google Cloud Monitoring, Azure
Application Insights): the import time of the exporter package and of the
backend libraries it loads, the cold-start tax (import of a handler configured
with that exporter plus its first invocation, less the bare handler's) and the
warm overhead per invocation (the three-stage handler against the bare one),
every exporter sending to a live receiver on 127.0.0.1 in this process: the
tests' own receivers, built on the official protocol definitions. The anchor
for OTLP is OpenTelemetry's Lambda instrumentation (bench/network_handlers/
otel_lambda.py) sending to the same receivers, traces only as its
documentation sets it up (otel-lambda), and with the same handler's metrics
exported too (otel-lambda+metrics: as inferobs sends, two requests per
invocation); GCP and Azure have no lightweight official equivalent, so their
anchor is the bare handler alone.
Then the fault runs: the OTLP endpoint a closed port, then a black hole (a
listener that accepts and never answers), each invocation timed.

Everything runs in one throwaway virtual environment (bench/.venv-otel) with
the OpenTelemetry libraries (1.45.1 / 0.66b1: the newest the instrumentation
has, the nearest to the development environment's 1.45.2), the Lambda
instrumentation, the GCP and Azure clients, the Lambda runtime client and
numpy; inferobs and its exporters run from their source trees. Handlers are
called in-process with a LambdaContext and the Lambda variables bench/run.py
sets, so inferobs's flush deadline (50 ms by default) applies. Variants are
interleaved in a new random order each round; figures are medians, taxes and
overheads medians of the per-round differences from the bare handler.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from run import LAMBDA_ENV, Variant, ratio

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # the tests package, whose receivers are used here

from tests.test_azure_exporter import Receiver as AppInsights  # noqa: E402
from tests.test_azure_exporter import connection_string  # noqa: E402
from tests.test_gcp_exporter import PROJECT, Monitoring  # noqa: E402
from tests.test_otlp_exporter import Receiver, serve_grpc, serve_http  # noqa: E402

T = TypeVar("T")
ENV_DIR = os.path.join(HERE, ".venv-otel")
HANDLERS = os.path.join(HERE, "network_handlers")
MEASURE = os.path.join(HANDLERS, "measure.py")
SOURCES = [os.path.join(ROOT, "src")] + [
    os.path.join(ROOT, "exporters", name, "src") for name in ("otlp", "gcp", "azure")
]
OTEL, INSTRUMENTATION = "1.45.1", "0.66b1"
PACKAGES = [
    f"opentelemetry-sdk=={OTEL}",
    f"opentelemetry-exporter-otlp=={OTEL}",
    f"opentelemetry-instrumentation-aws-lambda=={INSTRUMENTATION}",
    "awslambdaric==4.2.2",
    "numpy==2.4.6",
    "google-cloud-monitoring==2.32.0",
    "azure-monitor-opentelemetry-exporter==1.0.0b58",
]
PROTOCOLS = {"grpc": "grpc", "http": "http/protobuf"}


def libraries(protocol: str, *sdk: str) -> str:
    """``sdk``'s modules and the protocol's two OpenTelemetry OTLP exporters."""
    exporters = (
        f"opentelemetry.exporter.otlp.proto.{protocol}.{s}_exporter" for s in ("trace", "metric")
    )
    return ",".join([*sdk, *exporters])


# what making inferobs's OTLP exporter imports, and what the anchor's module does (otel_lambda.py)
OTLP_SDK = ("opentelemetry.sdk.resources", "opentelemetry.sdk.trace")
ANCHOR_SDK = (
    "opentelemetry.sdk.metrics",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
)
# label -> (the package's import, the backend libraries it loads when it is made or first sends)
IMPORTS = {
    "otlp grpc": ("inferobs_otlp", libraries("grpc", *OTLP_SDK)),
    "otlp http": ("inferobs_otlp", libraries("http", *OTLP_SDK)),
    "gcp": ("inferobs_gcp", "inferobs_gcp.wire"),
    "azure": ("inferobs_azure", "inferobs_azure.otel,azure.monitor.opentelemetry.exporter"),
    **{
        f"otel-lambda {p}": ("opentelemetry.instrumentation.aws_lambda", libraries(p, *ANCHOR_SDK))
        for p in ("grpc", "http")
    },
}
# (ours, its anchor, the anchor's row of IMPORTS, the budget for ours over the anchor's
# warm overhead)
BUDGETS = [
    ("otlp grpc", "otel-lambda grpc", "otel-lambda grpc", 0.2),
    ("otlp grpc", "otel-lambda+metrics grpc", "otel-lambda grpc", 0.2),
    ("otlp http", "otel-lambda http", "otel-lambda http", 0.2),
    ("otlp http", "otel-lambda+metrics http", "otel-lambda http", 0.2),
    ("gcp", None, None, None),
    ("azure", None, None, None),
]


def python() -> str:
    """bench/.venv-otel's interpreter, with PACKAGES installed and our sources compiled."""
    exe = os.path.join(ENV_DIR, "bin", "python")
    if not os.path.exists(exe):
        venv.create(ENV_DIR, with_pip=True)
    # every package is pinned: once they are there, pip checks and downloads nothing
    subprocess.run([exe, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    # an installed package arrives compiled: so must ours, or cold figures count compiling
    subprocess.run(
        [exe, "-m", "compileall", "-q", *SOURCES, os.path.join(HERE, "handlers"), HANDLERS],
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    return exe


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts every connection and never reads or answers."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            self._held.append(self._listener.accept()[0])


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Receivers:
    """The live receivers every variant sends to, and how many requests each has taken."""

    grpc: Receiver
    http: Receiver
    monitoring: Monitoring
    insights: AppInsights
    stops: list[Callable[[], None]]  # held: the gRPC server stops when it is collected

    @classmethod
    def start(cls) -> Receivers:
        grpc, http = Receiver(), Receiver()
        stops = [serve_grpc(grpc), serve_http(http)]
        return cls(grpc, http, Monitoring(), AppInsights(), stops)

    def taken(self) -> int:
        """Requests (or Application Insights envelopes) received so far, all receivers."""
        otlp = sum(len(r.traces) + len(r.metrics) for r in (self.grpc, self.http))
        return otlp + len(self.monitoring.requests) + len(self.insights.envelopes)

    def otlp(self, protocol: str) -> str:
        return (self.grpc if protocol == "grpc" else self.http).endpoint


def otlp_env(protocol: str, endpoint: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": PROTOCOLS[protocol],
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }


def ours(protocol: str, endpoint: str) -> Variant:
    return Variant("with_inferobs", {"INFEROBS_EXPORTERS": "otlp", **otlp_env(protocol, endpoint)})


def anchor(protocol: str, endpoint: str, *, with_metrics: bool = False) -> Variant:
    env = {"_HANDLER": "otel_lambda.handler", **otlp_env(protocol, endpoint)}
    if with_metrics:
        env["BENCH_OTEL_METRICS"] = "1"
    return Variant("otel_lambda", env)


def variants(receivers: Receivers) -> dict[str, Variant]:
    out = {"bare": Variant("bare", baseline=None)}
    for protocol in PROTOCOLS:
        out[f"otlp {protocol}"] = ours(protocol, receivers.otlp(protocol))
    out["gcp"] = Variant(
        "with_gcp",
        {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "BENCH_MONITORING_ADDRESS": f"127.0.0.1:{receivers.monitoring.port}",
        },
    )
    out["azure"] = Variant(
        "with_inferobs",
        {
            "INFEROBS_EXPORTERS": "azure",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string(receivers.insights.port),
        },
    )
    for protocol in PROTOCOLS:
        out[f"otel-lambda {protocol}"] = anchor(protocol, receivers.otlp(protocol))
        out[f"otel-lambda+metrics {protocol}"] = anchor(
            protocol, receivers.otlp(protocol), with_metrics=True
        )
    return out


def environment(variant: Variant) -> dict[str, str]:
    """This machine's environment without any observability settings, as on Lambda."""
    prefixes = ("INFEROBS_", "AWS_", "OTEL_", "APPLICATIONINSIGHTS_", "GOOGLE_", "_HANDLER")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(LAMBDA_ENV)
    env["PYTHONPATH"] = os.pathsep.join([*SOURCES, os.path.join(HERE, "handlers"), HANDLERS, HERE])
    env.update(variant.env)
    return env


@dataclass
class Bench:
    exe: str
    receivers: Receivers
    variants: dict[str, Variant]
    requests: dict[str, list[float]]  # per variant: requests received per warm call, each probe

    def run(self, variant: Variant, *args: str) -> Any:
        """The JSON line a measurement printed last on stderr."""
        done = subprocess.run(
            [self.exe, *args],
            env=environment(variant),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        return json.loads(done.stderr.strip().splitlines()[-1])

    def cold(self, name: str) -> float:
        variant = self.variants[name]
        probe = os.path.join(HERE, "probe.py")
        return float(self.run(variant, probe, "cold", variant.module)["ms"])

    def warm(self, name: str, calls: int) -> tuple[float, float, float]:
        before = self.receivers.taken()
        result = self.run(
            self.variants[name], MEASURE, "warm", self.variants[name].module, str(calls)
        )
        time.sleep(0.05)  # the last answers' bookkeeping in the receivers
        self.requests[name].append((self.receivers.taken() - before) / result["calls"])
        return float(result["median_us"]), float(result["mean_us"]), float(result["cpu_us"])

    def imports(self, label: str) -> list[float]:
        package, libraries = IMPORTS[label]
        groups = (
            f"inferobs;{package};{libraries}"
            if package.startswith("inferobs")
            else f"{libraries};{package}"
        )
        return self.run(self.variants["bare"], MEASURE, "imports", groups)["ms"]  # type: ignore[no-any-return]

    def calls(self, variant: Variant, count: int) -> list[float]:
        return self.run(variant, MEASURE, "calls", variant.module, str(count))["ms"]  # type: ignore[no-any-return]


def interleaved(rounds: int, names: list[str], measure: Callable[[str], T]) -> dict[str, list[T]]:
    """``measure(name)`` for every name, ``rounds`` times, in a new random order each round."""
    out: dict[str, list[T]] = {n: [] for n in names}
    for _ in range(rounds):
        order = list(names)
        random.shuffle(order)
        for name in order:
            out[name].append(measure(name))
    return out


def paired(samples: list[float], base: list[float]) -> float:
    """The median of the per-round differences (same round, same machine state)."""
    return statistics.median(a - b for a, b in zip(samples, base, strict=True))


def print_imports(samples: dict[str, list[list[float]]]) -> dict[str, tuple[float, float]]:
    """Medians of each import group; returns (package, libraries) per label."""
    print(
        "| backend | import inferobs (ms) | import the package (ms) | its backend libraries (ms) |"
        "\n|---|---|---|---|"
    )
    out = {}
    for label, runs in samples.items():
        columns = [statistics.median(group) for group in zip(*runs, strict=True)]
        if IMPORTS[label][0].startswith("inferobs"):
            core, package, libraries = columns
            out[label] = (package, libraries)
            print(f"| {label} | {core:.1f} | {package:.1f} | {libraries:.1f} |")
        else:
            libraries, package = columns
            out[label] = (package, libraries)
            print(f"| {label} | - | {package:.1f} (the instrumentation) | {libraries:.1f} |")
    print(
        "\nEach row one fresh process, the groups imported in order (the anchor's libraries "
        "first): a figure is what that group adds to what came before."
    )
    return out


def print_budgets(
    names: list[str],
    cold: dict[str, list[float]],
    warm: dict[str, list[tuple[float, float, float]]],
    imports: dict[str, tuple[float, float]],
    requests: dict[str, list[float]],
) -> None:
    median, mean, cpu = ({n: [w[i] for w in warm[n]] for n in names} for i in range(3))
    tax = {n: paired(cold[n], cold["bare"]) for n in names}
    over = {n: paired(median[n], median["bare"]) for n in names}
    over_mean = {n: paired(mean[n], mean["bare"]) for n in names}
    over_cpu = {n: paired(cpu[n], cpu["bare"]) for n in names}
    print(
        "\n| variant | cold: import + first call (ms) | cold-start tax (ms) "
        "| warm per call, median (µs) | warm overhead, median (µs) | warm overhead, mean (µs) "
        "| CPU overhead per call, all threads (µs) | receiver requests per call |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    for n in names:
        rate = statistics.median(requests[n]) if requests[n] else 0.0
        print(
            f"| {n} | {statistics.median(cold[n]):.1f} | {tax[n]:.1f} | "
            f"{statistics.median(median[n]):.1f} | {over[n]:.1f} | {over_mean[n]:.1f} "
            f"| {over_cpu[n]:.1f} | {rate:.2f} |"
        )
    print(
        "\nreceiver requests per call: OTLP export requests (traces and metrics each count one), "
        "CreateTimeSeries calls, Application Insights envelopes, per warm call."
    )
    print(
        "\n| ours / anchor | import: package | import: backend libraries | cold-start tax "
        "| warm overhead (median) | warm overhead (mean) | CPU overhead | budget (warm overhead) "
        "|\n|---|---|---|---|---|---|---|---|"
    )
    for ours_name, anchor_name, anchor_imports, budget in BUDGETS:
        if anchor_name is None or anchor_imports is None or budget is None:
            print(
                f"| {ours_name} / bare (no lightweight official equivalent offline) | - | - | "
                f"{tax[ours_name]:.1f} ms | {over[ours_name]:.1f} µs "
                f"| {over_mean[ours_name]:.1f} µs "
                f"| {over_cpu[ours_name]:.1f} µs | - |"
            )
            continue
        verdict = "met" if over[ours_name] <= budget * over[anchor_name] else "NOT met"
        print(
            f"| {ours_name} / {anchor_name} "
            f"| {ratio(imports[ours_name][0], imports[anchor_imports][0])} "
            f"| {ratio(imports[ours_name][1], imports[anchor_imports][1])} "
            f"| {ratio(tax[ours_name], tax[anchor_name])} "
            f"| {ratio(over[ours_name], over[anchor_name])} "
            f"| {ratio(over_mean[ours_name], over_mean[anchor_name])} "
            f"| {ratio(over_cpu[ours_name], over_cpu[anchor_name])} "
            f"| at most {budget} ({verdict}) |"
        )


RUNTIME_VARIANTS = [
    "bare",
    *(f"otlp {p}" for p in PROTOCOLS),
    *(f"otel-lambda {p}" for p in PROTOCOLS),
    *(f"otel-lambda+metrics {p}" for p in PROTOCOLS),
]


def under_runtime(bench: Bench, rounds: int, calls: int) -> None:
    """The OTLP variants run as Lambda runs them: what the caller waits for, and the work."""
    measured = interleaved(
        rounds,
        RUNTIME_VARIANTS,
        lambda n: bench.run(
            bench.variants[n], MEASURE, "runtime", bench.variants[n].module, str(calls)
        ),
    )
    answer = {n: [float(r["answer_us"]) for r in found] for n, found in measured.items()}
    work = {n: [float(r["work_us"]) for r in found] for n, found in measured.items()}
    print(
        f"\nUnder the runtime interface client and the loopback Runtime API ({rounds} rounds of "
        f"{calls} invocations 5 ms apart after 1 s of warm-up): the median time from the "
        "runtime receiving an invocation to its answer (what the caller waits for) and to the "
        "end of the invocation's work, extensions' included (what is billed; Lambda may freeze "
        "the environment only then), and each less the bare handler's (medians of the "
        "per-round differences).\n"
    )
    print("| variant | answer µs | added to the answer µs | work µs | added to the work µs |")
    print("|---|---|---|---|---|")
    added: dict[str, float] = {}
    for name in RUNTIME_VARIANTS:
        a, w = statistics.median(answer[name]), statistics.median(work[name])
        if name == "bare":
            print(f"| {name} | {a:,.0f} | - | {w:,.0f} | - |")
            continue
        added[name] = paired(answer[name], answer["bare"])
        more = paired(work[name], work["bare"])
        print(f"| {name} | {a:,.0f} | {added[name]:,.0f} | {w:,.0f} | {more:,.0f} |")
    for protocol in PROTOCOLS:
        ours_added = added[f"otlp {protocol}"]
        for anchor_name in (f"otel-lambda {protocol}", f"otel-lambda+metrics {protocol}"):
            print(
                f"- added to the answer, otlp {protocol} / {anchor_name}: "
                f"{ratio(ours_added, added[anchor_name])} (budget: at most 0.2)"
            )


def faults(bench: Bench, ours_calls: int, anchor_calls: int) -> None:
    """Per-invocation latency with the OTLP endpoint refusing connections, then a black hole."""
    hole = BlackHole()
    endpoints = {
        "refused (closed port)": f"http://127.0.0.1:{closed_port()}",
        "black hole (accepts, never answers)": f"http://127.0.0.1:{hole.port}",
    }
    print(
        "\n| collector | variant | calls | first call (ms) | later calls: median (ms) "
        "| later calls: max (ms) | bare median (ms) |\n|---|---|---|---|---|---|---|"
    )
    for fault, endpoint in endpoints.items():
        for protocol in PROTOCOLS:
            bare = bench.calls(bench.variants["bare"], ours_calls)
            for name, variant, count in (
                (f"inferobs otlp {protocol}", ours(protocol, endpoint), ours_calls),
                (f"otel-lambda {protocol}", anchor(protocol, endpoint), anchor_calls),
            ):
                ms = bench.calls(variant, count)
                later = ms[1:]
                print(
                    f"| {fault} | {name} | {count} | {ms[0]:.1f} | {statistics.median(later):.1f} "
                    f"| {max(later):.1f} | {statistics.median(bare[1:]):.3f} |"
                )
    print(
        "\nEach row one fresh process, the handler imported before the first timed call; "
        "the first call is shown apart from the later ones. inferobs with its defaults "
        "(flush deadline 50 ms, export timeout 1 s), the instrumentation with its own "
        "(export timeout 10 s, flush timeout 30 s)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds and calls")
    parser.add_argument("--rounds", type=int, help="fresh processes per variant, cold (default 10)")
    parser.add_argument("--warm-rounds", type=int, help="warm processes per variant (default 5)")
    parser.add_argument(
        "--runtime-only", action="store_true", help="only the OTLP runs under the Runtime API"
    )
    args = parser.parse_args()
    quick = args.quick
    rounds = args.rounds or (2 if quick else 10)
    warm_rounds = args.warm_rounds or (1 if quick else 5)
    calls = 50 if quick else 300
    started = time.monotonic()
    exe = python()
    receivers = Receivers.start()
    table = variants(receivers)
    names = list(table)
    bench = Bench(exe, receivers, table, {n: [] for n in names})
    if args.runtime_only:
        under_runtime(bench, warm_rounds, 50 if quick else 200)
        return
    imported = interleaved(rounds, list(IMPORTS), bench.imports)
    cold = interleaved(rounds, names, bench.cold)
    warm = interleaved(warm_rounds, names, lambda n: bench.warm(n, calls))
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, OpenTelemetry {OTEL} "
        f"(instrumentation {INSTRUMENTATION}); {rounds} import and cold rounds, {warm_rounds} warm "
        f"rounds of {calls} timed calls 5 ms apart after 1 s of warm-up; receivers on "
        "127.0.0.1 in the benchmark's process\n"
    )
    imports = print_imports(imported)
    print_budgets(names, cold, warm, imports, bench.requests)
    under_runtime(bench, warm_rounds, 50 if quick else 200)
    faults(bench, 10 if quick else 30, 2 if quick else 4)
    print(f"\ntotal: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
