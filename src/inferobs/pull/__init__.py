"""`obs pull`: invocation data back from a cloud into the embedded store.

Each provider module (`aws`, ...) turns its services into feeds: a log feed
(our JSON lines and the platform's own per-invocation reports) and a metrics
feed, each a source with its own place in the store (`inferobs.pull.plan`),
fetched page by page by `run_feed` and committed page by page by
`inferobs.pull.landing`. The function's configuration is stored beside them,
so a cost report prices the setup the user has. A provider's errors become
`PullError` with the provider's words for what to do; credentials never
appear in a message, since only error codes and our own words are shown.
"""

from __future__ import annotations

from .landing import Counts, Covered, Known
from .plan import done, plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from .landing import Landing
    from .plan import Piece

    # called after each page: the feed, what it stored so far, pieces done, pieces
    Progress = Callable[["Feed", Counts, int, int], None]

__all__ = ["Feed", "Page", "PullError", "Summary", "failing", "open_store", "run_feed"]


class PullError(Exception):
    """A pull that could not go on; the message says why and what was kept."""


class Page:
    """One page of a feed: log lines with the reports among them, or metric points; and
    the token that asks for the next page of the same piece (None: the piece is done).

    ``again`` marks a piece read anew from its start because the cloud refused the
    token a pull had kept (tokens expire): what its earlier pages stored is then
    looked up, so nothing is stored twice."""

    __slots__ = ("again", "lines", "points", "reports", "token")

    def __init__(
        self,
        token: str | None,
        *,
        again: bool = False,
        lines: list[str] | None = None,
        reports: list[dict[str, Any]] | None = None,
        points: list[tuple[str, str, int, int, float]] | None = None,
    ) -> None:
        self.token = token
        self.again = again  # the piece's first page again: its place's token was refused
        self.lines = lines or []
        self.reports = reports or []
        self.points = points


class Feed:
    """One source of a cloud: its key in the store, how it is cut, and its pages."""

    source = ""  # provider:place:function:feed, the key of its place in the store
    title = ""  # what the progress bar calls it
    piece_ns = 6 * 3600 * 1_000_000_000
    function = ""
    holds_records = True  # log lines (records may come twice) rather than metric points
    # the longest a call can run on the platform: a record stored that long before a
    # piece may end, and so be logged, inside it
    longest_call_ns = 15 * 60 * 1_000_000_000

    def pages(self, piece: Piece, token: str | None) -> Iterator[Page]:
        """The pages of one piece, from ``token`` (None: its start); at least one, the last
        with no token."""
        raise NotImplementedError


