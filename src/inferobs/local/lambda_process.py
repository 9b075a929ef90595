"""A handler in its own process under the real Lambda runtime interface client.

`LocalLambda` starts `RuntimeAPI`, then ``python -m awslambdaric module.handler``
with the environment Lambda gives a function, and plays the platform's part:
it queues invocations, enforces the deadline by killing the process (as
Lambda does), and starts a fresh environment (a cold start) when the next
invocation finds none. What the function printed is kept line by line.

The timers follow Lambda's documented lifecycle ("Understanding the Lambda
execution environment lifecycle" in the AWS Lambda Developer Guide,
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):

- The function timeout limits the Invoke phase, which begins when the runtime
  receives the event (Lambda answers its ``GET /runtime/invocation/next``), so
  a cold start's init does not use up the timeout.
- The Init phase, from the process start until the runtime first asks for an
  event, has its own limit: 10 s on demand. When the init runs past it, Lambda
  retries it at the first invocation, under the function timeout. The runner
  does the same: it kills the process at the limit, starts a fresh one, and
  starts the invocation's clock then, so a re-run init longer than the timeout
  ends in a timeout (``Sandbox.Timedout``).
- Provisioned concurrency and SnapStart inits (and Lambda Managed Instances')
  may run up to 130 s or the function timeout, whichever is longer. On Lambda
  they happen ahead of demand; the runner has no pool, so it starts them on
  demand and treats one that outruns its limit as above.
- An init that fails (the code raises at import, the handler is missing) is
  posted by the runtime to ``/runtime/init/error`` before it exits. Lambda
  answers the waiting invocation with that error (``errorType`` such as
  ``Runtime.ImportModuleError``) and discards the environment; the next
  invocation starts a fresh one, whose init runs again. The runner does the
  same as soon as the error is posted. (Lambda may also re-run a failed
  init once inside the invocation before answering; a deterministic failure,
  which is what a local run finds, fails the same way twice.)

Settings Lambda would refuse (a timeout that is not a positive number, memory
outside 128 to 10,240 MB) are a ValueError naming them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from ..record import decode_json
from .runtime_api import Outcome, RuntimeAPI

__all__ = ["LocalLambda", "init_limit_s"]

ON_DEMAND_INIT_LIMIT_S = 10.0
AHEAD_OF_DEMAND_INIT_LIMIT_S = 130.0  # or the function timeout, if longer
MEMORY_MB = (128, 10_240)  # the memory sizes Lambda accepts, in MB


def _seconds(name: str, value: object) -> float:
    """``value`` as a number of seconds, or a ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}={value!r}: expected a finite number of seconds above 0")
    return float(value)


def init_limit_s(init_type: str, timeout_s: float) -> float:
    """How long Lambda lets an environment of ``init_type`` initialise."""
    if init_type == "on-demand":
        return ON_DEMAND_INIT_LIMIT_S
    return max(AHEAD_OF_DEMAND_INIT_LIMIT_S, timeout_s)


