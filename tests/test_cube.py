"""heliocube.cube: streaming HDF5 cubes, atomic close, VDS master, xarray view."""

from __future__ import annotations

import csv
import os

import h5py
import numpy as np
import pytest
from astropy.io import fits

from heliocube.cube import CubeWriter, build_master, open_cube_xarray, times_csv_path


def _frame(i, shape=(8, 8)):
    frame = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape) + 1000 * i
    frame[0, 0] = np.nan  # off-disk style missing pixel
    return frame


def _row(i, year=2010):
    return {
        "slot_time": f"{year}-01-01T{i:02d}:00:00",
        "obs_time": f"{year}-01-01T{i:02d}:00:07.250",
        "dt": 7.25,
        "record_id": 100 + i,
        "url": f"https://example.org/{year}/{i}.fits",
        "sha256": f"{i:064x}",
        "qc_ok": True,
        "crpix1": 4.5 + i,
    }


def _header(i):
    header = fits.Header()
    header["TELESCOP"] = "SOHO"
    header["CRPIX1"] = 4.5 + i
    header.add_history(f"frame {i}")
    return header


def _write(path, n, *, year=2010, **kwargs):
    with CubeWriter(
        path, (8, 8), attrs={"variant": "eit195_8", "config_hash": "abc123", "units": "DN/s"}, **kwargs
    ) as w:
        for i in range(n):
            w.append(_frame(i + 100 * (year - 2010)), _row(i, year), _header(i) if i % 2 else _header(i).tostring())
    return path


