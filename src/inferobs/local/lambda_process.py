"""A handler in its own process under the real Lambda runtime interface client.

`LocalLambda` starts `RuntimeAPI`, then ``python -m awslambdaric module.handler``
with the environment Lambda gives a function, and plays the platform's part:
it queues invocations, enforces the deadline by killing the process (as
Lambda does), and starts a fresh environment (a cold start) when the next
invocation finds none. What the function printed is kept line by line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from .runtime_api import Outcome, RuntimeAPI

__all__ = ["LocalLambda"]


class LocalLambda:
    """One function: its code, its configuration, and its current environment."""

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
    ) -> None:
        self.handler = handler
        self.code_dir = code_dir
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.init_type = init_type
        self.max_concurrency = max_concurrency
        self.extra_env = dict(env or {})
        self.api = RuntimeAPI(
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        ).start()
        self.process: subprocess.Popen[str] | None = None
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
        """Queue an invocation (starting an environment if there is none)."""
        request_id = self.api.submit(event, timeout_s=timeout_s or self.timeout_s)
        if not self.alive():
            self.start()
        return request_id

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Outcome:
        """Invoke and wait, as Lambda does: past the deadline the environment dies."""
        limit = timeout_s or self.timeout_s
        request_id = self.submit(event, timeout_s=limit)
        outcome = self.api.outcome(request_id, limit + 0.05)
        if outcome is None:
            self.kill()
            return Outcome(request_id, "error", b'{"errorType":"Sandbox.Timedout"}', "Timeout")
        return outcome

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        for reader in self._readers:
            reader.join(timeout=5)

    def records(self) -> list[dict[str, Any]]:
        """The inferobs records the function printed so far, in order."""
        out = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            if line.startswith("{") and '"event":"inferobs.invocation"' in line:
                out.append(json.loads(line))
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
