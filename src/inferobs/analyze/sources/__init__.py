"""Sources: each module reads one kind of file or service into the columnar forms.

A source knows one format (our JSON lines and the logs they sit in, the
embedded store, tables of invocations, platform traces) and translates it into
the columns of `inferobs.analyze.columns`; the analyzer never sees a format.
A cloud source (CloudWatch, Cloud Logging, Log Analytics) is one more module
with the same two methods.

Sources that hold drift windows (the store, our JSON lines) also give them
as one `WindowTable` for a baseline (`Source.windows`); the others have none.

`detect` picks the source for a path from its name and first bytes; every
source is asked in `registered` order, and the first that claims the file reads it.
"""

from __future__ import annotations

import gzip
import os

from ...export.store import DATABASE

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

    from ...drift.baseline import Baseline
    from ...drift.window_table import WindowTable
    from ...read import Problem

__all__ = [
    "Source",
    "detect",
    "distinct_windows",
    "fresh_name",
    "head",
    "registered",
]

HEAD_BYTES = 64 * 1024  # enough for a CSV header or a few log lines


class Source:
    """One file (or store, or service) that holds invocations, reports or minutes.

    Subclasses say whether they read a path (`claims`) and read it into DuckDB
    relations keyed by kind (`load`). What cannot be read is appended to
    ``problems`` with its place (``file:line``), and reading goes on.
    """

    name = "source"  # what the format is called, in messages

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        """Whether this source reads ``path``, whose first bytes (decompressed) are ``head``."""
        raise NotImplementedError

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        """Relations of `inferobs.analyze.columns` kinds, each conformed to its columns."""
        raise NotImplementedError

    def windows(self, baseline: Baseline, problems: list[Problem]) -> WindowTable:
        """The drift windows counted against ``baseline``, those of other baselines
        counted in ``other``; what cannot be read goes to ``problems``. None here:
        platform traces and tables of invocations hold no windows."""
        from ...drift.window_table import WindowTable

        return WindowTable.empty(baseline)


def distinct_windows(baseline: Baseline, tables: list[WindowTable]) -> WindowTable:
    """One table of several sources' windows (one table each, in order), a window found
    again counted once: a store and a saved log may hold the same one.

    A window written with a ``window_id`` (one per emission) is the same
    window wherever that id is found again. One written without (by an older
    inferobs) is the same when its instance, start and group are
    (`inferobs.read.window_key`, the baseline being the tables'), and only
    across sources: within one, windows alike are parts of one window. Windows
    of unnamed instances without an id are all kept.
    """
    import numpy as np

    from ...drift.window_table import WindowTable

    seen: set[tuple[object, ...]] = set()  # the windows of the tables before this one
    seen_ids: set[str] = set()
    kept = []
    for table in tables:
        here = set()
        keep = np.ones(len(table), dtype=bool)
        ids = table.ids or [None] * len(table)
        for n, (instance, start, group, identity) in enumerate(
            zip(table.instance, table.start_ns.tolist(), table.group.tolist(), ids, strict=True)
        ):
            if identity is not None:
                keep[n] = identity not in seen_ids
                seen_ids.add(identity)
            elif instance is not None:
                key = (instance, start, table.groups[group])
                keep[n] = key not in seen
                here.add(key)
        seen |= here
        kept.append(table if keep.all() else table.take(keep))
    return WindowTable.concat(baseline, kept)


_made = iter(range(1, 1 << 62))


def fresh_name(prefix: str) -> str:
    """A table name no other source's load uses: ``prefix`` and a number."""
    return f"{prefix}{next(_made)}"


def head(path: str) -> bytes:
    """The first bytes of ``path``, decompressed when it is gzip."""
    with open(path, "rb") as handle:
        start = handle.read(HEAD_BYTES)
    if start[:2] != b"\x1f\x8b":
        return start
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except (OSError, EOFError):  # a cut or broken archive: nothing recognisable
        return b""


def registered() -> list[type[Source]]:
    """Every source, most specific first: the first whose `Source.claims` is true reads a file."""
    from .azure import AzureInvocations2021, AzureMinutes2019
    from .lines import LogLines
    from .store import Store
    from .table import InvocationTable

    return [Store, AzureInvocations2021, AzureMinutes2019, InvocationTable, LogLines]


def detect(path: str) -> Source | None:
    """The source that reads ``path``, or None when no source recognises it."""
    target = os.path.join(path, DATABASE) if os.path.isdir(path) else path
    start = head(target)
    for source in registered():
        if source.claims(path, start):
            return source(path)
    return None
