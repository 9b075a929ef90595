"""The ``obs`` command. For now it reports its version; `obs report` follows."""

from __future__ import annotations

import sys

from . import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

USAGE = "usage: obs version"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["version"], ["--version"]):
        print(f"inferobs {__version__}")
        return 0
    stream = sys.stdout if args in ([], ["--help"], ["-h"]) else sys.stderr
    print(USAGE, file=stream)
    return 0 if stream is sys.stdout else 2


if __name__ == "__main__":
    raise SystemExit(main())
