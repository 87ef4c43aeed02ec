"""The workflow's CSV tables as lists of row dicts, read and written without pandas, byte for byte as pandas does.

The clean job reads its month's slot table and writes its frame index and ledger; pandas cost ~0.3 s CPU of its
start for that alone. :func:`write_rows` writes what ``pandas.DataFrame(rows, columns=columns).to_csv(path,
index=False)`` writes for columns of one type each (str, int or float; None or NaN empty): pandas too writes
through the ``csv`` module (minimal quoting, ``"`` doubled, ``\\n`` line ends), with floats in their shortest
round-trip form (``repr``). ``tests/test_tablecsv.py`` compares the bytes with pandas'.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence

from .paths import atomic_path

__all__ = ["read_rows", "write_rows"]


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV table as dicts keyed by its header, each value the text written ('' when empty)."""
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _text(value, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):  # float.__repr__: numpy 2's np.float64 (a float) reprs as "np.float64(0.5)"
        return "" if math.isnan(value) else float.__repr__(value)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    # pandas would format other types (numpy scalars, booleans, times) by its column dtype: not guessed here
    raise TypeError(f"column {column!r}: {type(value).__name__} value {value!r} (str, int, float or None only)")


def write_rows(rows: Iterable[Mapping], columns: Sequence[str], path: str | os.PathLike) -> None:
    """Write ``rows`` (a missing key is empty) under the header ``columns`` to ``path``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(row.get(column), column) for column in columns] for row in rows)
