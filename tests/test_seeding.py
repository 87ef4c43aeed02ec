"""Metadata seeding against the embedded archive: real drms over real HTTP, cubes built from fetched frames."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import warnings
from pathlib import Path
from urllib.parse import parse_qs

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive import ArchiveServer, FaultConfig, jsoc
from heliocube.assemble import build_product_master, build_year_cube
from heliocube.clean import clean_days
from heliocube.cube import CubeWriter
from heliocube.header import SCALE_KEYWORD, rescale_header
from heliocube.query.jsoc import jsoc_client
from heliocube.registry import get_product
from heliocube.seeding import ALL_KEYWORDS, DEFAULT_KEYWORDS, SeedingError, seed_metadata
from heliocube.variants import Variant

from .conftest import make_context
from .test_fetch import DAY, query_and_fetch

DAYS = (DAY, DAY + dt.timedelta(days=1))
MEAN_32 = Variant("32px-mean-6h", 32, "mean", dt.timedelta(hours=6), {})
SUB_16 = Variant("16px-subsample-6h", 16, "subsample", dt.timedelta(hours=6), {})
PRODUCTS = ("HMI_720s", "MDI_96m")
COMPRESSION = {"compression": "gzip", "compression_level": 4, "shuffle": True}


@pytest.fixture(scope="module")
def server(clean_mission):
    with ArchiveServer(clean_mission) as srv:
        yield srv


@pytest.fixture(scope="module")
def built(server, tmp_path_factory):
    """Per product: year cubes (mean to 32 px, subsample to 16 px) of two fetched days, and the archive context."""
    root = tmp_path_factory.mktemp("seeding")
    config, context = make_context(server, root / "out", products=list(PRODUCTS))
    cubes = {}
    for name in PRODUCTS:
        slots = query_and_fetch(name, config, context, days=DAYS)[0]
        for variant in (MEAN_32, SUB_16):
            index, ledger = clean_days(name, variant, DAYS, slots, config["output_root"], anchor=DAY)
            assert ledger.empty and len(index) == 8
            index_path = root / f"{name}-{variant.name}.index.csv"
            index.to_csv(index_path, index=False)
            path = root / "cubes" / variant.name / name / "2010.h5"
            attrs = {"variant": variant.name, "product": name, "resize_method": variant.resize_method,
                     "calibration": "{}", "config_hash": "x" * 64}
            build_year_cube([index_path], config["output_root"], path, frame_size=variant.image_size,
                            units=get_product(name).units, attrs=attrs, compression=COMPRESSION)
            cubes[name, variant.name] = path
    return context, cubes


def _fast(context):
    return dataclasses.replace(context, policy=dataclasses.replace(context.policy, retries=1, backoff=0.01))


def _strings(ds) -> list[str]:
    return [str(v) for v in ds.asstr()[()]]


def _reordered_copy(source: Path, target: Path, order, replace_record: dict | None = None) -> Path:
    """The cube's rows in another order (optionally with record ids replaced), written with CubeWriter."""
    with h5py.File(source, "r") as f:
        columns = {name: (f["frames"][name].asstr()[()] if h5py.check_string_dtype(f["frames"][name].dtype)
                          else f["frames"][name][()]) for name in f["frames"]}
        attrs = {k: v for k, v in f.attrs.items() if k in ("variant", "product", "resize_method", "calibration")}
        with CubeWriter(target, f["data"].shape[1:], attrs=attrs) as writer:
            for i in order:
                row = {name: values[i].item() if hasattr(values[i], "item") else values[i]
                       for name, values in columns.items()}
                if replace_record and row["record_id"] in replace_record:
                    row["record_id"] = replace_record[row["record_id"]]
                writer.append(f["data"][i], row, f["headers"].asstr()[i])
    return target


def _rs_list_calls(server, since: int) -> list[list[str]]:
    """Record sets of the rs_list calls logged after entry ``since``, split into their comma-joined parts."""
    calls = []
    for entry in server.access_log[since:]:
        query = parse_qs(entry["query"])
        if entry["path"].endswith("/jsoc_info") and query.get("op") == ["rs_list"]:
            calls.append(jsoc._split_top(query["ds"][0]))
    return calls