class LocalLambda:
    """One function: its code, its configuration, and its current environment.

    ``init_timeout_s`` is the Init phase's limit; by default Lambda's for the
    ``init_type`` (`init_limit_s`: 10 s on demand).
    """

    def __init__(
        self,
        handler: str,
        *,
        code_dir: str,
        function_name: str = "local-function",
        memory_mb: int = 1024,
        timeout_s: float = 3.0,
        init_type: str = "on-demand",
        max_concurrency: int | None = None,
        env: dict[str, str] | None = None,
        init_timeout_s: float | None = None,
    ) -> None:
        low, high = MEMORY_MB
        if (
            isinstance(memory_mb, bool)
            or not isinstance(memory_mb, int)
            or not low <= memory_mb <= high
        ):
            raise ValueError(
                f"memory_mb={memory_mb!r}: expected a whole number of MB from {low} to {high}"
            )
        self.handler = handler
        self.code_dir = code_dir
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.timeout_s = _seconds("timeout_s", timeout_s)
        self.init_type = init_type
        self.init_timeout_s = (
            init_limit_s(init_type, self.timeout_s)
            if init_timeout_s is None
            else _seconds("init_timeout_s", init_timeout_s)
        )
        self.max_concurrency = max_concurrency
        self.extra_env = dict(env or {})
        self.api = RuntimeAPI(
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        ).start()
        self.process: subprocess.Popen[str] | None = None
        self._started_at = 0.0  # time.monotonic() when the current environment started
        self.lines: list[str] = []
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> LocalLambda:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for a function's runtime process."""
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            AWS_LAMBDA_FUNCTION_NAME=self.function_name,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(self.memory_mb),
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{self.function_name}",
            AWS_LAMBDA_LOG_STREAM_NAME=stream,
            AWS_LAMBDA_INITIALIZATION_TYPE=self.init_type,
            # the managed runtime's name: awslambdaric waits for events on a thread (and the
            # main thread can take SIGTERM while idle) on python3.12 and later only
            AWS_EXECUTION_ENV=f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            AWS_REGION="us-east-1",
            LAMBDA_TASK_ROOT=self.code_dir,
            PYTHONUNBUFFERED="1",
        )
        if self.max_concurrency is not None:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start a new execution environment (the runtime process and its init)."""
        self.api.new_environment()
        self._started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", self.handler],
            cwd=self.code_dir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        reader.start()
        self._readers.append(reader)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def submit(self, event: Any, *, timeout_s: float | None = None) -> str:
        """Queue an invocation (starting an environment if there is none).

        Its deadline starts when the runtime receives it; only `invoke` enforces it.
        """
        limit = self.timeout_s if timeout_s is None else _seconds("timeout_s", timeout_s)
        request_id = self.api.submit(event, timeout_s=limit)
        if not self.alive():
            self.start()
        return request_id

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Outcome:
        """Invoke and wait, as Lambda does: past the deadline the environment dies.

        The timeout counts from when the runtime receives the event. An init
        that outruns ``init_timeout_s`` is killed and re-run within this
        invocation, whose clock then starts. An init that fails is this
        invocation's answer (the error the runtime posted), and its
        environment is gone: the next invocation starts a fresh one.
        """
        limit = self.timeout_s if timeout_s is None else _seconds("timeout_s", timeout_s)
        request_id = self.submit(event, timeout_s=limit)
        received, initialised = self.api.received(
            request_id, init_until=self._started_at + self.init_timeout_s, then_s=limit
        )
        if received is None and not initialised and not self.api.init_failed():
            # a suppressed init: killed at its limit, re-run within the invocation, now timed
            self.kill()
            self.api.start_clock(request_id)
            received = time.monotonic()
            self.start()
        # the runtime's answer by the deadline; an init error at once
        deadline = time.monotonic() if received is None else received + limit
        outcome = self.api.outcome(request_id, deadline - time.monotonic())
        if outcome is not None and self.api.was_received(request_id):
            return outcome
        # no answer in time, or an init that failed: this environment is done for,
        # and the request, if no runtime received it, is not for the next one
        self.kill()
        self.api.withdraw(request_id)
        return outcome or Outcome(
            request_id, "error", b'{"errorType":"Sandbox.Timedout"}', "Timeout"
        )

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        for reader in self._readers:
            reader.join(timeout=5)

    def records(self) -> list[dict[str, Any]]:
        """The inferobs records the function printed so far, in order."""
        out: list[dict[str, Any]] = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            # found anywhere on a line, as the reader does: outside Lambda the runtime
            # client writes a log record (a traceback, say) with no newline after it;
            # whole, as printed (an exporter's members, EMF's, included)
            at = line.find('{"schema"')
            while at >= 0 and '"event":"inferobs.invocation"' in line[at:]:
                try:
                    data, end, _ = decode_json(line, at)
                except ValueError:
                    break
                if isinstance(data, dict) and data.get("event") == "inferobs.invocation":
                    out.append(data)
                at = line.find('{"schema"', end)
        return out

    def wait_for_records(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The records, once at least ``count`` arrived (or the time is up)."""
        end = time.monotonic() + timeout_s
        while True:
            records = self.records()
            if len(records) >= count or time.monotonic() > end:
                return records
            time.sleep(0.01)

    def close(self) -> None:
        self.kill()
        self.api.stop()
