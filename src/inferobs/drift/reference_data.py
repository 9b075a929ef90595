"""Reference data from a file, as columns: what `obs baseline build` reads.

CSV, Parquet and JSON Lines through pyarrow (its readers infer the types,
keep list columns such as probability vectors as lists, and never run code
from the file); ``.npz`` through numpy with pickles refused. The file's bytes
are hashed, so a baseline says exactly which data it came from.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from .baseline import BaselineError

__all__ = ["read_reference"]

_FORMATS = ".csv, .csv.gz, .parquet, .jsonl, .ndjson, .json or .npz"


def read_reference(path: str) -> tuple[dict[str, Any], str]:
    """The file's columns (name -> values) and the SHA-256 of its bytes."""
    name = path.lower()
    try:
        digest = _digest(path)
        if name.endswith(".npz"):
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}, digest
        table = _table(path, name)
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:  # pyarrow's and numpy's parse errors
        raise BaselineError(f"{path}: not readable as {_kind(name)} ({exc})") from None
    columns = {column: table.column(column).to_pylist() for column in table.column_names}
    return columns, digest


def _table(path: str, name: str) -> Any:
    if name.endswith((".csv", ".csv.gz")):
        import pyarrow.csv

        return pyarrow.csv.read_csv(path)
    if name.endswith(".parquet"):
        import pyarrow.parquet

        return pyarrow.parquet.read_table(path)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        import pyarrow.json

        return pyarrow.json.read_json(path)
    raise BaselineError(f"{path}: expected {_FORMATS}")


def _kind(name: str) -> str:
    return os.path.splitext(name.removesuffix(".gz"))[1].lstrip(".") or "data"


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
