"""Which stretches of time a pull fetches, and how far a source is read once one is done.

A source remembers the stretch it has read whole, [first, mark]. A pull for
[since, until] fetches what lies outside it, starting a few minutes inside
each end (`OVERLAP_NS`): log events arrive late, and CloudWatch's newest
metric periods are still filling in. Each stretch is cut into pieces, so a
pull that stops keeps its place to within a page and a piece read again from
its start stores nothing twice. Pieces before the stretch read are fetched
newest first, so each one finished extends it.
"""

from __future__ import annotations

from .landing import Covered

__all__ = ["OVERLAP_NS", "Piece", "done", "plan"]

Piece = tuple[int, int]  # Unix epoch ns, [start, end)

MINUTE_NS = 60 * 1_000_000_000
OVERLAP_NS = 5 * MINUTE_NS


def plan(covered: Covered | None, since_ns: int, until_ns: int, piece_ns: int) -> list[Piece]:
    """The pieces to fetch, in order, for [``since_ns``, ``until_ns``) given what is read."""
    if until_ns <= since_ns:
        return []
    if covered is None or since_ns > covered.mark or until_ns < covered.first:
        return _cut(since_ns, until_ns, piece_ns)
    before: list[Piece] = []
    if since_ns < covered.first:
        before = _cut(since_ns, min(until_ns, covered.first + OVERLAP_NS), piece_ns)[::-1]
    after: list[Piece] = []
    if until_ns > covered.mark:
        after = _cut(max(since_ns, covered.mark - OVERLAP_NS), until_ns, piece_ns)
    return before + after


def done(covered: Covered | None, piece: Piece) -> Covered:
    """What is read whole once ``piece`` is: it joins the stretch it touches, else starts one.

    A piece that touches no stretch read, after it, starts a new one (the pull
    asked for a later window than the last); one wholly before it changes nothing.
    """
    low, high = piece
    if covered is None or low > covered.mark:
        return Covered(low, high, None)
    if high < covered.first:
        return Covered(covered.first, covered.mark, None)
    return Covered(min(covered.first, low), max(covered.mark, high), None)


def _cut(low: int, high: int, piece_ns: int) -> list[Piece]:
    return [(at, min(at + piece_ns, high)) for at in range(low, high, piece_ns)]
