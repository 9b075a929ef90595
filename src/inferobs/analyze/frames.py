"""The columnar form of the one reader: every source into one DuckDB database.

`read_frames` is `inferobs.read.read` for analysis at scale: the same sources
and the same rules (records after a prefix or anywhere on a line, per-line
problems with file and line, a record seen twice counted once, UTF-16, the
store's notes), but the records land in DuckDB tables instead of Python
objects, so a report reduces them in the engine. Given a drift baseline, the
drift windows counted against it are read too, as one `WindowTable`.
"""

from __future__ import annotations

import os

from ..read import SAME_NS, Problem, ReadError, _database
from .columns import KINDS, empty, sql_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import duckdb

    from ..drift.baseline import Baseline
    from ..drift.window_table import WindowTable

__all__ = ["Frames", "read_frames"]


class Frames:
    """What was read: one relation per kind, and the problems and losses met on the way.

    ``invocations`` holds each record once, filtered as asked; its ``source``
    column and ``line`` say where it came from, ``rank`` the order in which it
    was read (sources in the order given, then lines).
    """

    def __init__(self, db: duckdb.DuckDBPyConnection) -> None:
        self.db = db
        self.problems: list[Problem] = []
        self.losses: list[Problem] = []
        self.windows: WindowTable | None = None  # with a baseline: its drift windows

    @property
    def invocations(self) -> duckdb.DuckDBPyRelation:
        return self.db.table("invocations")

    @property
    def reports(self) -> duckdb.DuckDBPyRelation:
        return self.db.table("reports")

    @property
    def minutes(self) -> duckdb.DuckDBPyRelation:
        return self.db.table("minutes")

    def close(self) -> None:
        """Free the database the sources were read into."""
        self.db.close()

    def count(self, kind: str = "invocations") -> int:
        ((count,),) = self.db.execute(f"SELECT count(*) FROM {kind}").fetchall()
        return int(count)


def read_frames(
    sources: Iterable[str],
    *,
    since_ns: int | None = None,
    function: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    baseline: Baseline | None = None,
) -> Frames:
    """Read every source into tables ``invocations``, ``reports`` and ``minutes``
    (and, with ``baseline``, its drift windows into ``Frames.windows``).

    A source that is missing, unrecognised or unreadable is a problem and the
    others are still read; `ReadError` (naming the problems) is raised only
    when nothing at all could be read. ``progress(done, total, source)`` is
    called before each source is read, and once more at the end.
    """
    import duckdb

    from .sources import detect

    frames = Frames(duckdb.connect())  # its own database: nothing is shared between reads
    parts: dict[str, list[tuple[int, duckdb.DuckDBPyRelation]]] = {kind: [] for kind in KINDS}
    sources = list(sources)
    ranks: dict[str, int] = {}  # each source's path, as its reader names it -> its place
    windows = []
    for rank, source in enumerate(sources):
        if progress is not None:
            progress(rank, len(sources), source)
        try:
            if not os.path.exists(_database(source)):
                raise ReadError(f"{source}: no such file or store")
            reader = detect(source)
            if reader is None:
                raise ReadError(f"{source}: {_unrecognised(source)}")
            loaded = reader.load(frames.db, frames.problems)
            if baseline is not None:
                windows.append(reader.windows(baseline, frames.problems))
            ranks[reader.path] = rank
            frames.losses.extend(getattr(reader, "losses", []))
        except FileNotFoundError:
            frames.problems.append(Problem(source, "no such file or store"))
            continue
        except (ReadError, OSError, EOFError) as exc:  # EOFError: a gzip file cut short
            frames.problems.append(Problem(source, str(exc).removeprefix(f"{source}: ")))
            continue
        except Exception as exc:  # a file DuckDB cannot parse at all, or a reader's bug:
            # one source is lost, never the whole report
            frames.problems.append(Problem(source, f"could not be read ({type(exc).__name__})"))
            continue
        for kind, relation in loaded.items():
            parts[kind].append((rank, relation))
    if progress is not None:
        progress(len(sources), len(sources), "")
    for kind, found in parts.items():
        _combine(frames.db, kind, found)
    _keep_once(frames.db, since_ns, function, ranks)
    if baseline is not None:
        from .sources import distinct_windows

        frames.windows = distinct_windows(baseline, windows).within(since_ns, function)
    anything = any(frames.count(kind) for kind in KINDS) or bool(frames.windows)
    if frames.problems and not anything:
        raise ReadError("; ".join(str(p) for p in frames.problems[:5]))
    return frames


