"""Where records go: the `Exporter` protocol and the lookup of exporters by name.

Built-in exporters are imported directly by name, so the cold path never scans
installed packages; only a name that is not built in is looked up in the
``inferobs.exporters`` entry-point group, where third-party and per-backend
exporter distributions register.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of cold start; mypy still sees the guard
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .base import Exporter

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Exporter", "resolve"]

ENTRY_POINT_GROUP = "inferobs.exporters"
BUILTIN = {
    "stdout": "inferobs.export.lines:LineExporter",
    "store": "inferobs.export.store:StoreExporter",
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
        target = BUILTIN.get(item)
        try:
            factory = _load(target) if target else _entry_point(item)
            if create:
                out.append(factory())
        except ConfigError:
            raise
        except Exception as exc:
            # the type only: messages can carry values, and this one may be logged
            raise ConfigError(
                f"exporters: {item!r} could not be created ({type(exc).__name__})"
            ) from exc
    return out


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
    known = sorted(set(BUILTIN) | {p.name for p in entry_points(group=ENTRY_POINT_GROUP)})
    raise ConfigError(
        f"exporters: no exporter named {name!r}; available: {', '.join(known)} "
        f"(install the package that provides it)"
    )


def __getattr__(name: str) -> object:
    if name == "Exporter":  # the Protocol needs typing; load it only for those who ask
        from .base import Exporter

        return Exporter
    raise AttributeError(name)
