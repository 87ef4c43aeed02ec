"""The synthetic mission: records, time formats, determinism, served FITS, and defects present in the pixels."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import sunpy.map
from astropy.io import fits

from heliocube.archive import RECORD_COLUMNS, SyntheticMission
from heliocube.registry import load_registry


@pytest.fixture(scope="module")
def mission():
    return SyntheticMission(seed=3, frame_size=128)


def _open(blob):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(blob)) as hdul:
            return hdul[0].header.copy(), hdul[0].data.copy()


def test_every_product_has_records_at_its_cadence(mission):
    for name, product in load_registry().items():
        rows = mission.records(name, "2010-10-15", "2010-10-15T04:00")
        assert list(rows.columns) == list(RECORD_COLUMNS)
        expected = 4 * 3600 / product.cadence.total_seconds()
        assert 0.85 * expected - 1 <= len(rows) <= expected + 1, name
        assert rows["time_utc"].is_monotonic_increasing
        assert (rows["time_utc"] >= pd.Timestamp("2010-10-15", tz="UTC")).all()
        assert rows["record_id"].is_unique


def test_jsoc_time_facts(mission):
    hmi = mission.records("HMI_720s", "2010-10-15", "2010-10-15T01:00")
    assert hmi["record_id"].iloc[1].startswith("hmi.M_720s[2010.10.15_")
    assert hmi["t_rec"].str.match(r"^\d{4}\.\d\d\.\d\d_\d\d:\d\d:00_TAI$").all()
    # T_REC on the 720 s TAI grid, time_utc = T_OBS - 34 s (TAI-UTC in 2010)
    for row in hmi.itertuples():
        trec = pd.Timestamp(row.t_rec[:-4].replace(".", "-", 2).replace("_", "T"))
        tobs = pd.Timestamp(row.t_obs[:-4].replace(".", "-", 2).replace("_", "T"))
        assert (trec - pd.Timestamp("1993-01-01")).total_seconds() % 720 == 0
        assert abs((tobs - trec).total_seconds()) <= 5
        assert (tobs - row.time_utc.tz_localize(None)).total_seconds() == pytest.approx(34, abs=0.01)
    mdi = mission.records("MDI_96m", "2013-01-01", "2013-01-02")
    assert mdi["record_id"].iloc[0].startswith("mdi.fd_M_96m_lev182[2013.01.01_")
    trec = pd.Timestamp(mdi["t_rec"].iloc[0][:-4].replace(".", "-", 2).replace("_", "T"))
    assert (trec - pd.Timestamp("1993-01-01")).total_seconds() % 5760 == 0
    tobs = pd.Timestamp(mdi["t_obs"].iloc[0][:-4].replace(".", "-", 2).replace("_", "T"))
    assert (tobs - mdi["time_utc"].iloc[0].tz_localize(None)).total_seconds() == pytest.approx(35, abs=0.01)
    aia = mission.records("AIA171", "2011-02-15", "2011-02-15T00:01")
    assert aia["record_id"].iloc[1] == "aia.lev1_euv_12s[2011-02-15T00:00:12Z][171]"
    assert aia["t_obs"].str.endswith("Z").all()
    uv = mission.records("AIA1600", "2011-02-15", "2011-02-15T00:02")
    assert uv["t_rec"].str[-3:-1].isin(["00", "24", "48", "12", "36"]).all()


def test_sdac_layouts(mission):
    eit = pd.concat([mission.records(f"EIT{w}", "2004-03-01", "2004-03-02") for w in (171, 195, 284, 304)])
    assert eit["record_id"].str.match(r"^eit/lz/2004/03/efz20040301\.\d{6}$").all()
    assert eit["record_id"].is_unique  # the four wavelengths share a directory without clashing
    # jitter and gaps: times are off the grid, and some 12 min slots of EIT195 are empty
    e195 = mission.records("EIT195", "2004-03-01", "2004-03-08")
    slots = e195["time_utc"].dt.round("12min")
    assert (e195["time_utc"] != slots).any()
    assert slots.nunique() < 7 * 120
    lasco = mission.records("LASCO_C2", "2004-03-01", "2004-03-02")
    assert lasco["record_id"].str.match(r"^lasco_level05/040301/c2/2\d{7}\.fts$").all()
    c3 = mission.records("LASCO_C3", "2004-03-01", "2004-03-02", level="1")
    assert c3["record_id"].str.match(r"^lasco_level1/040301/c3/3\d{7}\.fts$").all()


def test_deterministic(mission):
    again = SyntheticMission(seed=3, frame_size=128)
    a = mission.records("AIA193", "2012-01-01", "2012-01-01T01:00")
    b = again.records("AIA193", "2012-01-01", "2012-01-01T01:00")
    pd.testing.assert_frame_equal(a, b)
    rid = a["record_id"].iloc[5]
    assert mission.render_fits("AIA193", rid) == again.render_fits("AIA193", rid)
    other = SyntheticMission(seed=4, frame_size=128).records("AIA193", "2012-01-01", "2012-01-01T01:00")
    assert not a["t_obs"].equals(other["t_obs"])


@pytest.mark.parametrize(
    "name", ["EIT195", "EIT304", "AIA171", "AIA1600", "HMI_720s", "MDI_96m", "LASCO_C2", "LASCO_C3"]
)
def test_served_fits_opens_in_sunpy(mission, name):
    product = load_registry()[name]
    row = mission.records(name, "2011-06-01", "2011-06-02").query("~corrupt").iloc[0]
    blob = mission.render_fits(name, row.record_id)  # with its full header, as a fits export
    # a record's size is its archive file's: for JSOC the as-is segment file, whose header is the structure only
    assert len(mission.render_fits(name, row.record_id, minimal_header=product.is_jsoc)) == row["size"]
    header, data = _open(blob)
    assert data.shape == (128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smap = sunpy.map.Map(data, header)
    assert smap.instrument.upper().startswith(product.instrument)
    assert abs((smap.date.to_datetime() - row.time_utc.tz_localize(None).to_pydatetime()).total_seconds()) < 0.01
    if product.wavelength:
        assert header["WAVELNTH"] == product.wavelength
    assert header["HC_SCALE"] == pytest.approx(product.native_size / 128, rel=0.01)
    geo = mission.geometry(name)
    x, y = smap.wcs.world_to_pixel(
        smap.center.__class__(0 * smap.spatial_units[0], 0 * smap.spatial_units[1], frame=smap.coordinate_frame)
    )
    assert abs(x - geo.cx) < 0.01 and abs(y - geo.cy) < 0.01
    if product.quality_keyword:
        assert header[product.quality_keyword] == row.quality
    valid = mission.valid_mask(name)
    assert valid.sum() > 100
    if row.hole_fraction == 0 and not row.streak:
        good = data[valid]
        assert np.isfinite(good).all() and (good != 0).all()


def _measured_hole_fraction(mission, name, data):
    valid = mission.valid_mask(name)
    bad = ~np.isfinite(data) | (data == 0)
    return bad[valid].sum() / valid.sum()


@pytest.mark.parametrize("name", ["EIT195", "AIA171", "HMI_720s", "LASCO_C2", "LASCO_C3"])
def test_holes_and_blocks_are_in_the_pixels(name):
    mission = SyntheticMission(
        seed=1, frame_size=128, defect_rates={"hole": 0.5, "missing_blocks": 0.5, "corrupt": 0, "truncated": 0}
    )
    truth = mission.ground_truth(name, "2011-06-01", "2011-06-01").head(12)
    assert (truth["hole_fraction"] > 0).sum() >= 3
    for row in truth.itertuples():
        header, data = _open(mission.render_fits(name, row.record_id))
        assert _measured_hole_fraction(mission, name, data) == pytest.approx(row.hole_fraction, abs=0.01)
        if name.startswith("EIT"):
            assert header["N_MISSING_BLOCKS"] == row.missing_blocks
        if row.nan_offdisk:
            assert np.isnan(data[0, 0]) and np.isnan(data[-1, -1])


def test_streaks_snow_quality_and_corrupt():
    mission = SyntheticMission(
        seed=2,
        frame_size=128,
        defect_rates={"streak": 0.5, "cosmic_rays": 0.5, "quality": 0.5, "corrupt": 0.3, "hole": 0},
    )
    truth = mission.ground_truth("LASCO_C2", "2011-06-01", "2011-06-01").head(10)
    assert truth["streak"].any() and (~truth["streak"]).any() and (truth["cosmic_rays"] > 0).any()
    for row in truth.itertuples():
        blob = mission.render_fits("LASCO_C2", row.record_id)
        assert len(blob) == row.size
        if row.corrupt:
            with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017 - any reader error
                warnings.simplefilter("ignore")
                sunpy.map.Map(*_open(blob))
            continue
        _, data = _open(blob)
        valid = mission.valid_mask("LASCO_C2")
        bright = (data[valid] >= 2.5 * np.median(data[valid]) * 3).sum()
        saturated = (data >= data.max() * 0.999).sum()
        if row.streak or row.cosmic_rays:
            assert saturated >= min(20, row.cosmic_rays or 20)
        else:
            assert bright < 5
    aia = mission.ground_truth("AIA171", "2011-06-01", "2011-06-01")
    flagged = aia[aia["quality"] != 0]
    assert 0.3 < len(flagged) / len(aia) < 0.7
    header, _ = _open(mission.render_fits("AIA171", flagged.query("~corrupt")["record_id"].iloc[0]))
    assert header["QUALITY"] == flagged.query("~corrupt")["quality"].iloc[0]


def test_default_defect_rates_are_modest():
    truth = SyntheticMission(seed=0, frame_size=64).ground_truth("AIA171", "2011-06-01", "2011-06-01")
    for column in ("corrupt", "truncated"):
        assert 0 < truth[column].mean() < 0.05
    assert 0 < (truth["quality"] != 0).mean() < 0.06
    assert 0 < (truth["hole_fraction"] > 0).mean() < 0.06
    assert truth["nan_offdisk"].eq(False).all()


def test_lookup_and_unknown_records(mission):
    row = mission.records("EIT171", "2004-03-01", "2004-03-02").iloc[0]
    assert mission.lookup(row.record_id)["product"] == "EIT171"
    with pytest.raises(KeyError):
        mission.render_fits("EIT171", "eit/lz/2004/03/efz20040301.999999")
    with pytest.raises(KeyError):
        mission.lookup("aia.lev1_euv_12s[2011-02-15T00:00:05Z][171]")  # off the 12 s grid
