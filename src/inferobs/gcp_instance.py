"""Cloud Run's instance id, from the metadata server: read once, off the request path.

Cloud Run sets no variable that names the instance; only the metadata server
(``metadata.google.internal``, or ``GCE_METADATA_HOST`` as Google's own
libraries honour it) knows it. Asking costs a round trip of a millisecond or
so, so it is asked once per process, on a thread of its own started at init,
with a short timeout (0.5 s for the connection and the answer; a name lookup
comes before it); until the answer comes (and if none does), records carry
``gcp_cloud_run:PID``. The standard library's http.client only: this runs in
the handler's process.
"""

from __future__ import annotations

import os
import threading
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["identify", "instance_id"]

PATH = "/computeMetadata/v1/instance/id"
TIMEOUT_S = 0.5


def instance_id(host: str, timeout_s: float = TIMEOUT_S) -> str | None:
    """The instance id the metadata server at ``host`` (``name[:port]``) gives; None when it
    does not answer in time, or answers with anything but an id."""
    import http.client

    name, _, port = host.partition(":")
    connection = http.client.HTTPConnection(
        name, int(port) if port.isdigit() else 80, timeout=timeout_s
    )
    try:
        connection.request("GET", PATH, headers={"Metadata-Flavor": "Google"})
        answer = connection.getresponse()
        text = answer.read(1024).decode("ascii", "replace").strip()
        if answer.status != 200 or answer.getheader("Metadata-Flavor") != "Google":
            return None
        # Cloud Run's ids are long (160 characters and more)
        return text if text and text.isprintable() and len(text) <= 512 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def identify(runtime: Runtime, host: str | None) -> threading.Thread:
    """Ask for ``runtime``'s instance id on a daemon thread; when it comes, the runtime's
    ``instance_id`` becomes ``ID:PID`` (records made after it carry it).

    A server that forks its workers after loading the app (gunicorn ``--preload``)
    forks this process: each child asks again for itself, its own pid in its id.
    """
    _asked.add(runtime)
    if not _hooked:
        _hook()

    def ask() -> None:
        found = instance_id(host or "metadata.google.internal")
        if found is not None:
            runtime.instance_id = f"{found}:{os.getpid()}"

    thread = threading.Thread(target=ask, name="inferobs-instance-id", daemon=True)
    thread.start()
    return thread


_asked: weakref.WeakSet[Runtime] = weakref.WeakSet()  # the runtimes that asked
_hooked = False


def _hook() -> None:
    global _hooked
    _hooked = True
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    """In a forked child: the instance is the parent's, the process its own."""
    pid = os.getpid()
    for runtime in list(_asked):
        name, _, _ = runtime.instance_id.rpartition(":")
        runtime.instance_id = f"{name}:{pid}"
        identify(runtime, runtime.metadata_host)
