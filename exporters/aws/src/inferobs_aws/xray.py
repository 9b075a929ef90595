"""AWS X-Ray: a subsegment per invocation, with one per stage, sent to the X-Ray daemon.

Lambda opens each invocation's trace itself: its facade segment is the
invocation as the platform saw it, and the runtime hands the invocation's
trace header to the process in ``_X_AMZN_TRACE_ID``. Under that segment this
exporter adds what only the handler knows: a subsegment named after the model
(else the function), annotated ``cold_start``, ``model`` and ``model_version``
so traces can be searched by them, holding one subsegment per stage, laid
where the stage first started, as long as it ran, nested as the stages were.
A failed invocation's subsegment has ``fault`` set and names the exception's
type (never its message); a timeout's has ``fault`` too, and the stages still
running when the deadline came reach its end. The stage the error or timeout
hit, and the stages around it, have ``fault`` as well.

The documents are written here, in the daemon's format, and sent as UDP
datagrams (``{"format":"json","version":1}``, a newline, one JSON document) to
``AWS_XRAY_DAEMON_ADDRESS``, read when the exporter is made. aws-xray-sdk
defines these documents (the tests check ours against its models), but its
own bookkeeping is most of the 300 to 380 microseconds a Powertools Tracer
costs per invocation; these cost a few. The SDK is never imported here: when
the handler's code has imported it and opened a subsegment with its
``xray_recorder`` (``@xray_recorder.capture`` around the handler), ours nest
under that one instead of the facade.

Nothing is sent for a keep-warm ping, for a trace the platform did not sample
(no ``Sampled=1``), or without a trace header (off Lambda: nothing to join).
A tree too large for one datagram is split: the stages that do not fit go as
documents of their own that name their parent.

The way forward: aws-xray-sdk reaches end of support in February 2027, and
AWS's route for X-Ray is OpenTelemetry: spans exported over OTLP (through the
AWS Distro for OpenTelemetry collector or Lambda layer, or straight to X-Ray's
OTLP endpoint) arrive in X-Ray as traces. New setups should take that route;
this exporter speaks only the daemon's UDP protocol, which Lambda runs for
every function with active tracing, and needs nothing from the SDK.
"""

from __future__ import annotations

# The C module, not `socket`: socket.py imports enum and more, ~2.5 ms of cold start
# for names this exporter does not use.
import _socket
import os
import sys
from _thread import allocate_lock

from inferobs.config import ConfigError
from inferobs.context import fault
from inferobs.export.lines import encode
from inferobs.export.timeline import layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from inferobs.record import Invocation

__all__ = ["DEFAULT_ADDRESS", "ENV_ADDRESS", "MAX_DATAGRAM", "XRayExporter"]

ENV_ADDRESS = "AWS_XRAY_DAEMON_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1:2000"
ENV_TRACE_HEADER = "_X_AMZN_TRACE_ID"
HEADER = '{"format":"json","version":1}\n'
# The daemon reads datagrams into a 64 KiB buffer; a little room to spare.
MAX_DATAGRAM = 64_000
MAX_NAME = 200
_MAX_DOCUMENT = MAX_DATAGRAM - len(HEADER)
_CHILDREN = ',"subsegments":['
_NOT_IN_NAMES = str.maketrans("", "", "?;*()!$~^<>")  # X-Ray drops these from names


class XRayExporter:
    """Sends each invocation's subsegment tree to the X-Ray daemon.

    ``address`` is the daemon's, in ``AWS_XRAY_DAEMON_ADDRESS``'s forms
    (``host:port``, or ``tcp:host:port udp:host:port``); by default that
    variable's value, else 127.0.0.1:2000. A malformed one is a `ConfigError`.
    """

    traces_stages = True  # records carry stage_starts: stages are laid on the timeline

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = os.environ.get(ENV_ADDRESS) or DEFAULT_ADDRESS
        self.host, self.port = _udp_address(address)
        self._socket: _socket.socket | None = None
        self._target: Any = None  # the daemon's resolved socket address
        self._unusable = False  # the address could not be resolved: nothing is sent
        self._lock = allocate_lock()

    @classmethod
    def check(cls) -> None:
        """Check the daemon address in the environment (at configure time)."""
        cls()

    def export(self, record: Invocation) -> None:
        """Send the record's subsegments, if this invocation's trace is sampled.

        The trace header is read now: the runtime sets it per invocation, and
        records are exported before the handler returns.
        """
        if record.get("kind") == "warmup":
            return
        header = os.environ.get(ENV_TRACE_HEADER)
        if not header:
            return
        root = parent = None
        sampled = False
        for part in header.split(";"):
            key, _, value = part.partition("=")
            if key == "Root":
                root = value
            elif key == "Parent":
                parent = value
            elif key == "Sampled":
                sampled = value == "1"
        if not sampled or not root or not parent:
            return
        sock = self._socket or self._open()
        if sock is None:
            return
        if "aws_xray_sdk.core" in sys.modules:
            parent = _recorder_parent(root) or parent
        for document in _documents(_tree(record, root, parent)):
            try:
                sock.sendto((HEADER + document).encode(), self._target)
            except OSError as exc:  # a full buffer, an unreachable daemon
                fault("xray_send", "a trace document could not be sent to the X-Ray daemon", exc)
                return

    def _open(self) -> _socket.socket | None:
        """The exporter's non-blocking UDP socket, made on first use; None if it cannot be.

        A host name is resolved once, here: a name that does not resolve is a
        fault, and this exporter sends nothing rather than ask again each time.
        """
        with self._lock:
            if self._socket is not None or self._unusable:
                return self._socket
            try:
                # the host as bytes: a str would load the idna codec (~1 ms) to encode it
                family, _, _, _, target = _socket.getaddrinfo(
                    self.host.encode("ascii", "replace"), self.port, 0, _socket.SOCK_DGRAM
                )[0]
                sock = _socket.socket(family, _socket.SOCK_DGRAM)
                sock.setblocking(False)
            except OSError as exc:
                self._unusable = True
                fault(
                    "xray_address",
                    f"the X-Ray daemon address {self.host}:{self.port} could not be used; "
                    "no traces are sent",
                    exc,
                )
                return None
            self._target = target
            self._socket = sock
            return sock