def _archive_header(server, context, record_id: str, keys) -> fits.Header:
    """The record's keywords asked for on their own (one record, one query), as a FITS header."""
    client = jsoc_client(context.jsoc_url, context.email)
    info = client.info(record_id.split("[")[0])
    row = client.query(record_id, key=list(keys), convert_numeric=False).iloc[0]
    header = fits.Header()
    for key in keys:
        text, kind = str(row[key]), info.keywords.loc[key, "type"]
        if kind in ("int", "double"):
            value = int(text, 0) if kind == "int" else float(text)
            if isinstance(value, float) and not math.isfinite(value):
                continue
        else:
            value = text
        header[key.replace("__", "-")] = value
    return header


@pytest.mark.parametrize("name", PRODUCTS)
def test_every_row_gets_its_own_record_in_batches(built, server, name):
    context, cubes = built
    source = cubes[name, MEAN_32.name]
    order = [5, 2, 7, 0, 3, 6, 1, 4]  # rows not in archive order: answers must be matched by record, not position
    shuffled = _reordered_copy(source, source.with_name("shuffled.h5"), order)
    out = source.with_name("seeded-shuffled.h5")
    before = len(server.access_log)
    result = seed_metadata(shuffled, out, context, batch_size=2)
    calls = _rs_list_calls(server, before)
    with h5py.File(shuffled, "r") as f:
        record_ids = _strings(f["frames"]["record_id"])
    assert result.n_rows == result.n_records == 8 and result.n_batches == 4 and result.unseeded_records == ()
    assert len(calls) == 4 and all(len(parts) <= 2 for parts in calls)
    assert sorted(p for parts in calls for p in parts) == sorted(record_ids)  # exactly the cube's records
    with h5py.File(out, "r") as f:
        assert f["seeded"][()].all()
        t_rec, t_obs = _strings(f["keywords"]["T_REC"]), _strings(f["keywords"]["T_OBS"])
        exptime = f["keywords"]["EXPTIME"][()]
        headers = [fits.Header.fromstring(h, sep="\n") for h in _strings(f["headers"])]
        assert _strings(f["frames"]["record_id"]) == record_ids
        assert f.attrs["seeded_series"] == result.series
        assert (out.parent / f.attrs["seeded_from"]).resolve() == shuffled.resolve()
        assert list(f.attrs["seeded_keywords"]) == list(result.keywords)
    for i, record_id in enumerate(record_ids):
        truth = server.mission.lookup(record_id)
        assert f"{result.series}[{t_rec[i]}]" == record_id and headers[i]["T_REC"] == t_rec[i]
        assert t_obs[i] == truth["t_obs"] == headers[i]["T_OBS"]
        assert exptime[i] == pytest.approx(truth["exptime"]) and headers[i]["HC_RECID"] == record_id
        assert headers[i]["DATE-OBS"].startswith(pd.Timestamp(truth["time_utc"]).strftime("%Y-%m-%dT%H:%M:%S"))


@pytest.mark.parametrize(("name", "variant"), [(p, MEAN_32) for p in PRODUCTS] + [("MDI_96m", SUB_16)])
def test_geometry_is_rescaled_exactly_once(built, server, name, variant):
    context, cubes = built
    source = cubes[name, variant.name]
    out = source.with_name("seeded.h5")
    seed_metadata(source, out, context)
    with h5py.File(source, "r") as f:
        record_ids = _strings(f["frames"]["record_id"])
        scales = f["frames"][SCALE_KEYWORD][()]
        pipeline = [fits.Header.fromstring(h, sep="\n") for h in _strings(f["headers"])]
    with h5py.File(out, "r") as f:
        seeded = [fits.Header.fromstring(h, sep="\n") for h in _strings(f["headers"])]
        raw_cdelt1 = f["keywords"]["CDELT1"][()]
        assert f.attrs["seeded_convention"] == ("corner" if variant is SUB_16 else "center")
    geometry = ["CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2", "CROTA2", "RSUN_OBS"]
    geometry += ["R_SUN", "X0", "Y0", "CROP_RAD"] if name == "MDI_96m" else []
    size = variant.image_size
    for i, record_id in enumerate(record_ids):
        assert scales[i] == server.mission.product(name).native_size / size  # native pixels per cube pixel
        archive = _archive_header(server, context, record_id, [k.replace("-", "__") for k in geometry])
        convention = "corner" if variant is SUB_16 else "center"
        expected = rescale_header(archive, scales[i], convention=convention, naxis=(size, size))
        twice = rescale_header(expected, scales[i], convention=convention, naxis=(size, size))
        for key in geometry:
            assert seeded[i][key] == expected[key], key  # exactly one rescale of the archive values
        assert seeded[i]["CDELT1"] == archive["CDELT1"] * scales[i] == raw_cdelt1[i] * scales[i]
        assert seeded[i]["CDELT1"] != twice["CDELT1"] and seeded[i]["CRPIX1"] != twice["CRPIX1"]
        assert seeded[i]["RSUN_OBS"] == archive["RSUN_OBS"]  # arcsec: never scaled
        assert (seeded[i]["NAXIS1"], seeded[i]["NAXIS2"], seeded[i][SCALE_KEYWORD]) == (size, size, scales[i])
        if variant is MEAN_32:  # the same grid the pipeline computed from the served file
            for key in ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2"):
                assert seeded[i][key] == pytest.approx(pipeline[i][key], rel=1e-9, abs=1e-9), key