def _combine(
    db: duckdb.DuckDBPyConnection, kind: str, found: list[tuple[int, duckdb.DuckDBPyRelation]]
) -> None:
    """Table ``kind``: the relations found, each row with the rank of its source."""
    target = f"_{kind}_read" if kind in ("invocations", "minutes") else kind
    if not found:
        empty(db, kind).project("*, 0 AS rank").create_view(target, replace=True)
        return
    selects = []
    for rank, relation in found:
        name = f"_{kind}_{rank}"
        relation.create_view(name, replace=True)
        selects.append(f"SELECT *, {rank} AS rank FROM {name}")
    # a view, not a copy: ten million rows of a Parquet file are scanned where used
    db.execute(f"CREATE OR REPLACE TEMP VIEW {target} AS " + " UNION ALL BY NAME ".join(selects))


def _keep_once(
    db: duckdb.DuckDBPyConnection,
    since_ns: int | None,
    function: str | None,
    ranks: dict[str, int],
) -> None:
    """View ``invocations``: each record once (same id and kind, starts less than a
    microsecond apart), completed by the platform's reports where there are any,
    filtered by time and function."""
    # A record seen twice is rare, and keeping one of each costs a sort of every row
    # in every query over the view: it is paid only where two records may be one
    # (the same hash of id and kind: a retried request, or a rare collision, only
    # costs the sort). A microsecond apart, not exactly alike: a record that came back
    # through a JSON double (Cloud Logging) has its start only to the microsecond.
    ((doubled,),) = db.execute(
        "SELECT count(*) FROM (SELECT 1 FROM _invocations_read WHERE id IS NOT NULL "
        "GROUP BY hash(id, kind) HAVING count(*) > 1)"
    ).fetchall()
    kept = "SELECT * FROM _invocations_read"
    if doubled:  # records without an id cannot be told apart: all are kept, unsorted
        kept += (
            " WHERE id IS NULL UNION ALL SELECT * EXCLUDE (_apart) FROM (SELECT *, start - "
            "lag(start) OVER (PARTITION BY id, kind ORDER BY start, rank, line) AS _apart "
            f"FROM _invocations_read WHERE id IS NOT NULL) WHERE coalesce(_apart, {SAME_NS}) "
            f">= {SAME_NS}"
        )
    db.execute(f"CREATE OR REPLACE TEMP VIEW _invocations_once AS {kept}")
    read = "_invocations_once"
    ((reports,),) = db.execute("SELECT count(*) FROM reports").fetchall()
    if reports:
        from .join import join

        once = db.table("_invocations_once").project("* EXCLUDE (rank)")
        join(db, once, db.table("reports").project("* EXCLUDE (rank)")).create_view(
            "_invocations_joined", replace=True
        )
        db.execute("CREATE OR REPLACE TEMP TABLE _ranks (source VARCHAR, rank INTEGER)")
        db.executemany("INSERT INTO _ranks VALUES (?, ?)", list(ranks.items()))
        db.execute(
            "CREATE OR REPLACE TEMP VIEW _invocations_ranked AS SELECT j.*, "
            "coalesce(r.rank, 0) AS rank FROM _invocations_joined AS j "
            "LEFT JOIN _ranks AS r USING (source)"
        )
        read = "_invocations_ranked"
    where = []  # a view takes no parameters: values are written in, quoted
    if since_ns is not None:
        where.append(f"start >= {int(since_ns)}")
    if function is not None:
        where.append(f"function = {sql_string(function)}")
    condition = " AND ".join(where) or "true"
    db.execute(f"CREATE OR REPLACE TEMP VIEW invocations AS SELECT * FROM {read} WHERE {condition}")
    # minute counts answer to the same filters: a minute from ``since_ns`` on
    minutes = condition.replace("start >=", "minute >=")
    db.execute(
        f"CREATE OR REPLACE TEMP VIEW minutes AS SELECT * FROM _minutes_read WHERE {minutes}"
    )


def _unrecognised(source: str) -> str:
    """Why no source reads ``source``, in the record-by-record reader's words where they fit."""
    from ..read import _binary
    from .sources import head

    start = head(source)
    if source.endswith(".db") or _binary(start):
        return "neither a store database nor a file of JSON lines"
    return "holds no inferobs records (and is no other format inferobs reads: docs/sources.md)"
