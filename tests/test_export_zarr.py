"""The Zarr store of a synced experiment: bit-for-bit rows, SDOML v2's notebook steps, xarray, one year per job."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pandas as pd
import pytest
import sunpy.map
import xarray as xr
import zarr

from heliocube.cube import CubeWriter
from heliocube.export.years import export_year_params, export_years_of
from heliocube.export.zarr_store import consolidate_store, header_lists, write_year
from heliocube.sync import sync_experiment

SHAPE = (8, 8)
#: Two days across new year, every 6 h; AIA with varying exposure, LASCO differenced (negative values).
START, FINISH = "2010-12-31", "2011-01-01"


def _header(product: str, obs: str, exptime: float) -> str:
    cards = {
        "SIMPLE": "T", "NAXIS": "2", "NAXIS1": str(SHAPE[1]), "NAXIS2": str(SHAPE[0]),
        "TELESCOP": "'SDO/AIA'" if product == "AIA171" else "'SOHO'",
        "INSTRUME": "'AIA_3'" if product == "AIA171" else "'LASCO'", "WAVELNTH": "171", "WAVEUNIT": "'angstrom'",
        "DATE-OBS": f"'{obs}'", "T_OBS": f"'{obs}Z'", "EXPTIME": repr(exptime),
        "CTYPE1": "'HPLN-TAN'", "CTYPE2": "'HPLT-TAN'", "CUNIT1": "'arcsec'", "CUNIT2": "'arcsec'",
        "CDELT1": "300.0", "CDELT2": "300.0", "CRPIX1": "4.5", "CRPIX2": "4.5", "CRVAL1": "0.0", "CRVAL2": "0.0",
        "DSUN_OBS": "1.496E+11", "HGLN_OBS": "0.0", "HGLT_OBS": "0.0", "BUNIT": "'DN'",
    }
    lines = [f"{key:<8}= {value:>20}" for key, value in cards.items()]
    return "\n".join([*lines, "COMMENT first", "COMMENT second"])


def _cube(path: Path, product: str, obs_times: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    attrs = {"variant": "test-6h", "config_hash": "cfg", "units": "DN", "cadence": "6h"}
    with CubeWriter(path, SHAPE, attrs=attrs) as writer:
        for i, obs in enumerate(obs_times):
            frame = rng.normal(100, 30, size=SHAPE).astype(np.float32)
            frame[0, 0] = np.nan
            row = {"slot_time": obs[:13] + ":00:00", "obs_time": obs, "record_id": f"{product}-{i}",
                   "sha256": f"{seed:02d}{i:062x}", "qc_hole_fraction": i / 100, "qc_ok": bool(i % 2)}
            writer.append(frame, row, _header(product, obs, 1.0 + (i % 3)))


def make_synced(tmp_path: Path, finish: str = FINISH, name: str = "x") -> Path:
    """A synced file of AIA171 and a LASCO C2 running difference, from cubes written by the package."""
    days = pd.date_range(START, finish, freq="D")
    times = [t + pd.Timedelta(hours=h, minutes=1) for t in days for h in (0, 6, 12, 18)]
    obs = [t.strftime("%Y-%m-%dT%H:%M:%S") for t in times]
    cubes = {"AIA171": tmp_path / f"aia-{finish}.h5", "LASCO_C2": tmp_path / f"c2-{finish}.h5"}
    _cube(cubes["AIA171"], "AIA171", obs, seed=1)
    _cube(cubes["LASCO_C2"], "LASCO_C2", obs, seed=2)
    result = sync_experiment(tmp_path / f"{name}-{finish}.h5", cubes, experiment=name, start=START, finish=finish,
                             step="6h", running_difference=True, difference_products=["LASCO_C2"])
    return Path(result.path)


def export(synced: Path, store: Path, chunk_frames: int = 120, years=None) -> Path:
    with h5py.File(synced, "r") as f:
        all_years = sorted({t.decode()[:4] for t in f["time"][()]})
    for year in years or all_years:
        write_year(synced, store, year, chunk_frames=chunk_frames)
    consolidate_store(store, all_years, {"experiment": "x"})
    return store


@pytest.fixture
def synced(tmp_path):
    return make_synced(tmp_path)


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)  # NaN payloads compared too


@pytest.mark.parametrize("chunk_frames", [1, 3, 120])
def test_year_groups_hold_the_synced_rows_bit_for_bit(synced, tmp_path, chunk_frames):
    store = export(synced, tmp_path / "x.zarr", chunk_frames)
    root = zarr.open_group(store, mode="r")
    assert sorted(root.group_keys()) == ["2010", "2011"] and root.attrs["channels"] == ["AIA_0171", "LASCO_C2"]
    with h5py.File(synced, "r") as f:
        times = np.array([t.decode() for t in f["time"][()]])
        for year in ("2010", "2011"):
            rows = np.flatnonzero(np.char.startswith(times, year))
            assert len(rows) > 0 and np.all(np.diff(rows) == 1)
            group = root[year]
            for product, channel in (("AIA171", "AIA_0171"), ("LASCO_C2", "LASCO_C2")):
                array = group[channel]
                assert array.dtype == np.float32 and array.chunks == (chunk_frames, *SHAPE)
                expected = f[product]["data"][rows[0]:rows[-1] + 1]
                np.testing.assert_array_equal(_bits(array[:]), _bits(expected))
                record = f[product]["frames"]["record_id"][rows[0]:rows[-1] + 1].astype(str)
                assert list(group[f"{channel}_record_id"][:]) == list(record)
                sha = f[product]["frames"]["sha256"][rows[0]:rows[-1] + 1].astype(str)
                assert list(group[f"{channel}_sha256"][:]) == list(sha)
            assert (group["LASCO_C2"][:][np.isfinite(group["LASCO_C2"][:])] < 0).any()  # differences
    assert not list(tmp_path.glob(".*partial*"))


def test_xarray_opens_a_year_with_a_decoded_time_coordinate(synced, tmp_path):
    store = export(synced, tmp_path / "x.zarr")
    with h5py.File(synced, "r") as f:
        times = pd.to_datetime([t.decode() for t in f["time"][()]])
        obs = pd.to_datetime([t.decode() for t in f["AIA171"]["obs_time"][()]])
        dt_seconds = f["AIA171"]["dt_seconds"][()]
    ds = xr.open_zarr(store, group="2011")
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    in_2011 = times.year == 2011
    np.testing.assert_array_equal(ds["time"].values, times[in_2011].to_numpy())
    np.testing.assert_array_equal(ds["AIA_0171_obs_time"].values, obs[in_2011].to_numpy())
    np.testing.assert_array_equal(ds["AIA_0171_dt_seconds"].values, dt_seconds[in_2011])
    assert ds["AIA_0171"].dims == ("time", "y", "x")
    assert ds["previous_time"].dtype == np.dtype("datetime64[ns]")
    assert ds["AIA_0171"].sel(time="2011-01-01T06:00").shape == SHAPE
    assert ds["AIA_0171_qc_hole_fraction"].dtype == np.float64


def test_the_sdoml_v2_notebook_steps_work_on_the_store(synced, tmp_path):
    store = export(synced, tmp_path / "x.zarr", chunk_frames=2)
    root = zarr.group(zarr.storage.LocalStore(store))
    data = root["2010"]["AIA_0171"]
    all_image = da.from_array(data)
    assert all_image.shape == data.shape and data.chunks == (2, *SHAPE)
    # 2a. select by header keyword
    assert "EXPTIME" in sorted(data.attrs)
    exptime = np.array(data.attrs["EXPTIME"])
    t_obs = np.array(data.attrs["T_OBS"])
    index = np.where(exptime < 2.0)
    selected = da.from_array(data)[index[0], :, :]
    assert 0 < selected.shape[0] < data.shape[0]
    np.testing.assert_array_equal(selected.compute(), data[:][exptime < 2.0])
    # 2b. index ranges, with the matching header slices
    selected = da.from_array(data)[1:3, :, :]
    header = {keys: values[1:3] for keys, values in data.attrs.items()}
    assert len(header["DATE-OBS"]) == 2 and np.isfinite(da.nanmean(selected).compute())
    # 2c. spatial downsampling
    sub_index = np.arange(0, SHAPE[0], 2)
    sub_image = da.from_array(data)[0:3, sub_index, :][:, :, sub_index]
    assert sub_image.shape == (3, SHAPE[0] // 2, SHAPE[1] // 2)
    # 2d. temporal downsampling with pandas on T_OBS
    df_time = pd.DataFrame(t_obs, index=np.arange(np.shape(t_obs)[0]), columns=["Time"])
    df_time["Time"] = pd.to_datetime(df_time["Time"])
    wanted = pd.date_range(start="2010-12-31 00:00:00", end="2010-12-31 23:59:59", freq="12h", tz="UTC")
    time_index = [int(np.argmin(abs(df_time["Time"] - t))) for t in wanted]
    assert da.from_array(data)[time_index, :, :].shape == (2, *SHAPE)
    # 3. a sunpy Map from (frame, header)
    img_index = 1
    selected_image = da.from_array(data)[img_index, :, :]
    selected_header = {keys: values[img_index] for keys, values in data.attrs.items()}
    my_map = sunpy.map.Map((np.array(selected_image), selected_header))
    assert my_map.data.shape == SHAPE and my_map.exposure_time.value == exptime[img_index]
    assert str(my_map.date.isot).startswith(str(t_obs[img_index])[:19])
    assert selected_header["COMMENT"] == "first\nsecond"


def test_header_lists_keep_one_value_per_frame_and_none_where_absent():
    headers = ["A       =                    1\nB       = 'x'", "", "A       =                  2.5"]
    assert header_lists(headers) == {"A": [1, None, 2.5], "B": ["x", None, None]}
    assert header_lists(headers, ["B", "C"]) == {"B": ["x", None, None], "C": [None, None, None]}


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*")
            if p.is_file()}


def test_extending_the_range_rewrites_only_the_new_year(tmp_path):
    first = make_synced(tmp_path, finish="2011-01-01")
    store = export(first, tmp_path / "x.zarr")
    before = _files(store / "2010")
    extended = make_synced(tmp_path, finish="2011-01-03")
    write_year(extended, store, "2011")  # what the workflow plans: the 2011 job only
    consolidate_store(store, ["2010", "2011"], {"experiment": "x"})
    assert _files(store / "2010") == before
    ds = xr.open_zarr(store, group="2011")
    with h5py.File(extended, "r") as f:
        times = pd.to_datetime([t.decode() for t in f["time"][()]])
        np.testing.assert_array_equal(ds["time"].values, times[times.year == 2011].to_numpy())
        rows = np.flatnonzero(times.year == 2011)
        np.testing.assert_array_equal(_bits(ds["AIA_0171"].values), _bits(f["AIA171"]["data"][rows[0]:]))
    assert len(xr.open_zarr(store, group="2010")["time"]) == 3  # 00:00 has no previous row to difference
    # the job parameters of 2010 do not change with the extension, those of 2011 do
    spec = {"name": "x", "products": ["AIA171"], "step": "6h", "date_start": START, "date_finish": "2011-01-01"}
    longer = {**spec, "date_finish": "2011-01-03"}
    assert export_year_params(spec, "2010", {}) == export_year_params(longer, "2010", {})
    assert export_year_params(spec, "2011", {}) != export_year_params(longer, "2011", {})
    assert export_years_of(longer) == ["2010", "2011"]


def test_a_shrunk_range_leaves_no_stale_year_and_a_failed_write_keeps_the_old_group(synced, tmp_path, monkeypatch):
    store = export(synced, tmp_path / "x.zarr")
    consolidate_store(store, ["2010"], {"experiment": "x"})
    assert not (store / "2011").exists() and sorted(zarr.open_group(store, mode="r").group_keys()) == ["2010"]
    before = _files(store / "2010")
    from heliocube.export import zarr_store

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zarr_store, "header_lists", broken)
    with pytest.raises(OSError, match="disk full"):
        write_year(synced, store, "2010")
    assert _files(store / "2010") == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("chunk_frames", [1, 2])
def test_all_nan_chunks_are_left_out_and_the_last_partial_chunk_is_trimmed(synced, tmp_path, chunk_frames):
    # the writer pads the array to whole chunks and trims it after, and skips all-NaN chunks itself (zarr's own
    # check is off): the store must still be what zarr writes, an n-row array without the empty chunks' files
    with h5py.File(synced, "r+") as f:
        f["LASCO_C2"]["data"][1] = np.nan  # a row kept without a frame (keep_missing)
    store = export(synced, tmp_path / "x.zarr", chunk_frames=chunk_frames)
    root = zarr.open_group(store, mode="r")
    with h5py.File(synced, "r") as f:
        times = np.array([t.decode() for t in f["time"][()]])
        rows = np.flatnonzero(np.char.startswith(times, "2010"))
        expected = f["LASCO_C2"]["data"][rows[0]:rows[-1] + 1]
    array = root["2010"]["LASCO_C2"]
    assert array.shape == (len(rows), *SHAPE)
    chunks = range(-(-len(rows) // chunk_frames))
    with_data = {c for c in chunks if not np.isnan(expected[c * chunk_frames:(c + 1) * chunk_frames]).all()}
    written = {int(p.parts[-3]) for p in (store / "2010" / "LASCO_C2" / "c").glob("*/*/*")}
    assert written == with_data
    if chunk_frames == 1:
        assert with_data == set(chunks) - {1}
    else:
        assert len(rows) % chunk_frames != 0  # a partial last chunk
    np.testing.assert_array_equal(_bits(array[:]), _bits(expected))
