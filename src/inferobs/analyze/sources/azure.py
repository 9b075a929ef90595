"""Microsoft's public Azure Functions traces: the 2021 invocation trace and the 2019 minute counts.

They are real arrival patterns (bursts, diurnal swings, long idle gaps) to test
the analyzer and its policies on, not records of the user's own functions:
they carry no request ids, no cold-start flag and no calendar date, so each
row is placed on a fixed, documented origin (docs/sources.md).
"""

from __future__ import annotations

import os
import re

from ..columns import conform, sql_name, sql_string
from . import Source, head
from .table import header, is_gzip, left_out, normalise, scan_csv

TYPE_CHECKING = False
if TYPE_CHECKING:
    import duckdb

    from ...read import Problem

__all__ = ["ORIGIN_2019_NS", "ORIGIN_2021_NS", "AzureInvocations2021", "AzureMinutes2019"]

# t = 0 of the 2021 trace: its first day, 2021-01-31T00:00:00Z (the trace gives
# seconds from its start, never a date)
ORIGIN_2021_NS = 1_612_051_200 * 10**9
# Day 1 of the 2019 trace, placed on 2019-07-01T00:00:00Z (its files number
# their days, d01 to d14, and never date them)
ORIGIN_2019_NS = 1_561_939_200 * 10**9
_DAY_NS = 86_400 * 10**9
_MINUTE_NS = 60 * 10**9

_HEADER_2021 = ["app", "func", "end_timestamp", "duration"]
_HEADER_2019 = ["hashowner", "hashapp", "hashfunction", "trigger", "1"]
_DURATION_COLUMNS = {
    "duration_avg_ms": "average",
    "duration_p50_ms": "percentile_average_50",
    "duration_p99_ms": "percentile_average_99",
    "duration_max_ms": "percentile_average_100",
}
_KEYS = ("hashowner", "hashapp", "hashfunction")


def _is_csv(path: str) -> bool:
    name = path.lower()
    return name.endswith((".csv", ".csv.gz"))


def _normal_header(head_bytes: bytes) -> list[str]:
    return [normalise(name) for name in header(head_bytes, ",")]


def _columns(names: list[str]) -> dict[str, str]:
    """The file's spelling of each column, by its normalised name."""
    return {normalise(name): sql_name(name) for name in names}


class AzureInvocations2021(Source):
    """``app,func,end_timestamp,duration``: one row per invocation, seconds from the trace's start.

    start = end_timestamp - duration, from `ORIGIN_2021_NS`; the function is
    ``app/func`` (a func's hash is unique only within its app).
    """

    name = "Azure Functions 2021 invocation trace"

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        return _is_csv(path) and _normal_header(head) == _HEADER_2021

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        names = header(head(self.path), ",")
        c = _columns(names)
        end = f"TRY_CAST({c['end_timestamp']} AS DOUBLE)"
        seconds = f"TRY_CAST({c['duration']} AS DOUBLE)"
        problem = (
            "NULLIF(concat_ws('; ', "
            f"CASE WHEN coalesce({c['app']}, '') = '' OR coalesce({c['func']}, '') = '' "
            "THEN 'no app or func' END, "
            f"CASE WHEN NOT coalesce(isfinite({end}), false) "
            "THEN 'end_timestamp is not a number' END, "
            f"CASE WHEN NOT coalesce(isfinite({seconds}) AND {seconds} >= 0, false) "
            "THEN 'duration is not a duration' END), '')"
        )
        rows = db.sql(
            f"SELECT {sql_string(self.path)} AS source, line, "
            f"{ORIGIN_2021_NS} + CAST(round(({end} - {seconds}) * 1e9) AS BIGINT) AS start, "
            f"{seconds} * 1000 AS duration_ms, "
            f"{c['app']} || '/' || {c['func']} AS function, "
            "'invocation' AS kind, 'ok' AS status, 'azure_functions' AS platform, "
            f"1.0 AS sample_rate, {problem} AS problem "
            f"FROM ({scan_csv(self.path, names, ',')})"
        )
        left_out(db, rows, self.path, problems)
        return {"invocations": conform(rows.filter("problem IS NULL"), "invocations")}


