"""Cloud Run's instance id, from the metadata server: read once, off the request path.

Cloud Run sets no variable that names the instance; only the metadata server
(``metadata.google.internal``, or ``GCE_METADATA_HOST`` as Google's own
libraries honour it) knows it. Asking costs a round trip of a millisecond or
so, so it is asked once per process, on a thread of its own started at init,
with a short timeout; until the answer comes (and if none does), records carry
``gcp_cloud_run:PID``. The standard library's http.client only: this runs in
the handler's process.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

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
        text = answer.read(256).decode("ascii", "replace").strip()
        if answer.status != 200 or answer.getheader("Metadata-Flavor") != "Google":
            return None
        return text if text and text.isprintable() and len(text) <= 128 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def identify(
    runtime: Runtime, host: str | None, on_found: Callable[[], None] | None = None
) -> threading.Thread:
    """Ask for ``runtime``'s instance id on a daemon thread; when it comes, the runtime's
    ``instance_id`` becomes ``ID:PID`` and ``on_found()`` (if given) is called."""

    def ask() -> None:
        found = instance_id(host or "metadata.google.internal")
        if found is not None:
            runtime.instance_id = f"{found}:{os.getpid()}"
            if on_found is not None:
                on_found()

    thread = threading.Thread(target=ask, name="inferobs-instance-id", daemon=True)
    thread.start()
    return thread
