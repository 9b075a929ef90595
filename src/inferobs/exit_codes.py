"""The exit statuses of every ``obs`` command, fixed once so scripts and CI can rely on them.

0 and 1 are what a command did; 3 and 4 are what it found, so a scheduled
``obs`` run can fail a pipeline on an alert or a budget without parsing its
output: 3 when an alert rule fires (``obs report``, ``obs report --drift``),
4 when ``obs report --costs --budget`` is exceeded. 2 is never used (it is
click's default for a usage error, which ``obs`` reports as 1).
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What an ``obs`` command's exit status means."""

    OK = 0
    """It did its job, whatever warnings it printed."""
    ERROR = 1
    """It could not: bad arguments, nothing could be read, a store or setting unusable."""
    ALERT = 3
    """An alert rule fired (drift, latency, errors)."""
    OVER_BUDGET = 4
    """Spending is over the ``--budget`` given."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C (128 + SIGINT, as shells report it)."""