class AzureMinutes2019(Source):
    """``HashOwner,HashApp,HashFunction,Trigger,1..1440``: invocations per minute of one day.

    One row per function and minute that had invocations, the function named
    ``HashApp/HashFunction``. The duration figures come from the
    durations-percentiles file (``durations`` when given, else a
    ``durations.csv`` in the same folder) and are the day's, repeated on each
    of the function's minutes.
    """

    name = "Azure Functions 2019 minute counts"

    def __init__(self, path: str, durations: str | None = None) -> None:
        super().__init__(path)
        beside = os.path.join(os.path.dirname(path), "durations.csv")
        self.durations = durations if durations is not None else beside

    @classmethod
    def claims(cls, path: str, head: bytes) -> bool:
        return _is_csv(path) and _normal_header(head)[:5] == _HEADER_2019

    def day_origin(self) -> int:
        """Epoch ns of the file's midnight: day ``dNN`` of its name, else day 1."""
        day = re.search(r"\.d(\d\d)\.csv", os.path.basename(self.path).lower())
        number = int(day.group(1)) if day else 1
        return ORIGIN_2019_NS + (number - 1) * _DAY_NS

    def load(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> dict[str, duckdb.DuckDBPyRelation]:
        # A day is 1,440 columns: splitting each line in one list is a thousand times
        # quicker to plan than naming every column (the trace's cells are never quoted)
        names = header(head(self.path), ",")
        at = {normalise(name): n for n, name in enumerate(names, 1)}  # list positions
        minutes = [(n, int(name)) for n, name in enumerate(names, 1) if name.strip().isdigit()]
        first, last = minutes[0] if minutes else (1, 1), minutes[-1] if minutes else (0, 0)
        if minutes == [(first[0] + k, first[1] + k) for k in range(len(minutes))]:
            # the trace's layout: minutes 1..1440 in order, a slice (quicker to plan)
            numbers = f"range({first[1]}, {last[1] + 1})"
            values = f"cells[{first[0]}:{last[0]}]"
        else:
            numbers = "[" + ", ".join(str(m) for _, m in minutes) + "]"
            values = "list_select(cells, [" + ", ".join(str(n) for n, _ in minutes) + "])"
        compression = "gzip" if is_gzip(self.path) else "none"
        lines = (
            "SELECT ordinality + 1 AS line, string_split(text, ',') AS cells FROM read_csv("
            f"{sql_string(self.path)}, columns = {{'text': 'VARCHAR'}}, delim = '\x1f', "
            "quote = '', escape = '', header = true, auto_detect = false, "
            f"compression = '{compression}') WITH ORDINALITY"
        )
        count = "TRY_CAST(trim(raw) AS BIGINT)"
        cells = db.sql(
            f"SELECT source, line, owner, app, func, "
            f"{self.day_origin()} + (minute_of_day - 1) * {_MINUTE_NS} AS minute, "
            f"{count} AS invocations, CASE "
            f"WHEN width <> {len(names)} THEN 'a row of ' || width || ' columns under a header "
            f"of {len(names)}' "
            f"WHEN coalesce({count} >= 0, false) THEN NULL "
            "ELSE 'minute ' || minute_of_day || ' is not a count' END AS problem FROM ("
            f"SELECT {sql_string(self.path)} AS source, line, len(cells) AS width, "
            f"cells[{at['hashowner']}] AS owner, cells[{at['hashapp']}] AS app, "
            f"cells[{at['hashfunction']}] AS func, unnest({numbers}) AS minute_of_day, "
            f"unnest({values}) AS raw FROM ({lines}))"
        )
        left_out(db, cells, self.path, problems)
        counted = cells.filter("problem IS NULL AND invocations > 0")
        figures = self._durations(db, problems)
        if figures is None:
            rows = counted.project("*, app || '/' || func AS function")
        else:
            rows = db.sql(
                "SELECT m.*, m.app || '/' || m.func AS function, d.* EXCLUDE (owner, app, func) "
                f"FROM ({counted.sql_query()}) m LEFT JOIN ({figures.sql_query()}) d "
                "USING (owner, app, func)"
            )
        return {"minutes": conform(rows, "minutes")}

    def _durations(
        self, db: duckdb.DuckDBPyConnection, problems: list[Problem]
    ) -> duckdb.DuckDBPyRelation | None:
        """Each function's duration figures, one row per function; None without the file."""
        from ...read import Problem

        if not os.path.isfile(self.durations):
            return None
        names = header(head(self.durations), ",")
        c = _columns(names)
        missing = [n for n in (*_KEYS, *_DURATION_COLUMNS.values()) if n not in c]
        if missing:
            problems.append(
                Problem(
                    self.durations,
                    f"not a durations-percentiles file: no {', '.join(missing)} column; "
                    "minutes read without durations",
                )
            )
            return None
        figures = ", ".join(
            f"any_value(TRY_CAST({c[column]} AS DOUBLE)) AS {target}"
            for target, column in _DURATION_COLUMNS.items()
        )
        return db.sql(
            f"SELECT {c['hashowner']} AS owner, {c['hashapp']} AS app, "
            f"{c['hashfunction']} AS func, {figures} "
            f"FROM ({scan_csv(self.durations, names, ',')}) GROUP BY ALL"
        )