def test_data_and_frames_are_copied_and_a_master_can_be_seeded(built, tmp_path):
    context, cubes = built
    year = cubes["HMI_720s", MEAN_32.name]
    master = build_product_master(tmp_path / "HMI_720s.h5", [year])
    for source in (year, master):
        out = tmp_path / f"seeded-{source.name}"
        seed_metadata(source, out, context, product="HMI_720s", resize_method="mean")
        with h5py.File(source, "r") as src, h5py.File(out, "r") as dst:
            assert not dst["data"].is_virtual and dst["data"].dtype == np.float32
            assert dst["data"][()].tobytes() == src["data"][()].tobytes()  # byte-equal, NaNs included
            assert set(dst["frames"]) == set(src["frames"])
            for column in src["frames"]:
                values, expected = dst["frames"][column][()], src["frames"][column][()]
                assert np.array_equal(values, expected, equal_nan=values.dtype.kind == "f"), column
            assert set(DEFAULT_KEYWORDS) & set(dst["keywords"]) >= {"CRPIX1", "CDELT1", "RSUN_OBS", "DSUN_OBS"}
            assert dst["keywords"]["CRPIX1"].dtype == np.float64 and dst["keywords"]["QUALITY"].attrs["jsoc_type"]
            assert dst.attrs["variant"] == src.attrs["variant"] and dst.attrs["n_unseeded"] == 0
    empty = tmp_path / "2011.h5"
    build_year_cube([], tmp_path, empty, frame_size=32, units="Gauss", compression=COMPRESSION,
                    attrs={"product": "HMI_720s", "resize_method": "mean"})
    result = seed_metadata(empty, tmp_path / "seeded-empty.h5", context)
    assert result.n_rows == result.n_batches == 0
    with h5py.File(tmp_path / "seeded-empty.h5", "r") as f:
        assert f["data"].shape == (0, 32, 32) and f["headers"].shape == f["keywords"]["T_REC"].shape == (0,)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_archive_down_is_a_clear_error_after_retries_and_writes_nothing(built, server, tmp_path):
    context, cubes = built
    source = cubes["MDI_96m", MEAN_32.name]
    out = tmp_path / "seeded.h5"
    before = len(server.access_log)
    server.faults = FaultConfig(rate=1.0, kinds=("http500",), match="jsoc_info")
    try:
        with pytest.raises(SeedingError, match="did not answer, after 2 attempts"):
            seed_metadata(source, out, _fast(context))
    finally:
        server.faults = FaultConfig()
    assert sum(e["path"].endswith("/jsoc_info") for e in server.access_log[before:]) == 2  # retried once
    down = dataclasses.replace(_fast(context), jsoc_url="http://127.0.0.1:9/")
    with pytest.raises(SeedingError, match="did not answer"):
        seed_metadata(source, out, down)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_record_the_archive_lacks_is_an_error_or_a_ledger_row(built, tmp_path):
    context, cubes = built
    source = cubes["HMI_720s", MEAN_32.name]
    with h5py.File(source, "r") as f:
        victim = _strings(f["frames"]["record_id"])[3]
        victim_header = f["headers"].asstr()[3]
    bogus = re.sub(r"_(\d\d):00:00_TAI", r"_\1:05:00_TAI", victim)  # off the 720 s grid: no such record
    assert bogus != victim
    cube = _reordered_copy(source, tmp_path / "bogus.h5", range(8), replace_record={victim: bogus})
    out = tmp_path / "seeded.h5"
    with pytest.raises(SeedingError, match=re.escape(bogus)):
        seed_metadata(cube, out, context)
    assert not out.exists()
    result = seed_metadata(cube, out, context, on_missing="ledger")
    assert result.unseeded_records == (bogus,)
    with h5py.File(out, "r") as f:
        assert f["seeded"][()].tolist() == [i != 3 for i in range(8)]
        assert f["headers"].asstr()[3] == victim_header and f["keywords"]["T_REC"].asstr()[3] == ""
        assert math.isnan(f["keywords"]["CDELT1"][3])
        assert list(f.attrs["unseeded_records"]) == [bogus] and f.attrs["n_unseeded"] == 1


