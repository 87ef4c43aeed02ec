"""heliocube.tablecsv writes the bytes pandas writes (``DataFrame(rows, columns).to_csv(index=False)``) for tables of
str, int and float columns with empty cells, and reads back the text pandas' writer wrote."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from heliocube.tablecsv import read_rows, write_rows

COLUMNS = ["text", "number", "count", "maybe"]


def _pandas_bytes(rows, columns, path) -> bytes:
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path.read_bytes()


def test_tricky_values_are_written_as_pandas_writes_them(tmp_path):
    rng = np.random.default_rng(17)
    floats = [0.0, -0.0, 1.0, 0.1, -0.31000000000000005, 1e-05, 0.0001, 1e16, 9999999999999998.0, 2.0 ** 53,
              123456789012345.6, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan,
              *rng.normal(0, 1e3, 200).tolist(), *rng.lognormal(0, 20, 200).tolist()]
    texts = ["", "plain", "a,comma", 'a "quote"', "new\nline", "carriage\rreturn", " spaced ", "ünïcode ☉",
             '{"CDELT1": 0.6, "CTYPE1": "HPLN-TAN"}', "nan", "-", "#"]
    rows = [{"text": texts[i % len(texts)], "number": value, "count": i, "maybe": None if i % 3 else texts[i % 5]}
            for i, value in enumerate(floats)]
    write_rows(rows, COLUMNS, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == _pandas_bytes(rows, COLUMNS, tmp_path / "pandas.csv")


def test_empty_tables_and_missing_keys_are_written_as_pandas_writes_them(tmp_path):
    write_rows([], COLUMNS, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_bytes() == _pandas_bytes([], COLUMNS, tmp_path / "pandas-empty.csv")
    rows = [{"text": "only text"}, {"count": 3, "maybe": None}]
    write_rows(rows, COLUMNS, tmp_path / "sparse.csv")
    assert (tmp_path / "sparse.csv").read_bytes() == b'text,number,count,maybe\nonly text,,,\n,,3,\n'


def test_a_value_pandas_would_format_by_its_dtype_is_refused(tmp_path):
    with pytest.raises(TypeError, match="number"):
        write_rows([{"number": np.float32(1.5)}], COLUMNS, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_rows_read_back_are_the_text_pandas_wrote(tmp_path):
    rows = [{"text": 'a "quote", and\nmore', "number": 0.1, "count": 2, "maybe": None}]
    path = tmp_path / "table.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    assert read_rows(path) == [{"text": 'a "quote", and\nmore', "number": "0.1", "count": "2", "maybe": ""}]


def test_numpy_doubles_are_written_as_the_floats_they_are(tmp_path):
    """np.float64 is a float, but numpy 2 reprs it as ``np.float64(0.5)``: it is written as pandas writes it."""
    rows = [{"number": np.float64(0.5), "count": 1}, {"number": np.float64(-1e-300), "count": 2}]
    write_rows(rows, COLUMNS, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == _pandas_bytes(rows, COLUMNS, tmp_path / "pandas.csv")