def test_round_trip_plain_h5py(tmp_path):
    path = _write(tmp_path / "cube.h5", 3)
    with h5py.File(path, "r") as f:
        data = f["data"]
        assert data.dtype == np.float32 and data.shape == (3, 8, 8)
        assert data.chunks == (1, 8, 8) and data.maxshape == (None, 8, 8)
        assert data.compression == "gzip" and data.compression_opts == 4 and data.shuffle
        for i in range(3):
            np.testing.assert_array_equal(data[i], _frame(i))  # NaN positions compare equal
        assert np.isnan(data[:, 0, 0]).all()
        frames = f["frames"]
        assert list(frames["slot_time"].asstr()[()]) == [_row(i)["slot_time"] for i in range(3)]
        assert frames["record_id"].dtype == np.int64 and list(frames["record_id"][()]) == [100, 101, 102]
        assert frames["dt"].dtype == np.float64 and frames["qc_ok"].dtype == bool
        np.testing.assert_array_equal(frames["crpix1"][()], [4.5, 5.5, 6.5])
        assert h5py.check_string_dtype(frames["url"].dtype).encoding == "utf-8"
        headers = f["headers"].asstr()[()]
        assert len(headers) == 3
        parsed = fits.Header.fromstring(headers[1], sep="\n")
        assert parsed["CRPIX1"] == 5.5 and "frame 1" in str(parsed["HISTORY"])
        assert fits.Header.fromstring(headers[0])["TELESCOP"] == "SOHO"  # a str header is stored verbatim
        attrs = f.attrs
        assert attrs["variant"] == "eit195_8" and attrs["config_hash"] == "abc123" and attrs["units"] == "DN/s"
        assert attrs["n_frames"] == 3 and attrs["created"].endswith("Z")
        for name in ("heliocube", "numpy", "astropy", "sunpy", "h5py"):
            assert attrs[f"version_{name}"]
        assert attrs["version_h5py"] == h5py.__version__
    with open(times_csv_path(path), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["slot_time", "obs_time"] and len(rows) == 4
    assert rows[2] == [_row(1)["slot_time"], _row(1)["obs_time"]]
    assert sorted(os.listdir(tmp_path)) == ["cube.h5", "cube_times.csv"]  # no temporary left


def test_integer_frames_become_float32_and_missing_values(tmp_path):
    path = tmp_path / "c.h5"
    with CubeWriter(path, (4, 4), compression=None) as w:
        w.append(np.full((4, 4), 32767, dtype=np.int16), {"slot_time": "t0", "q": 1.5, "s": "a"}, "")
        w.append(np.zeros((4, 4), dtype=np.uint8), {"slot_time": "t1", "q": None}, "")
        with pytest.raises(ValueError, match="not in the first row"):
            w.append(np.zeros((4, 4)), {"slot_time": "t2", "new": 1}, "")
        with pytest.raises(ValueError, match="does not match"):
            w.append(np.zeros((4, 5)), {"slot_time": "t2"}, "")
    with h5py.File(path, "r") as f:
        assert f["data"].dtype == np.float32 and f["data"][0, 0, 0] == 32767.0
        assert f["data"].compression is None and f["data"].shape == (2, 4, 4)
        assert np.isnan(f["frames/q"][1]) and f["frames/s"].asstr()[1] == ""


def test_failure_inside_with_leaves_no_file(tmp_path):
    path = tmp_path / "cube.h5"
    with pytest.raises(RuntimeError, match="boom"), CubeWriter(path, (8, 8)) as w:
        w.append(_frame(0), _row(0), _header(0))
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    # an existing complete cube is left untouched by a failed rewrite
    _write(path, 2)
    before = path.read_bytes()
    with pytest.raises(KeyError), CubeWriter(path, (8, 8)) as w:
        w.append(_frame(0), _row(0), _header(0))
        raise KeyError("x")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cube.h5", "cube_times.csv"]


def test_partial_file_is_hidden_while_writing(tmp_path):
    path = tmp_path / "cube.h5"
    with CubeWriter(path, (8, 8)) as w:
        w.append(_frame(0), _row(0), _header(0))
        assert not path.exists()
        (partial,) = os.listdir(tmp_path)
        assert partial.startswith(".cube.h5.partial-")
    assert path.exists()


def test_master_vds_equals_concatenation(tmp_path):
    years = {2010: 3, 2011: 2, 2012: 4}
    paths = [_write(tmp_path / "years" / f"eit_{y}.h5", n, year=y) for y, n in years.items()]
    master = build_master(tmp_path / "eit_master.h5", paths)
    with h5py.File(master, "r") as m:
        assert m["data"].is_virtual and m["frames/slot_time"].is_virtual and m["headers"].is_virtual
        assert m.attrs["n_frames"] == 9 and m.attrs["variant"] == "eit195_8"
        parts = {}
        for p in paths:
            with h5py.File(p, "r") as f:
                for key in ("data", "headers", *[f"frames/{c}" for c in f["frames"]]):
                    parts.setdefault(key, []).append(f[key][()])
        for key, chunks in parts.items():
            np.testing.assert_array_equal(m[key][()], np.concatenate(chunks), err_msg=key)
        assert list(m["frames/slot_time"].asstr()[3:5]) == ["2011-01-01T00:00:00", "2011-01-01T01:00:00"]
    # rewriting one year is seen through the unchanged master; relative sources survive a move of the tree
    _write(paths[1], 2, year=2011 + 50)
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    os.rename(tmp_path, moved)
    cwd = os.getcwd()
    try:
        os.chdir("/")
        with h5py.File(moved / "eit_master.h5", "r") as m:
            np.testing.assert_array_equal(m["data"][3], _frame(5100))
            np.testing.assert_array_equal(m["data"][0], _frame(0))
    finally:
        os.chdir(cwd)


def test_master_rejects_mismatched_years(tmp_path):
    a = _write(tmp_path / "a.h5", 1)
    with CubeWriter(tmp_path / "b.h5", (4, 4)) as w:
        w.append(np.zeros((4, 4)), _row(0), "")
    with pytest.raises(ValueError, match="frame shape"):
        build_master(tmp_path / "m.h5", [a, tmp_path / "b.h5"])
    assert not (tmp_path / "m.h5").exists()


def test_xarray_helper(tmp_path):
    path = _write(tmp_path / "cube.h5", 3)
    with open_cube_xarray(path) as ds:
        assert ds["data"].dims == ("time", "y", "x") and ds["data"].shape == (3, 8, 8)
        assert ds["data"].dtype == np.float32
        assert ds["time"].dtype.kind == "M" and str(ds["time"].values[1])[:19] == "2010-01-01T01:00:00"
        np.testing.assert_array_equal(ds["data"].isel(time=2).values, _frame(2))
        np.testing.assert_array_equal(
            ds["data"].isel(time=[0, 2], x=slice(2, 5)).values, np.stack([_frame(0), _frame(2)])[:, :, 2:5]
        )
        assert list(ds["record_id"].values) == [100, 101, 102]
        assert ds.attrs["units"] == "DN/s"
        sel = ds.sel(time="2010-01-01T01:00:00")
        np.testing.assert_array_equal(sel["data"].values, _frame(1))
    loaded = open_cube_xarray(path, load=True)
    np.testing.assert_array_equal(loaded["data"].values[1], _frame(1))
    master = build_master(tmp_path / "m.h5", [path])
    with open_cube_xarray(master) as ds:
        np.testing.assert_array_equal(ds["data"].values, loaded["data"].values)