def test_keyword_choice(built, tmp_path):
    context, cubes = built
    source = cubes["MDI_96m", MEAN_32.name]
    with pytest.raises(ValueError, match="NOT_A_KEYWORD"):
        seed_metadata(source, tmp_path / "x.h5", context, keywords=["CDELT1", "NOT_A_KEYWORD"])
    result = seed_metadata(source, tmp_path / "few.h5", context, keywords=["CDELT1"])
    assert result.keywords == ("T_REC", "CDELT1")
    result = seed_metadata(source, tmp_path / "all.h5", context, keywords=ALL_KEYWORDS)
    assert {"CRPIX1", "R_SUN", "X0", "CAR_ROT", "QUALITY"} <= set(result.keywords) and len(result.keywords) > 60
    with pytest.raises(ValueError, match="differ"):
        seed_metadata(source, source, context)


# ------------------------------------------------------------------------------------------- embedded archive
def test_series_struct_lists_header_keywords_and_rs_list_answers_them(built):
    context, _ = built
    client = jsoc_client(context.jsoc_url, context.email)
    info = client.info("hmi.M_720s")
    assert info.keywords.loc["CDELT1", "type"] == "double" and info.keywords.loc["CTYPE1", "type"] == "string"
    assert "HC_SCALE" not in info.keywords.index and "NAXIS1" not in info.keywords.index
    table = client.query("hmi.M_720s[2010.10.15_00:12:00_TAI]", key="T_REC,CDELT1,CTYPE1,NOPE",
                         convert_numeric=False)
    assert table["CTYPE1"].iloc[0] == "HPLN-TAN" and table["NOPE"].iloc[0] == "Invalid KeyLink"
    assert float(table["CDELT1"].iloc[0]) == pytest.approx(0.5, rel=0.05)  # native HMI plate scale


@pytest.mark.parametrize("name", ["HMI_720s", "MDI_96m", "AIA171"])
def test_archive_keywords_are_the_native_record_header(clean_mission, name):
    """Every keyword rs_list answers equals the record's full served header mapped back to the native grid."""
    records = clean_mission.records(name, "2010-10-15", "2010-10-16")
    for row in records.iloc[[0, len(records) // 2, -1]].to_dict("records"):
        header = clean_mission._record_header(row["product"], row["level"], row)
        header["NAXIS1"] = header["NAXIS2"] = clean_mission.frame_size
        native_size = clean_mission.product(name).native_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            native = rescale_header(header, 1 / header[SCALE_KEYWORD], convention="center",
                                    naxis=(native_size, native_size))
        answered = jsoc.record_keywords(clean_mission, row)
        special = {"T_REC", "T_OBS", "DATE__OBS", "WAVELNTH", "QUALITY", "EXPTIME"}
        for card in native.cards:
            key = card.keyword.replace("-", "__")
            if card.keyword in ("NAXIS1", "NAXIS2", "COMMENT", "HISTORY", SCALE_KEYWORD, "") or key in special:
                continue
            value = answered[key]
            if isinstance(card.value, bool):
                assert value == str(int(card.value)), key
            elif isinstance(card.value, (int, float)):
                assert float(value) == pytest.approx(card.value, rel=1e-12, nan_ok=True), key
            elif isinstance(card.value, str):
                assert value == card.value.strip(), key
        assert answered["T_REC"] == row["t_rec"] and answered["EXPTIME"] == f"{row['exptime']:.6f}"
