"""Where records go: the `Exporter` protocol and the lookup of exporters by name.

Our own exporters, built in or in their backend's distribution under
exporters/, are imported directly by name, so the cold path never scans
installed packages (reading every distribution's metadata costs
milliseconds); one whose distribution is not installed is an error naming
the package to install. Only a name we do not know is looked up in the
``inferobs.exporters`` entry-point group, where third-party exporters
register.

An exporter that rides on the JSON line (a `inferobs.export.lines.Rider`,
such as CloudWatch EMF) is given to the line exporter, which is added if it
was not asked for: its backend reads that line, and a record stays one line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .base import Exporter

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "OURS", "Exporter", "resolve"]

ENTRY_POINT_GROUP = "inferobs.exporters"
BUILTIN = {
    "stdout": "inferobs.export.lines:LineExporter",
    "store": "inferobs.export.store:StoreExporter",
}
# our exporters in their backend's own distribution: name -> (target, distribution)
OURS = {
    "aws.emf": ("inferobs_aws.emf:EMFExporter", "inferobs-aws"),
    "aws.xray": ("inferobs_aws.xray:XRayExporter", "inferobs-aws"),
    "otlp": ("inferobs_otlp:OTLPExporter", "inferobs-otlp"),
    "gcp": ("inferobs_gcp:CloudMonitoringExporter", "inferobs-gcp"),
    "azure": ("inferobs_azure:AzureMonitorExporter", "inferobs-azure"),
}


def resolve(exporters: Iterable[str | Exporter], *, create: bool = True) -> list[Exporter]:
    """Exporter objects for the given names and objects, in order.

    Raises `inferobs.ConfigError` naming an exporter that cannot be found or
    built. With ``create=False`` names are only looked up (for validation), and
    only the objects given are returned.
    """
    from ..config import ConfigError

    out: list[Exporter] = []
    for item in exporters:
        if not isinstance(item, str):
            out.append(item)
            continue
        try:
            factory = _factory(item)
            if create:
                out.append(factory())
            else:
                check = getattr(factory, "check", None)
                if callable(check):  # its settings from the environment, checked now
                    check()
        except ConfigError:
            raise
        except Exception as exc:
            # the type only: messages can carry values, and this one may be logged
            raise ConfigError(
                f"exporters: {item!r} could not be created ({type(exc).__name__})"
            ) from exc
    return _riders_on_the_line(out) if create else out


def _factory(name: str) -> type[Exporter]:
    from ..config import ConfigError

    target = BUILTIN.get(name)
    if target is not None:
        return _load(target)
    ours = OURS.get(name)
    if ours is None:
        return _entry_point(name)
    target, distribution = ours
    try:
        return _load(target)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != target.split(".")[0]:
            raise  # the package is there but something it imports is not
        raise ConfigError(
            f"exporters: {name!r} is in the {distribution} package, which is not "
            f"installed: pip install {distribution}"
        ) from None


def _riders_on_the_line(exporters: list[Exporter]) -> list[Exporter]:
    from .lines import LineExporter

    riders = tuple(e for e in exporters if callable(getattr(e, "line_members", None)))
    if not riders:
        return exporters
    rest = [e for e in exporters if e not in riders]
    line = next((e for e in rest if isinstance(e, LineExporter)), None)
    if line is None:
        line = LineExporter()
        rest.insert(0, line)
    line.riders = riders  # type: ignore[assignment]
    return rest


def _load(target: str) -> type[Exporter]:
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def _entry_point(name: str) -> type[Exporter]:
    from importlib.metadata import entry_points

    from ..config import ConfigError

    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    for point in found:
        return point.load()  # type: ignore[no-any-return]
    from importlib.util import find_spec

    missing = {n: d for n, (t, d) in OURS.items() if find_spec(t.split(":")[0]) is None}
    installed = set(BUILTIN) | {n for n in OURS if n not in missing}
    installed |= {p.name for p in entry_points(group=ENTRY_POINT_GROUP)}
    absent = ", ".join(f"{n} ({d})" for n, d in sorted(missing.items()))
    if absent:
        absent = f"; in packages not installed: {absent}"
    raise ConfigError(
        f"exporters: no exporter named {name!r}; available: {', '.join(sorted(installed))}"
        f"{absent} (install the package that provides it)"
    )


def __getattr__(name: str) -> object:
    if name == "Exporter":  # the Protocol needs typing; load it only for those who ask
        from .base import Exporter

        return Exporter
    raise AttributeError(name)