class Summary:
    """What one pull stored, feed by feed, and how far each is read now."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.function = ""  # the function pulled, by the name its records carry
        self.marks: dict[str, int] = {}  # feed source -> read whole up to, Unix epoch ns
        self.warnings: list[str] = []  # what could not be read, the pull going on without it
        self.feeds: dict[str, Counts] = {}  # feed title -> what it stored
        self.config = ""  # the function's configuration, in words, when it was read
        self.point_feeds: set[str] = set()  # the titles of feeds of metric points
        # feed title -> from when it is not read yet (None: none of it), until it is done
        self.missing: dict[str, int | None] = {}

    def expect(self, *titles: str) -> None:
        """The feeds this pull will read, in order: until each is done it is missing."""
        for title in titles:
            self.missing.setdefault(title, None)

    def kept(self) -> str:
        """What is in the store from this pull, and what is not yet, for a message about
        one that stopped."""
        c = self.counts
        missing = [
            title if since is None else f"{title} from {_iso(since)} on"
            for title, since in self.missing.items()
        ]
        return (
            f"the {c.records} records, {c.reports} platform reports and {c.metric_points} "
            "metric points fetched before are kept"
            + (f"; not fetched yet: {', '.join(missing)}" if missing else "")
            + "; the next pull resumes there"
        )


def open_store(path: str) -> Landing:
    """The store a pull writes into; `PullError` saying why when it cannot be opened."""
    import sqlite3

    from ..export.store import NewerLayoutError
    from .landing import Landing

    try:
        return Landing(path)
    except NewerLayoutError as exc:
        raise PullError(f"the store at {path} is {exc}: upgrade inferobs to pull into it") from None
    except FileExistsError:
        raise PullError(f"--store {path} is a file, not a folder") from None
    except OSError as exc:
        raise PullError(f"the store at {path} cannot be made: {exc.strerror}") from None
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorname", type(exc).__name__)
        raise PullError(f"the store at {path} cannot be opened ({code})") from None


class failing:
    """A provider's errors met while reading ``service`` as `PullError`: ``words`` says
    what went wrong and what to do (None for an error it does not know, which goes on
    as it is), and the message adds what the pull has kept."""

    def __init__(
        self, summary: Summary, service: str, words: Callable[[Exception, str], str | None]
    ) -> None:
        self.summary = summary
        self.service = service
        self.words = words

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if exc is None or isinstance(exc, PullError) or not isinstance(exc, Exception):
            return
        why = self.words(exc, self.service)
        if why is not None:
            raise PullError(f"{why}; {self.summary.kept()}") from None


def run_feed(
    landing: Landing,
    feed: Feed,
    window: Piece,
    summary: Summary,
    progress: Progress | None = None,
) -> None:
    """Fetch ``feed`` for ``window`` ([since, until), Unix epoch ns): an unfinished
    pull's pieces first, from its page, then what is not read yet. Counts go to
    ``summary`` as pages commit, so they are right when the provider fails part-way."""
    covered = landing.covered(feed.source)
    # what this source stored before this pull: only pieces reaching back into it can
    # hold records already stored (the overlap at its mark, a backfill's last piece)
    stored_until = covered.mark if covered is not None else None
    pending: list[Piece] = []
    token = None
    if covered is not None and covered.resume:
        pending = [(int(low), int(high)) for low, high in covered.resume.get("pieces", [])]
        token = covered.resume.get("token")
    stored = summary.feeds.setdefault(feed.title, Counts())
    if not feed.holds_records:
        summary.point_feeds.add(feed.title)
    finished = 0
    for attempt in ("resumed", "planned"):
        if attempt == "planned":
            pending, token = plan(covered, *window, feed.piece_ns), None
        for index, piece in enumerate(pending):
            summary.missing[feed.title] = piece[0]
            rest = pending[index + 1 :]
            known = _known(landing, feed, piece, stored_until)
            for page in _ahead(feed.pages(piece, token)):
                if page.again:  # read anew from its start: its earlier pages are stored
                    known = _known(landing, feed, piece, piece[1])
                token = page.token
                if token is None:
                    after = done(covered, piece)
                    after.resume = {"pieces": rest, "token": None} if rest else None
                else:
                    after = _unfinished(covered, piece)
                    after.resume = {"pieces": [piece, *rest], "token": token}
                if page.points is not None:
                    added = Counts()
                    added.metric_points = landing.metric_points(
                        feed.source, feed.function, page.points, after
                    )
                else:
                    added = landing.page(
                        feed.source,
                        page.lines,
                        page.reports,
                        function=feed.function,
                        known=known,
                        place=after,
                    )
                stored.add(added)
                summary.counts.add(added)
                if progress is not None:
                    now_done = finished + (1 if token is None else 0)
                    progress(feed, stored, now_done, finished + len(rest) + 1)
            covered = done(covered, piece)
            covered.resume = {"pieces": rest, "token": None} if rest else None
            token = None
            finished += 1
    summary.missing.pop(feed.title, None)
    if covered is not None:
        summary.marks[feed.source] = covered.mark


def _known(landing: Landing, feed: Feed, piece: Piece, before: int | None) -> Known:
    """What ``feed``'s pages of ``piece`` may hold that the store holds already: records
    and drift windows that started in the piece (or a longest call before it) before
    ``before``; nothing when nothing was stored there (None)."""
    if not feed.holds_records or before is None or before <= piece[0] - feed.longest_call_ns:
        return Known()
    return landing.known(piece[0] - feed.longest_call_ns, min(piece[1], before))


def _ahead(pages: Iterator[Page]) -> Iterator[Page]:
    """``pages``, the next one fetched while the caller stores this one.

    A cloud answers a page in tens to hundreds of milliseconds, and storing
    one takes as long: overlapping the two nearly halves a long pull. At most
    one page waits, so memory stays that of two pages however long the pull.
    A provider's error reaches the caller at the page it stopped at.
    """
    import queue
    import threading

    waiting: queue.Queue[tuple[Page | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                waiting.put((page, None))
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller's thread, raised there
            waiting.put((None, exc))
            return
        waiting.put((None, None))

    fetcher = threading.Thread(target=fetch, name="inferobs-pull", daemon=True)
    fetcher.start()
    try:
        while True:
            page, error = waiting.get()
            if error is not None:
                raise error
            if page is None:
                return
            yield page
    finally:
        # stopped early (an error, Ctrl-C): the fetch under way is left to end on its
        # own (a daemon thread, its page never stored) rather than waited for, since it
        # may be retrying for minutes; freeing the queue lets it see `stop` and return
        stop.set()
        try:
            waiting.get_nowait()
        except queue.Empty:
            pass


def _iso(ns: int) -> str:
    from datetime import datetime, timezone

    moment = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def _unfinished(covered: Covered | None, piece: Piece) -> Covered:
    """The stretch read while ``piece`` is under way (an empty one at its start if none)."""
    if covered is None:
        return Covered(piece[0], piece[0], None)
    return Covered(covered.first, covered.mark, None)
