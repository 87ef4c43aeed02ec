"""heliocube.calibrate: exposure, AIA degradation plumbing, north-up + fixed radius (sunpy.map is the oracle)."""

import re
import sys
import textwrap
import warnings

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits

from heliocube.archive.templates import load_template_header, sunpy_test_path
from heliocube.calibrate import (
    CalibrationUnavailable,
    calibrate,
    calibration_tag,
    check_available,
    parse_options,
)
from heliocube.calibrate import degradation as degradation_module
from heliocube.header import rescale_header

#: LASCO and edited headers lack an observer: sunpy assumes Earth and says so on every coordinate access.
pytestmark = pytest.mark.filterwarnings("ignore::sunpy.util.exceptions.SunpyMetadataWarning")

GEOMETRY = {"fixed_rsun_arcsec": 976.0, "north_up": True}


def _real_file(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(sunpy_test_path(name)) as hdul:
            return np.array(hdul[0].data), hdul[0].header.copy()


def _map(data, header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(data, header)


def _history(header):
    """All HISTORY text joined (astropy wraps long lines over several cards)."""
    return "".join(str(line) for line in header.get("HISTORY", []))


def _count_header(**cards):
    header = fits.Header()
    header["BITPIX"] = 16
    header["EXPTIME"] = 4.0
    for key, value in cards.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    return header


# ---------------------------------------------------------------------------------------------- exposure


def test_exposure_divides_counts_and_labels_the_unit():
    data = np.arange(12, dtype=">i2").reshape(3, 4)
    header = _count_header(BUNIT="DN", DATAMIN=0, DATAMAX=11, DATAMEAN=5.5, DATAP50=5.0, BZERO=0, BSCALE=1)
    before = header.tostring()
    out, new = calibrate(data, header, {"exposure_normalise": True}, "EIT171")
    assert out.dtype == np.float32 and out.shape == data.shape
    np.testing.assert_allclose(out, np.arange(12).reshape(3, 4) / 4.0)
    assert new["BUNIT"] == "DN/s"
    assert new["HC_EXPN"] is True
    assert new["EXPTIME"] == 4.0  # kept for provenance
    assert new["DATAMEAN"] == pytest.approx(5.5 / 4) and new["DATAP50"] == pytest.approx(5.0 / 4)
    assert new["DATAMIN"] == 0.0 and new["DATAMAX"] == pytest.approx(11 / 4)
    assert new["BITPIX"] == -32 and "BZERO" not in new and "BSCALE" not in new
    assert "EXPTIME" in _history(new)
    assert header.tostring() == before  # input untouched
    np.testing.assert_array_equal(data, np.arange(12).reshape(3, 4))


@pytest.mark.parametrize("bunit", [None, "counts / pixel", "ADU", "dn"])
def test_exposure_accepts_count_spellings(bunit):
    header = _count_header(BUNIT=bunit) if bunit else _count_header()
    out, new = calibrate(np.full((2, 2), 8.0), header, {"exposure_normalise": True}, "AIA171")
    np.testing.assert_allclose(out, 2.0)
    assert new["BUNIT"] == "DN/s"


@pytest.mark.parametrize("exptime", [0.0, -1.0, "abc", "nan", None])
def test_exposure_rejects_missing_or_non_positive_exptime(exptime):
    header = _count_header(BUNIT="DN", EXPTIME=exptime) if exptime is not None else _count_header(EXPTIME=None)
    with pytest.raises(ValueError, match="EXPTIME"):
        calibrate(np.ones((2, 2)), header, {"exposure_normalise": True}, "AIA171")


@pytest.mark.parametrize("product", ["HMI_720s", "MDI_96m"])
def test_exposure_is_a_noop_for_magnetograms(product):
    header = fits.Header({"BUNIT": "Gauss"})  # no EXPTIME: magnetograms have none
    data = np.array([[-5.0, 3.0], [0.0, 1200.0]])
    out, new = calibrate(data, header, {"exposure_normalise": True}, product)
    np.testing.assert_array_equal(out, data.astype(np.float32))
    assert new["BUNIT"] == "Gauss" and "HC_EXPN" not in new
    assert "magnetogram" in _history(new)


def test_exposure_skips_calibrated_brightness_and_rates_but_not_raw_levels():
    msb = _count_header(BUNIT="MSB", LEVEL="1.0")
    out, new = calibrate(np.full((2, 2), 3e-10), msb, {"exposure_normalise": True}, "LASCO_C2")
    np.testing.assert_allclose(out, 3e-10, rtol=1e-6)
    assert new["BUNIT"] == "MSB" and "HC_EXPN" not in new
    # a level-0.5 frame is raw DN whatever BUNIT a template left behind
    raw = _count_header(BUNIT="MSB", LEVEL="0.5")
    out, new = calibrate(np.full((2, 2), 100.0), raw, {"exposure_normalise": True}, "LASCO_C2")
    np.testing.assert_allclose(out, 25.0)
    assert new["BUNIT"] == "DN/s"
    # LASCO level 1 is MSB even when BUNIT is missing
    out, new = calibrate(np.full((2, 2), 3e-10), _count_header(LEVEL="1.0"), {"exposure_normalise": True}, "LASCO_C3")
    assert "HC_EXPN" not in new and "calibrated brightness" in _history(new)
    rate = _count_header(BUNIT="DN/s")
    out, new = calibrate(np.full((2, 2), 7.0), rate, {"exposure_normalise": True}, "AIA171")
    np.testing.assert_allclose(out, 7.0)
    # normalising twice does not divide twice
    once, header_once = calibrate(np.full((2, 2), 8.0), _count_header(), {"exposure_normalise": True}, "AIA171")
    twice, _ = calibrate(once, header_once, {"exposure_normalise": True}, "AIA171")
    np.testing.assert_allclose(twice, once)


def test_exposure_refuses_an_unknown_unit():
    with pytest.raises(ValueError, match="BUNIT"):
        calibrate(np.ones((2, 2)), _count_header(BUNIT="erg/cm2/sr"), {"exposure_normalise": True}, "AIA171")


def test_no_step_returns_a_float32_copy_and_the_same_header():
    data = np.arange(4, dtype=np.int32).reshape(2, 2)
    header = _count_header(BUNIT="DN")
    out, new = calibrate(data, header, {}, "EIT171")
    assert out.dtype == np.float32 and out is not data
    assert new.tostring() == header.tostring() and new is not header


def test_calibrate_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        calibrate(np.ones((2, 2, 2)), _count_header(), {"exposure_normalise": True}, "AIA171")
    with pytest.raises(ValueError, match="unknown calibration option"):
        calibrate(np.ones((2, 2)), _count_header(), {"exposure": True}, "AIA171")
    with pytest.raises(ValueError, match="fixed_rsun_arcsec"):
        parse_options({"fixed_rsun_arcsec": -976})
    with pytest.raises(ValueError, match="north_up"):
        parse_options({"north_up": "yes"})
    with pytest.raises(ValueError, match="aia_degradation"):
        parse_options({"aia_degradation": {"enabled": True, "table": "x"}})


# ---------------------------------------------------------------------------------------------- geometry


def _lasco_c2_512():
    return rescale_header(load_template_header("lasco_c2_25299383_s.header"), 0.25)


def _eit():
    """The EIT test file was resampled 1024 -> 128 without updating CDELT and SOLAR_R: make them consistent."""
    data, header = _real_file("EIT/efz20040301.000010_s.fits")
    header["CDELT1"] = header["CDELT2"] = header["CDELT1"] * 1024 / 128
    header["SOLAR_R"] = header["SOLAR_R"] * 128 / 1024
    return data, header


def _hmi_wide():
    """The HMI test header (rolled by 180 deg) on a wider canvas, so marks on the limb are not at the edge."""
    _, header = _real_file("resampled_hmi.fits")
    header["NAXIS1"] = header["NAXIS2"] = 140
    header["CRPIX1"] += 20
    header["CRPIX2"] += 20
    return header


def _aia_rolled():
    _, header = _real_file("aia_171_level1.fits")
    header["CROTA2"] = 30.0
    return header


#: case id -> (product, header factory); the images are synthetic marks at known sky positions.
GEOMETRY_CASES = {
    "aia": ("AIA171", lambda: _real_file("aia_171_level1.fits")[1]),
    "aia-rolled-30deg": ("AIA171", _aia_rolled),
    "eit": ("EIT195", lambda: _eit()[1]),
    "hmi-upside-down": ("HMI_720s", _hmi_wide),
    "lasco-c2": ("LASCO_C2", _lasco_c2_512),
    "lasco-c3-off-centre": ("LASCO_C3", lambda: load_template_header("lasco_c3.header")),
}


def _marks(smap, coronagraph):
    """Disk centre, four limb points (0.999 R), one point off the limb (and one far out for coronagraphs)."""
    rsun = smap.rsun_obs.to_value(u.arcsec)
    tx = [0.0, rsun, -rsun, 0.0, 0.0]
    ty = [0.0, 0.0, 0.0, rsun, -rsun]
    tx, ty = [0.999 * v for v in tx], [0.999 * v for v in ty]
    tx.append(0.8 * rsun)
    ty.append(0.8 * rsun)
    if coronagraph:
        tx.append(3.0 * rsun)
        ty.append(-2.0 * rsun)
    return SkyCoord(np.array(tx) * u.arcsec, np.array(ty) * u.arcsec, frame=smap.coordinate_frame)


def _blobs(shape, pixels, sigma=1.3, amplitude=1000.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    image = np.zeros(shape)
    for x, y in zip(*pixels, strict=True):
        image += amplitude * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)
    return image


def _centroid(image, x, y, radius=4):
    x0, y0 = round(float(x)), round(float(y))
    window = np.nan_to_num(image[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1])
    weights = np.where(window > 0.2 * window.max(), window, 0.0)
    yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return float((weights * xx).sum() / weights.sum()), float((weights * yy).sum() / weights.sum())


def _synthetic_case(case):
    product, make_header = GEOMETRY_CASES[case]
    header = make_header()
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    before = _map(np.zeros(shape), header)
    marks = _marks(before, coronagraph=product.startswith("LASCO"))
    in_px = np.array(before.wcs.world_to_pixel(marks))
    assert np.all((in_px > 6) & (in_px < np.array(shape)[::-1, None] - 7)), "marks must lie inside the input"
    return product, header, before, marks, _blobs(shape, in_px)


@pytest.mark.parametrize("options", [GEOMETRY, {"north_up": True}, {"fixed_rsun_arcsec": 976.0}],
                         ids=["north-r976", "north", "r976"])
@pytest.mark.parametrize("case", list(GEOMETRY_CASES))
def test_sky_positions_survive_north_up_and_fixed_radius(case, options):
    product, header, before, marks, image = _synthetic_case(case)
    header_text = header.tostring()
    out, new = calibrate(image, header, options, product)
    assert header.tostring() == header_text  # input header untouched
    assert out.shape == image.shape and out.dtype == np.float32
    after = _map(out, new)
    expected = np.array(after.wcs.world_to_pixel(marks))
    found = np.array([_centroid(out, x, y) for x, y in expected.T]).T
    assert np.abs(found - expected).max() < 0.15, f"marks moved: {found - expected}"
    # the disk centre is the image centre and the header says so
    centre = (np.array(out.shape[::-1]) - 1) / 2.0
    np.testing.assert_allclose(expected[:, 0], centre, atol=1e-6)
    assert new["CRPIX1"] == pytest.approx(centre[0] + 1) and new["CRPIX2"] == pytest.approx(centre[1] + 1)
    in_scale = before.scale[0].to_value(u.arcsec / u.pix)
    out_scale = abs(after.scale[0].to_value(u.arcsec / u.pix))
    rsun_px = after.rsun_obs.to_value(u.arcsec) / out_scale
    if options.get("fixed_rsun_arcsec"):
        # SDOML's convention: a 976" Sun at the input plate scale
        assert rsun_px == pytest.approx(976.0 / in_scale, rel=1e-6)
        assert new["HC_RSUNF"] == 976.0
        assert new["HC_ZOOM"] == pytest.approx(976.0 / after.rsun_obs.to_value(u.arcsec))
    else:
        assert out_scale == pytest.approx(in_scale, rel=1e-6)
        assert "HC_ZOOM" not in new
    # limb marks sit one solar radius (of the input map, 0.999 of it) from the centre mark, in output pixels
    limb_px = np.hypot(*(found[:, 1:5] - found[:, :1]))
    np.testing.assert_allclose(limb_px, 0.999 * before.rsun_obs.to_value(u.arcsec) / out_scale, atol=0.15)
    if options.get("north_up"):
        np.testing.assert_allclose(after.rotation_matrix, np.eye(2), atol=1e-12)
        assert new["HC_NORTH"] is True and not any(k in new for k in ("CROTA", "CROTA1", "CROTA2", "CD1_1"))
    else:
        np.testing.assert_allclose(after.rotation_matrix, before.rotation_matrix, atol=1e-12)
    assert "one resampling" in _history(new)


@pytest.mark.parametrize("case", list(GEOMETRY_CASES))
def test_nan_exactly_outside_the_input(case):
    product, header, before, _, image = _synthetic_case(case)
    out, new = calibrate(image + 1.0, header, GEOMETRY, product)
    after = _map(out, new)
    step = max(1, out.shape[0] // 128)
    rows, cols = np.r_[0 : out.shape[0] : step, out.shape[0] - 1], np.r_[0 : out.shape[1] : step, out.shape[1] - 1]
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sky = after.pixel_to_world(xx.ravel() * u.pix, yy.ravel() * u.pix)
        src_x, src_y = before.wcs.world_to_pixel(sky)
    n_rows, n_cols = image.shape
    values = out[yy.ravel(), xx.ravel()]
    outside = (src_x < -0.5) | (src_x > n_cols - 0.5) | (src_y < -0.5) | (src_y > n_rows - 0.5)
    inside = (src_x > 3) & (src_x < n_cols - 4) & (src_y > 3) & (src_y < n_rows - 4)
    assert np.all(np.isnan(values[outside]))
    assert np.all(np.isfinite(values[inside]))
    if case in ("aia-rolled-30deg", "lasco-c3-off-centre"):
        assert outside.any()  # these cases do move the frame's edge into view


@pytest.mark.parametrize("load,product", [(lambda: _real_file("aia_171_level1.fits"), "AIA171"), (_eit, "EIT195")],
                         ids=["aia", "eit"])
def test_real_images_calibrate_end_to_end(load, product):
    data, header = load()
    header_text, data_copy = header.tostring(), data.copy()
    options = {"exposure_normalise": True, **GEOMETRY}
    out, new = calibrate(data, header, options, product)
    assert header.tostring() == header_text
    np.testing.assert_array_equal(data, data_copy)
    assert out.shape == data.shape and out.dtype == np.float32
    assert new["BUNIT"] == "DN/s" and new["HC_EXPN"] is True and new["HC_NORTH"] is True
    # the history says what happened, in the documented order
    history = _history(new)
    assert history.index("divided by EXPTIME") < history.index("north-up")
    # the disk's mean brightness survives (a small zoom, DN/s): compare inner disks of 0.8 R
    before, after = _map(data.astype(float), header), _map(out, new)

    def disk_mean(smap, image):
        yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cx, cy = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
        r = smap.rsun_obs.to_value(u.arcsec) / abs(smap.scale[0].to_value(u.arcsec / u.pix))
        return np.nanmean(image[np.hypot(xx - cx, yy - cy) < 0.8 * r])

    assert disk_mean(after, out) == pytest.approx(disk_mean(before, data) / header["EXPTIME"], rel=0.02)
    assert new["DATAMAX"] == pytest.approx(float(np.nanmax(out))) if "DATAMAX" in new else True


def test_pixel_keywords_follow_the_disk():
    data, header = _real_file("aia_171_level1.fits")
    smap = _map(data, header)
    sun_x, sun_y = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    header["X0_MP"], header["Y0_MP"] = float(sun_x), float(sun_y)
    header["R_SUN"] = header["RSUN_OBS"] / header["CDELT1"]  # the sunpy test file keeps the 4096 px value
    header["CROP_RAD"] = 60.0
    _, new = calibrate(data, header, GEOMETRY, "AIA171")
    zoom = 976.0 / header["RSUN_OBS"]
    assert new["X0_MP"] == pytest.approx(63.5, abs=1e-6) and new["Y0_MP"] == pytest.approx(63.5, abs=1e-6)
    assert new["R_SUN"] == pytest.approx(976.0 / header["CDELT1"], rel=1e-6)
    assert new["R_SUN"] == pytest.approx(new["RSUN_OBS"] / new["CDELT1"], rel=1e-6)
    assert new["CROP_RAD"] == pytest.approx(60.0 * zoom)
    assert new["RSUN_OBS"] == header["RSUN_OBS"]  # angular radius unchanged
    assert new["CDELT1"] == pytest.approx(header["CDELT1"] / zoom, rel=1e-6)
    assert new["CRVAL1"] == 0.0 and new["CRVAL2"] == 0.0
    eit_data, eit = _eit()
    _, eit_new = calibrate(eit_data, eit, GEOMETRY, "EIT195")
    assert eit_new["SOLAR_R"] == pytest.approx(eit["SOLAR_R"] * 976.0 / (eit["SOLAR_R"] * eit["CDELT1"]))
    assert "SC_ROLL" in _history(eit_new)  # EIT's roll is no WCS keyword: flagged


def test_radius_written_when_the_header_has_none():
    header = load_template_header("lasco_c3.header")
    assert not any(key in header for key in ("RSUN_OBS", "RSUN", "RSUN_ARC", "SOLAR_R"))
    rsun = _map(np.zeros((1024, 1024)), header).rsun_obs.to_value(u.arcsec)
    _, new = calibrate(np.ones((1024, 1024)), header, {"north_up": True}, "LASCO_C3")
    assert new["RSUN_OBS"] == pytest.approx(rsun)
    assert new["XCEN"] == 0.0 if "XCEN" in new else True


def test_exposure_and_geometry_compose_in_the_documented_order():
    product, header, _, _, image = _synthetic_case("aia")
    header["BUNIT"] = "DN"
    both, _ = calibrate(image, header, {"exposure_normalise": True, **GEOMETRY}, product)
    dns, dns_header = calibrate(image, header, {"exposure_normalise": True}, product)
    then, _ = calibrate(dns, dns_header, GEOMETRY, product)
    np.testing.assert_allclose(both, then, rtol=1e-6, atol=1e-6 * np.nanmax(both), equal_nan=True)


# ---------------------------------------------------------------------------------------------- degradation


@pytest.fixture
def without_aiapy(monkeypatch):
    monkeypatch.setattr(degradation_module, "_aiapy_available", lambda: False)


def test_degradation_unavailable_says_why(without_aiapy, tmp_path):
    options = {"aia_degradation": {"enabled": True, "correction_table": None}}
    with pytest.raises(CalibrationUnavailable) as info:
        check_available(options, "AIA193")
    message = str(info.value)
    for needle in ("aiapy", "correction_table", "network", "AIA193"):
        assert needle in message
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(CalibrationUnavailable, match="aiapy"):
        calibrate(np.ones((4, 4)), _count_header(), options, "AIA193")
    missing = {"aia_degradation": {"enabled": True, "correction_table": str(tmp_path / "absent.txt")}}
    with pytest.raises(CalibrationUnavailable, match=r"absent\.txt"):
        check_available(missing, "AIA171")
    # other instruments and a disabled step need nothing
    check_available(options, "EIT171")
    check_available(options, "HMI_720s")
    check_available({"aia_degradation": {"enabled": False}}, "AIA171")
    check_available({"exposure_normalise": True, **GEOMETRY}, "AIA171")


def test_check_available_rejects_invalid_options():
    with pytest.raises(ValueError, match="unknown calibration option"):
        check_available({"northup": True}, "AIA171")


@pytest.fixture
def fake_aiapy(tmp_path, monkeypatch):
    """A stand-in aiapy (the real one is not installed here) whose degradation factor is 0.8."""
    package = tmp_path / "fakeaiapy" / "aiapy"
    (package / "calibrate").mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0.0-test"\n')
    (package / "calibrate" / "__init__.py").write_text(textwrap.dedent("""
        import astropy.units as u

        CALLS = []

        def degradation(channel, obstime, *, correction_table=None, calibration_version=None):
            CALLS.append((channel, obstime, correction_table))
            return 0.8 * u.dimensionless_unscaled
    """))
    (package / "calibrate" / "utils.py").write_text("def get_correction_table(source):\n    return {'path': source}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "fakeaiapy"))
    for name in [m for m in sys.modules if m == "aiapy" or m.startswith("aiapy.")]:
        monkeypatch.delitem(sys.modules, name)
    degradation_module._correction_table.cache_clear()
    table = tmp_path / "aia_V10_response_table.txt"
    table.write_text("fake\n")
    yield table
    for name in [m for m in sys.modules if m == "aiapy" or m.startswith("aiapy.")]:
        del sys.modules[name]
    degradation_module._correction_table.cache_clear()


def test_degradation_divides_by_aiapys_factor(fake_aiapy):
    options = {"exposure_normalise": True, "aia_degradation": {"enabled": True, "correction_table": str(fake_aiapy)}}
    check_available(options, "AIA171")
    header = _count_header(BUNIT="DN", WAVELNTH=171, T_OBS="2011-02-15T00:00:01.34Z", DATAMEAN=8.0)
    out, new = calibrate(np.full((3, 3), 8.0), header, options, "AIA171")
    np.testing.assert_allclose(out, 8.0 / 4.0 / 0.8)
    assert new["DEG_COR"] == pytest.approx(0.8)
    assert new["DATAMEAN"] == pytest.approx(8.0 / 4.0 / 0.8)
    assert "degradation factor 0.8" in _history(new) and "aiapy 0.0-test" in _history(new)
    calls = sys.modules["aiapy.calibrate"].CALLS
    assert calls[0][0] == 171 * u.angstrom and calls[0][2] == {"path": str(fake_aiapy)}
    # other instruments are left alone
    out, new = calibrate(np.full((3, 3), 8.0), _count_header(BUNIT="DN"), options, "EIT171")
    np.testing.assert_allclose(out, 2.0)
    assert "DEG_COR" not in new


# ---------------------------------------------------------------------------------------------- tag


@pytest.mark.parametrize("options,tag", [
    ({}, ""),
    (None, ""),
    ({"exposure_normalise": False, "north_up": False, "fixed_rsun_arcsec": None}, ""),
    ({"exposure_normalise": True}, "dns"),
    ({"exposure_normalise": True, "fixed_rsun_arcsec": 976.0, "north_up": True}, "dns-r976-north"),
    ({"north_up": True, "fixed_rsun_arcsec": 976, "exposure_normalise": True}, "dns-r976-north"),
    ({"fixed_rsun_arcsec": 959.63}, "r959p63"),
    ({"north_up": True}, "north"),
    ({"exposure_normalise": True, "aia_degradation": {"enabled": True, "correction_table": "t.txt"},
      "fixed_rsun_arcsec": 976.0, "north_up": True}, "dns-deg-r976-north"),
    ({"aia_degradation": {"enabled": False, "correction_table": "t.txt"}}, ""),
])
def test_calibration_tag(options, tag):
    assert calibration_tag(options) == tag
    assert calibration_tag(options) == calibration_tag(dict(options or {}))  # deterministic
    assert re.fullmatch(r"[a-z0-9-]*", tag)
