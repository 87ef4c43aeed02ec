"""rescale_header keeps the solar centre and limb at the same sky positions (sunpy.map is the oracle)."""

import warnings

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits

from heliocube.archive.templates import load_template_header, sunpy_test_path
from heliocube.header import SCALE_KEYWORD, rescale_header

CASES = [
    ("EIT/efz20040301.000010_s.fits", True),
    ("aia_171_level1.fits", True),
    ("resampled_hmi.fits", True),
    ("lasco_c2_25299383_s.header", False),
    ("lasco_c3.header", False),
    ("mdi.fd_M_96m_lev182.20101015_191200_TAI.data.header", False),
]


def _map(header, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(np.zeros(shape, dtype=np.float32), header)


def _points(smap):
    rsun = smap.rsun_obs.to_value(u.arcsec)
    tx = np.array([0.0, rsun, -rsun, 0.0, 0.0]) * 0.999
    ty = np.array([0.0, 0.0, 0.0, rsun, -rsun]) * 0.999
    return SkyCoord(tx * u.arcsec, ty * u.arcsec, frame=smap.coordinate_frame)


def _header(name, real_file):
    if real_file:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.getheader(sunpy_test_path(name))
    header = load_template_header(name)
    return header


@pytest.mark.parametrize("name,real_file", CASES)
@pytest.mark.parametrize("factor,convention", [(2, "center"), (4, "center"), (2, "corner"), (0.5, "center")])
def test_sky_positions_survive_rescale(name, real_file, factor, convention):
    header = _header(name, real_file)
    n = int(header["NAXIS1"])
    before = _map(header, (n, n))
    new = rescale_header(header, factor, convention=convention)
    m = int(new["NAXIS1"])
    assert m == round(n / factor)
    after = _map(new, (m, m))
    world = _points(before)
    old_px = np.array(before.wcs.world_to_pixel(world))
    new_px = np.array(after.wcs.world_to_pixel(world))
    expected_old = (new_px + 0.5) * factor - 0.5 if convention == "center" else new_px * factor
    assert np.abs(expected_old - old_px).max() < 0.1
    # and the other way: the same pixel maps to the same sky position
    back = after.pixel_to_world(*(new_px * u.pix))
    assert back.separation(world).to_value(u.arcsec).max() < 0.1 * abs(before.scale[0].to_value(u.arcsec / u.pix))


def test_pixel_keys_scaled_and_angular_keys_kept():
    header = load_template_header("mdi.fd_M_96m_lev182.20101015_191200_TAI.data.header")
    new = rescale_header(header, 4)
    assert new["R_SUN"] == pytest.approx(header["R_SUN"] / 4)
    assert new["CROP_RAD"] == pytest.approx(header["CROP_RAD"] / 4)
    assert new["X0"] == pytest.approx((header["X0"] + 0.5) / 4 - 0.5)
    assert new["Y0"] == pytest.approx((header["Y0"] + 0.5) / 4 - 0.5)
    assert new["RSUN_OBS"] == header["RSUN_OBS"]
    assert new["CDELT1"] == pytest.approx(header["CDELT1"] * 4)
    assert new["CROTA2"] == header["CROTA2"]
    assert new[SCALE_KEYWORD] == 4
    assert "rescale_header" in str(new["HISTORY"][-1])
    twice = rescale_header(new, 2, convention="corner")
    assert twice[SCALE_KEYWORD] == 8
    assert twice["X0"] == pytest.approx(new["X0"] / 2)
    eit = rescale_header(load_template_header("EIT/efz20040301.000010_s.fits"), 0.5)
    assert eit["SOLAR_R"] == pytest.approx(372.27 * 2)


def test_rejects_bad_arguments():
    header = load_template_header("aia_171_level1.fits")
    with pytest.raises(ValueError):
        rescale_header(header, 0)
    with pytest.raises(ValueError):
        rescale_header(header, 2, convention="edge")


def test_jsoc_values_become_typed_card_values():
    from heliocube.header import jsoc_value

    assert jsoc_value("0x00000400", "int") == 1024 and jsoc_value("12", "int") == 12
    assert jsoc_value("0.6", "double") == 0.6 and jsoc_value("NaN", "double") is None
    assert jsoc_value("MISSING", "float") is None and jsoc_value(float("nan"), "string") is None
    assert jsoc_value(" HPLN-TAN ", "string") == "HPLN-TAN" and jsoc_value("", "string") is None


def test_record_keywords_fill_a_bare_header_and_the_file_wins():
    import json

    from heliocube.header import with_record_keywords

    bare = fits.Header({"SIMPLE": True, "BITPIX": 16, "NAXIS": 2, "NAXIS1": 64, "NAXIS2": 64, "EXPTIME": 2.0})
    record = {"CRPIX1": 2048.5, "CDELT1": 0.6, "X0": 2047.0, "R_SUN": 1600.0, "RSUN_OBS": 960.0,
              "DATE__OBS": "2011-02-15T00:00:00.34Z", "EXPTIME": 1.99, "NAXIS1": 4096, "BLANK": -32768,
              "HC_SCALE": 3.0, "QUALITY": None, "MUCHTOOLONGNAME": 1}  # fmt: skip
    native = with_record_keywords(bare.copy(), json.dumps(record))
    assert native["CRPIX1"] == 2048.5 and native["DATE-OBS"] == "2011-02-15T00:00:00.34Z"
    assert native["EXPTIME"] == 2.0 and native["NAXIS1"] == 64  # the file's own cards win; structure never moves
    assert "BLANK" not in native and "QUALITY" not in native and "HC_SCALE" not in native
    served = bare.copy()
    served["HC_SCALE"] = 64.0  # a file the embedded archive resampled from 4096 to 64 px
    served = with_record_keywords(served, record)
    assert served["CDELT1"] == pytest.approx(0.6 * 64) and served["CRPIX1"] == pytest.approx(32.5)
    assert served["R_SUN"] == pytest.approx(25.0) and served["X0"] == pytest.approx((2047.0 + 0.5) / 64 - 0.5)
    assert served["RSUN_OBS"] == 960.0 and served["HC_SCALE"] == 64.0
    assert "keywords from the archive record" in " ".join(str(line) for line in served["HISTORY"])
    assert with_record_keywords(bare, None) is bare and with_record_keywords(bare, "") is bare


def test_record_keywords_from_an_older_manifest_are_typed():
    """Manifests written before the query typed its keywords hold JSOC's printed text: numbers still become numbers,
    so the resampling and the resize can do arithmetic on them."""
    from heliocube.header import with_record_keywords

    served = fits.Header({"NAXIS": 2, "NAXIS1": 64, "NAXIS2": 64, "HC_SCALE": 64.0})
    merged = with_record_keywords(served, {"CDELT1": "0.599489", "CRPIX1": "2048.5", "QUALITY": "0x00000000",
                                           "CTYPE1": "HPLN-TAN", "T_OBS": "2011.02.15_00:00:01_TAI",
                                           "RSUN_OBS": "MISSING", "X0": " "})  # fmt: skip
    assert merged["CDELT1"] == pytest.approx(0.599489 * 64) and merged["CRPIX1"] == pytest.approx(32.5)
    assert merged["QUALITY"] == 0 and merged["CTYPE1"] == "HPLN-TAN" and merged["T_OBS"].endswith("_TAI")
    assert "RSUN_OBS" not in merged and "X0" not in merged
    assert with_record_keywords(served, float("nan")) is served  # a CSV cell without keywords
