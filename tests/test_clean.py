"""Clean stage and cube assembly on frames fetched from the embedded archive (no QC: exact slot sets)."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import sunpy.map
from astropy.io import fits

from heliocube.assemble import CUBE_COLUMNS, build_product_master, build_year_cube
from heliocube.clean import (
    RawCacheMismatch,
    clean_days,
    day_frames_path,
    frame_digest,
    read_index,
    slots_on_grid,
)
from heliocube.cube import open_cube_xarray
from heliocube.header import with_record_keywords
from heliocube.jobs import clean_job
from heliocube.qc.gate import read_frame
from heliocube.resize import resize_frame
from heliocube.variants import Variant, variants_of

from .conftest import FRAME, demo_config
from .corrupt import CORRUPTIONS, corrupt
from .test_fetch import DAY, query_and_fetch

MEAN_32 = Variant("32px-mean-6h", 32, "mean", dt.timedelta(hours=6), {})
SUB_16_12H = Variant("16px-subsample-12h", 16, "subsample", dt.timedelta(hours=12), {})


@pytest.fixture
def fetched(clean_context_for):
    """EIT195 and HMI_720s slots of one day, fetched without QC."""
    config, context = clean_context_for(products=["EIT195", "HMI_720s"])
    return config, {name: query_and_fetch(name, config, context)[0] for name in ("EIT195", "HMI_720s")}


@pytest.mark.parametrize("name", ["EIT195", "HMI_720s"])
def test_cleaned_frames_are_the_resized_raw_frames_with_provenance(fetched, name):
    config, slots = fetched
    root = config["output_root"]
    index, ledger = clean_days(name, MEAN_32, [DAY], slots[name], root, anchor=DAY)
    assert ledger.empty and len(index) == 4 and list(index.columns) == list(CUBE_COLUMNS)
    path = day_frames_path(root, MEAN_32.name, name, DAY)
    with fits.open(path) as hdul:
        assert hdul[0].header["NFRAMES"] == 4 and len(hdul) == 5
        for (_, row), (_, slot) in zip(index.iterrows(), slots[name].iterrows(), strict=True):
            hdu = hdul[int(row["hdu"])]
            raw, raw_header = read_frame(Path(root, slot["path"]))
            keywords = slot["keywords"] if isinstance(slot["keywords"], str) else None  # as-is JSOC files
            expected, expected_header = resize_frame(raw, with_record_keywords(raw_header, keywords), 32, "mean")
            np.testing.assert_array_equal(hdu.data, expected)
            assert hdu.data.dtype.kind == "f" and hdu.header["BITPIX"] == -32
            assert hdu.header["HC_RECID"] == slot["record_id"] and hdu.header["HC_SHA"] == slot["sha256"]
            assert hdu.header["CRPIX1"] == pytest.approx(expected_header["CRPIX1"])
            assert row["frame_sha256"] == frame_digest(hdu.data) and row["abs_dt_seconds"] == abs(slot["dt_seconds"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = sunpy.map.Map(path)
    assert len(maps) == 4 and maps[0].data.shape == (32, 32)


def test_a_coarser_variant_keeps_only_its_own_grid_and_per_frame_names(fetched):
    config, slots = fetched
    root = config["output_root"]
    index, _ = clean_days("EIT195", SUB_16_12H, [DAY], slots["EIT195"], root, anchor=DAY, per_frame_fits=True)
    assert list(index["slot_time"]) == ["2010-10-15T00:00:00", "2010-10-15T12:00:00"]
    names = sorted(p.name for p in Path(root, "frames", SUB_16_12H.name, "EIT195", "per-frame").iterdir())
    assert len(names) == 2 and all(n.startswith("SOHO_EIT195_20101015") and n.endswith("_16.fits") for n in names)
    times = pd.Series(["2010-10-15T00:00:00+00:00", "2010-10-15T06:00:00+00:00", "2010-10-16T12:00:00+00:00"])
    assert list(slots_on_grid(times, dt.timedelta(hours=12), DAY)) == [True, False, True]


def test_an_unreadable_raw_file_without_a_recorded_digest_goes_to_the_ledger(fetched):
    config, slots = fetched
    root = config["output_root"]
    broken = Path(root, slots["EIT195"]["path"].iloc[1])
    broken.write_bytes(broken.read_bytes()[:1000])
    table = slots["EIT195"].assign(sha256=None)  # e.g. a slot table of an older version: nothing to compare with
    index, ledger = clean_days("EIT195", MEAN_32, [DAY], table, root, anchor=DAY)
    assert len(index) == 3 and list(ledger["reason"]) == ["clean_failed"]
    assert ledger["record_id"].iloc[0] == slots["EIT195"]["record_id"].iloc[1]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_raw_file_changed_since_its_fetch_is_never_cleaned_and_fails_the_job(fetched, tmp_path, how):
    """The clean stage cannot download: a raw file whose sha256 differs from the fetch's gets a cache_mismatch
    ledger row and no frame (not a frame from other bytes, not a silent clean_failed), and the job fails naming
    the file, both digests and the command that repairs it."""
    config, slots = fetched
    root = config["output_root"]
    table = slots["EIT195"]
    victim = Path(root, table["path"].iloc[1])
    corrupt(victim, how, Path(root, table["path"].iloc[2]))
    index, ledger = clean_days("EIT195", MEAN_32, [DAY], table, root, anchor=DAY)
    assert table["record_id"].iloc[1] not in set(index["record_id"]) and len(index) == 3
    assert list(ledger["reason"]) == ["cache_mismatch"] and ledger["record_id"].iloc[0] == table["record_id"].iloc[1]
    with fits.open(day_frames_path(root, MEAN_32.name, "EIT195", DAY)) as hdul:
        assert [h.header["HC_RECID"] for h in hdul[1:]] == list(index["record_id"])

    slots_path = tmp_path / "2010-10.slots.csv"
    table.to_csv(slots_path, index=False)
    outputs = tmp_path / "index.csv", tmp_path / "ledger.csv"
    with pytest.raises(RawCacheMismatch) as failure:
        clean_job(config, "EIT195", MEAN_32.as_params(), [DAY.isoformat()], str(slots_path), *map(str, outputs))
    message = str(failure.value)
    assert table["path"].iloc[1] in message and table["sha256"].iloc[1] in message
    assert f"heliocube verify {root} --repair" in message
    assert not any(p.exists() for p in outputs)  # a failed job leaves no table a rerun would take as done


def test_cube_copies_the_frames_exactly_and_the_master_joins_years(fetched, tmp_path):
    config, slots = fetched
    root = config["output_root"]
    index, _ = clean_days("HMI_720s", MEAN_32, [DAY], slots["HMI_720s"], root, anchor=DAY)
    index_path = tmp_path / "2010-10.index.csv"
    index.to_csv(index_path, index=False)
    assert read_index(index_path)["url"].tolist() == index["url"].tolist()
    year = tmp_path / "cubes" / "2010.h5"
    empty_year = tmp_path / "cubes" / "2011.h5"
    options = {"compression": "gzip", "compression_level": 4, "shuffle": True}
    attrs = {"variant": MEAN_32.name, "config_hash": "x" * 64}
    n = build_year_cube([index_path], root, year, frame_size=32, units="Gauss", attrs=attrs, compression=options)
    assert n == 4
    assert build_year_cube([], root, empty_year, frame_size=32, units="Gauss", attrs=attrs,
                           compression=options) == 0
    master = build_product_master(tmp_path / "cubes" / "HMI_720s.h5", [year, empty_year])
    with h5py.File(master, "r") as cube, fits.open(day_frames_path(root, MEAN_32.name, "HMI_720s", DAY)) as hdul:
        assert cube["data"].shape == (4, 32, 32) and cube.attrs["units"] == hdul[1].header.get("BUNIT", "Gauss")
        for i in range(4):
            np.testing.assert_array_equal(cube["data"][i], hdul[i + 1].data)
        assert [s.decode() for s in cube["frames"]["record_id"][()]] == slots["HMI_720s"]["record_id"].tolist()
    with h5py.File(empty_year, "r") as cube:
        assert cube["data"].shape == (0, 32, 32) and set(cube["frames"]) == set(CUBE_COLUMNS)
    assert pd.read_csv(tmp_path / "cubes" / "HMI_720s_times.csv").shape == (4, 2)
    with open_cube_xarray(master) as ds:
        assert str(ds["time"].values[0]).startswith("2010-10-15T00")


def test_a_frame_changed_after_cleaning_stops_the_cube(fetched, tmp_path):
    config, slots = fetched
    root = config["output_root"]
    index, _ = clean_days("EIT195", MEAN_32, [DAY], slots["EIT195"], root, anchor=DAY)
    index_path = tmp_path / "index.csv"
    index.to_csv(index_path, index=False)
    path = day_frames_path(root, MEAN_32.name, "EIT195", DAY)
    with fits.open(path, mode="update") as hdul:
        hdul[2].data[0, 0] += 1
    with pytest.raises(ValueError, match="differs from the frame"):
        build_year_cube([index_path], root, tmp_path / "c.h5", frame_size=32, units="DN", attrs={},
                        compression={"compression": "none"})
    assert not (tmp_path / "c.h5").exists()


def test_variant_names_and_sweep_checks(tmp_path):
    config = demo_config("http://127.0.0.1:1/", tmp_path, variants=[
        {"image_size": 32}, {"image_size": 16, "resize_method": "subsample", "cadence": "12h"}])
    assert [v.name for v in variants_of(config)] == ["32px-mean-6h", "16px-subsample-12h"]
    assert [v.name for v in variants_of(demo_config("http://127.0.0.1:1/", tmp_path))] == ["32px-mean-6h"]
    assert FRAME % 32 == 0


def test_blank_pixels_of_integer_frames_never_enter_a_mean():
    """read_frame keeps integer frames as stored: clean_frame treats their BLANK pixels as missing (NaN)."""
    from heliocube.clean import clean_frame

    data = np.array([[1, 3, -32768, -32768], [5, 7, -32768, -32768], [2, -32768, 4, 4], [2, 2, 4, 4]], np.int16)
    header = fits.Header({"BITPIX": 16, "NAXIS": 2, "NAXIS1": 4, "NAXIS2": 4, "BLANK": -32768, "CDELT1": 1.0,
                          "CDELT2": 1.0, "CRPIX1": 2.5, "CRPIX2": 2.5})  # fmt: skip
    variant = Variant("2px-mean-6h", 2, "mean", dt.timedelta(hours=6), {})
    frame, new = clean_frame(data, header, "EIT195", variant)
    np.testing.assert_array_equal(frame, np.array([[4, np.nan], [2, 4]], np.float32))
    assert frame.dtype == np.float32 and "BLANK" not in new and header["BLANK"] == -32768
    whole, _ = clean_frame(np.where(data == -32768, 9, data).astype(np.int16), header, "EIT195", variant)
    assert whole.dtype == np.float32 and not np.isnan(whole).any()  # no BLANK pixel: integers resized directly
