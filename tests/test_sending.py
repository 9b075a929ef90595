"""Network exporters send before the handler returns, and a bad backend never holds it long."""

from __future__ import annotations

import threading
import time
from typing import Any

import inferobs as obs
from inferobs.context import faults_seen
from inferobs.export.sending import BatchSender

from .helpers import Context

SHORT = 0.05  # seconds a flush may wait in these tests


class Backend:
    """Takes batches; can be made to hang (a black hole) or to refuse."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.release = threading.Event()
        self.release.set()
        self.refuse = False

    def send(self, batch: list[Any]) -> None:
        self.release.wait()
        if self.refuse:
            raise ConnectionRefusedError("refused")
        self.batches.append(batch)

    @property
    def items(self) -> list[Any]:
        return [item for batch in self.batches for item in batch]


def drained(sender: BatchSender) -> None:
    """Flush until the sender has caught up (a flush does not wait while the batch that
    outran an earlier deadline is still in flight)."""
    end = time.monotonic() + 10
    while not sender.flush_by(time.monotonic() + 0.5):
        assert time.monotonic() < end, "the sender never caught up"
        time.sleep(0.01)


def test_a_flush_returns_once_everything_queued_is_sent() -> None:
    backend = Backend()
    sender = BatchSender(backend.send, name="test", max_batch=3)
    for n in range(7):
        sender.add(n)
    assert sender.flush_by(time.monotonic() + 5)
    assert backend.items == list(range(7))
    assert [len(b) for b in backend.batches] == [3, 3, 1]


def test_a_black_hole_costs_one_deadline_then_none_and_keeps_what_it_can() -> None:
    backend = Backend()
    backend.release.clear()  # accepts, never answers
    sender = BatchSender(backend.send, name="test", max_buffered=4, max_batch=2)
    sender.extend([1, 2])
    start = time.monotonic()
    assert not sender.flush_by(start + SHORT)
    waited = time.monotonic() - start
    assert waited >= SHORT  # it did wait for the deadline...
    sender.extend([3, 4, 5, 6, 7])  # more than the buffer holds
    again = time.monotonic()
    assert not sender.flush_by(again + 10)  # ...but not again while the batch hangs
    assert time.monotonic() - again < 5
    assert sender.take_dropped() == 1  # 3 went to make room; 4 to 7 wait
    backend.release.set()  # the backend answers at last
    drained(sender)
    assert backend.items == [1, 2, 4, 5, 6, 7]
    assert sender.dropped == 1 and sender.take_dropped() == 0


def test_a_refused_batch_is_dropped_counted_and_the_next_one_goes() -> None:
    backend = Backend()
    backend.refuse = True
    sender = BatchSender(backend.send, name="refusing")
    before = faults_seen().get("export", 0)
    sender.extend(["a", "b"])
    assert sender.flush_by(time.monotonic() + 5)  # nothing left queued: refused is done with
    assert sender.take_dropped() == 2
    assert faults_seen()["export"] == before + 1
    backend.refuse = False
    sender.add("c")
    assert sender.flush_by(time.monotonic() + 5)
    assert backend.items == ["c"]


class Networked:
    """An exporter with a sender, as the network exporters are built."""

    def __init__(self) -> None:
        self.backend = Backend()
        self.sender = BatchSender(self.backend.send, name="networked")
        self.flushes: list[float] = []

    def export(self, record: Any) -> None:
        self.sender.add(record["id"])

    def flush_by(self, deadline: float) -> None:
        self.flushes.append(deadline - time.monotonic())
        self.sender.flush_by(deadline)


def test_each_invocation_ends_with_a_flush_bounded_by_the_setting_and_the_time_left() -> None:
    exporter = Networked()
    obs.configure(exporters=[exporter], flush_deadline_ms=200)

    @obs.instrument
    def handler(event: Any, context: Any) -> str:
        return "ok"

    assert handler({}, Context("r1", remaining_ms=60_000)) == "ok"
    assert exporter.backend.items == ["r1"]  # sent before the handler returned
    assert 0 < exporter.flushes[-1] <= 0.2
    handler({}, Context("r2", remaining_ms=500))  # 500 ms left: a tenth of it, not 200 ms
    assert exporter.flushes[-1] <= 0.05


def test_a_hanging_backend_leaves_the_handlers_answer_and_time_alone() -> None:
    exporter = Networked()
    exporter.backend.release.clear()
    obs.configure(exporters=[exporter], flush_deadline_ms=SHORT * 1000)

    @obs.instrument
    def handler(event: Any, context: Any) -> dict[str, int]:
        return {"answer": 42}

    durations = []
    for n in range(5):
        start = time.monotonic()
        assert handler({}, Context(f"r{n}", remaining_ms=60_000)) == {"answer": 42}
        durations.append(time.monotonic() - start)
    assert durations[0] >= SHORT  # the first flush waited its deadline
    assert max(durations[1:]) < 5  # the others did not wait on the same hung batch
    exporter.backend.release.set()  # it answers again: the backlog goes, then all is as usual
    drained(exporter.sender)
    handler({}, Context("late", remaining_ms=60_000))
    assert exporter.backend.items == [f"r{n}" for n in range(5)] + ["late"]


def test_what_a_network_exporter_still_holds_is_sent_at_a_normal_exit(tmp_path: Any) -> None:
    """A script or a container's orderly shutdown ends right after its last request; the
    invocation's own flush may have run out of time, the exit gives it one more chance."""
    import subprocess
    import sys
    import textwrap

    sent = tmp_path / "sent.txt"
    script = textwrap.dedent(
        f"""
        import time
        import inferobs as obs
        from inferobs.export.sending import BatchSender

        class Slow:
            def __init__(self):
                self.sender = BatchSender(self.send, name="slow")
            def send(self, batch):
                time.sleep(0.3)  # longer than the invocation's flush waits
                with open({str(sent)!r}, "a") as out:
                    out.writelines(f"{{item}}\\n" for item in batch)
            def export(self, record):
                self.sender.add(record["id"])
            def flush_by(self, deadline):
                return self.sender.flush_by(deadline)

        obs.configure(exporters=[Slow()], flush_deadline_ms=10)

        @obs.instrument
        def handler(event, context):
            return "ok"

        class Context:
            aws_request_id = "last"
            def get_remaining_time_in_millis(self):
                return 60_000

        print(handler({{}}, Context()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
    assert sent.read_text().split() == ["last"]
