"""Where a record's invocation and stages sit in time: what every trace backend draws.

X-Ray subsegments, OTLP spans and Application Insights dependencies are the
same picture in three encodings; the rule for placing a stage, and the
OpenTelemetry ids the spans carry, live here once. Standard library only.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["Node", "layout", "span_ids", "trace_id"]

_HEX = frozenset("0123456789abcdefABCDEF")

# (name, index of the parent node or -1, start ns, end ns, failed, stage path or "")
Node = tuple[str, int, int, int, bool, str]


def layout(record: Mapping[str, Any]) -> list[Node]:
    """The invocation's node first (named after the model, else the function), then one
    per stage in order of first entry.

    A stage starts at its first entry (`stage_starts`) and lasts its total
    time, kept inside its parent; one with no start (a record written without
    a tracing exporter) follows its previous sibling, and one with no time
    (still running when a timeout line was written) lasts to its parent's end.
    A stage whose parent was not recorded hangs from the invocation. The
    invocation fails on an error or a timeout, and so do the stage it hit and
    the stages around that one.
    """
    begin = record["start"]
    end = begin + round(record["duration_ms"] * 1e6)
    failed = record.get("status") == "error" or record.get("kind") == "timeout"
    failed_stage = record.get("error_stage") if failed else None
    nodes: list[Node] = [
        (record.get("model") or record.get("function") or "handler", -1, begin, end, failed, "")
    ]
    stages = record.get("stages") or {}
    starts = record.get("stage_starts") or {}
    index = {"": 0}
    laid_until: dict[int, int] = {}  # under each node, where its last child ended
    for path in {**starts, **stages}:
        above, _, name = path.rpartition("/")
        holder = index.get(above, 0)
        low, high = nodes[holder][2:4]
        offset = starts.get(path)
        first = begin + round(offset * 1e6) if offset is not None else laid_until.get(holder, low)
        first = min(max(first, low), high)
        ms = stages.get(path)
        last = high if ms is None else min(first + round(max(ms, 0) * 1e6), high)
        hit = failed_stage is not None and (
            path == failed_stage or failed_stage.startswith(f"{path}/")
        )
        index[path] = len(nodes)
        nodes.append((name, holder, first, last, hit, path))
        laid_until[holder] = last
    return nodes


def trace_id(record: Mapping[str, Any]) -> int:
    """The record's trace id as OpenTelemetry's 128 bits: a W3C one as it is, an X-Ray one
    (``1-<8 hex>-<24 hex>``) as its 32 digits, so spans join the trace the platform
    started; a new random one when the record has none that can be read so."""
    text = record.get("trace_id")
    if text:
        digits = text[2:].replace("-", "") if text.startswith("1-") else text.replace("-", "")
        if len(digits) == 32 and set(digits) <= _HEX and digits.strip("0"):
            return int(digits, 16)
    return int.from_bytes(os.urandom(16), "big") or 1


def span_ids(count: int) -> list[int]:
    """``count`` random, non-zero 64-bit span ids, from one read of the system's source."""
    ids = os.urandom(8 * count)
    return [int.from_bytes(ids[8 * n : 8 * n + 8], "big") or 1 for n in range(count)]