def _udp_address(text: str) -> tuple[str, int]:
    """The daemon's UDP host and port from ``host:port`` or ``tcp:host:port udp:host:port``."""
    forms = text.split()
    udp = forms[0] if len(forms) == 1 else None
    if len(forms) == 2:
        named = {}
        for form in forms:
            protocol, _, where = form.partition(":")
            named[protocol] = where
        if set(named) == {"tcp", "udp"}:
            udp = named["udp"]
    if udp is not None:
        host, _, port = udp.rpartition(":")
        if host and ":" not in host and port.isascii() and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise ConfigError(f"{ENV_ADDRESS}={text!r}: expected host:port, or tcp:host:port udp:host:port")


def _tree(record: Invocation, trace_id: str, parent_id: str) -> dict[str, Any]:
    """The invocation's subsegment, its stages nested inside, as the daemon takes it
    (where each sits in time: `inferobs.export.timeline.layout`)."""
    nodes = layout(record)
    ids = os.urandom(8 * (len(nodes) + 1)).hex()  # one call for every id needed
    model = record.get("model")
    annotations: dict[str, Any] = {"cold_start": record.get("cold_start", False)}
    if model is not None:
        annotations["model"] = model
    version = record.get("model_version")
    if version is not None:
        annotations["model_version"] = version
    placed: list[dict[str, Any]] = []
    for n, (name, holder, first, last, failed, _) in enumerate(nodes):
        node: dict[str, Any] = {
            "name": _name(name),
            "id": ids[16 * n : 16 * n + 16],
            "start_time": first / 1e9,
            "end_time": last / 1e9,
        }
        if failed:
            node["fault"] = True
        placed.append(node)
        if holder >= 0:
            children = placed[holder].get("subsegments")
            if children is None:
                placed[holder]["subsegments"] = [node]
            else:
                children.append(node)
    top = placed[0]
    top.update(trace_id=trace_id, parent_id=parent_id, type="subsegment", annotations=annotations)
    error_type = record.get("error_type")
    if error_type and top.get("fault"):
        exception_id = ids[16 * len(nodes) :]
        top["cause"] = {"exceptions": [{"id": exception_id, "type": error_type}]}
    return top


def _name(text: str) -> str:
    return text.translate(_NOT_IN_NAMES)[:MAX_NAME] or "unnamed"


def _documents(node: dict[str, Any]) -> list[str]:
    """``node``, a subsegment sent on its own, as JSON documents that each fit a datagram.

    Usually one. Otherwise the children that fit stay embedded and each of the
    others goes on its own, pointing at ``node``, split again if need be.
    """
    whole = encode(node)
    if len(whole) <= _MAX_DOCUMENT:
        return [whole]
    children = node.pop("subsegments", [])
    alone = encode(node)
    room = _MAX_DOCUMENT - len(alone) - len(_CHILDREN) - 1  # and the closing bracket
    kept: list[str] = []
    rest: list[dict[str, Any]] = []
    for child in children:
        text = encode(child)
        if len(text) < room:  # with the comma before it
            kept.append(text)
            room -= len(text) + 1
        else:
            rest.append(child)
    out = [alone[:-1] + _CHILDREN + ",".join(kept) + "]}" if kept else alone]
    for child in rest:
        child.update(trace_id=node["trace_id"], parent_id=node["id"], type="subsegment")
        out.extend(_documents(child))
    return out


def _recorder_parent(trace_id: str) -> str | None:
    """The id of aws-xray-sdk's current subsegment in this trace, if the handler's code
    opened one; None otherwise, or when it cannot be read (a fault).

    Only the SDK's Lambda context is asked: elsewhere, asking for a current
    entity where there is none logs an error or raises, by its settings.
    """
    launcher = sys.modules.get("aws_xray_sdk.core.lambda_launcher")
    core = sys.modules.get("aws_xray_sdk.core")
    if launcher is None or core is None:
        return None
    try:
        context = core.xray_recorder.context
        if not isinstance(context, launcher.LambdaContext):
            return None
        entity = context.get_trace_entity()
        if getattr(entity, "trace_id", None) == trace_id:
            found = entity.id
            if isinstance(found, str) and len(found) == 16:
                return found
    except Exception as exc:
        fault("xray_sdk", "aws-xray-sdk's current subsegment could not be read", exc)
    return None
