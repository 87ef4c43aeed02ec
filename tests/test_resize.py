"""heliocube.resize: hand-computed values, NaN policy, dtypes, errors, WCS preservation on real headers."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from heliocube.resize import HEADER_CONVENTION, METHODS, resize, resize_frame

A = np.arange(16, dtype=np.float64).reshape(4, 4)
# blocks of A at factor 2: [[0,1],[4,5]] [[2,3],[6,7]] / [[8,9],[12,13]] [[10,11],[14,15]]
EXPECTED = {
    "subsample": [[0, 2], [8, 10]],
    "minpool": [[0, 2], [8, 10]],
    "maxpool": [[5, 7], [13, 15]],
    "mean": [[2.5, 4.5], [10.5, 12.5]],
    "sum": [[10, 18], [42, 50]],
}


def test_methods_and_conventions_consistent():
    assert set(HEADER_CONVENTION) == set(METHODS)
    assert HEADER_CONVENTION["subsample"] == "corner"
    assert all(HEADER_CONVENTION[m] == "center" for m in METHODS if m != "subsample")


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_block_methods_hand_computed(method):
    out = resize(A, 2, method)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array(EXPECTED[method], dtype=np.float32))


def test_factor_four_and_identity():
    np.testing.assert_array_equal(resize(A, 1, "sum"), [[120]])
    np.testing.assert_array_equal(resize(A, 1, "maxpool"), [[15]])
    same = resize(A, 4, "interp")
    assert same.dtype == np.float32 and same is not A
    np.testing.assert_array_equal(same, A)


def test_interp_constant_and_interior_ramp():
    np.testing.assert_allclose(resize(np.full((12, 12), 7.0), 3, "interp"), 7.0, rtol=1e-6)
    # a plane is reproduced exactly at block centres away from the edges (symmetric kernel); the block mean of a
    # plane equals its value at the block centre
    yy, xx = np.mgrid[0:64, 0:64]
    plane = 3.0 * xx - 2.0 * yy + 5.0
    out = resize(plane, 16, "interp")
    np.testing.assert_allclose(out[2:-2, 2:-2], resize(plane, 16, "mean")[2:-2, 2:-2], rtol=1e-5)


def test_interp_is_anti_aliased():
    # a checkerboard at the Nyquist frequency: subsampling aliases it to a constant 1, interp suppresses it to ~0.5
    board = (np.indices((32, 32)).sum(axis=0) % 2).astype(float)
    np.testing.assert_array_equal(resize(board, 8, "subsample"), 0.0)
    out = resize(board, 8, "interp")
    np.testing.assert_allclose(out, 0.5, atol=0.02)


def test_integer_input_exact_float32():
    data = (np.arange(64, dtype=np.int16).reshape(8, 8) * 100 - 3000).astype(np.int16)
    for method in METHODS:
        out = resize(data, 4, method)
        assert out.dtype == np.float32, method
    np.testing.assert_array_equal(resize(data, 4, "sum"), data.astype(np.int64).reshape(4, 2, 4, 2).sum(axis=(1, 3)))
    np.testing.assert_array_equal(resize(data, 4, "subsample"), data[::2, ::2])
    big = np.full((64, 64), 32767, dtype=np.int16)  # sum 134,213,632 > 2**24 would not survive float32 accumulation
    assert resize(big, 1, "sum")[0, 0] == np.float32(32767 * 64 * 64)
    assert resize(np.full((4, 4), 255, dtype=np.uint8), 2, "sum")[0, 0] == 1020  # no uint8 overflow


def test_nan_policy_blocks():
    data = A.copy()
    data[0, 0] = np.nan  # block (0,0) partially NaN: values 1, 4, 5
    data[2:4, 2:4] = np.nan  # block (1,1) all NaN
    np.testing.assert_array_equal(resize(data, 2, "minpool"), [[1, 2], [8, np.nan]])
    np.testing.assert_array_equal(resize(data, 2, "maxpool"), [[5, 7], [13, np.nan]])
    np.testing.assert_allclose(resize(data, 2, "mean"), [[10 / 3, 4.5], [10.5, np.nan]], rtol=1e-6)
    np.testing.assert_allclose(resize(data, 2, "sum"), [[40 / 3, 18], [42, np.nan]], rtol=1e-6)
    np.testing.assert_array_equal(resize(data, 2, "subsample"), [[np.nan, 2], [8, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" / invalid-value warnings
        for method in METHODS:
            resize(data, 2, method)


def test_nan_policy_interp():
    data = np.full((16, 16), 2.0)
    data[:8, :8] = np.nan  # top-left quadrant missing
    data[12, 12] = np.nan  # isolated missing pixel must not spread
    out = resize(data, 4, "interp")
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1])
    np.testing.assert_allclose(out[2:, :], 2.0, rtol=1e-6)  # no bias towards the 0 used to fill NaN
    np.testing.assert_allclose(out[:, 2:], 2.0, rtol=1e-6)
    assert np.isnan(resize(np.full((8, 8), np.nan), 2, "interp")).all()


@pytest.mark.parametrize(
    ("shape", "size", "match"),
    [
        ((10, 10), 3, "3 does not divide the frame size 10"),
        ((10, 10), 20, "20 does not divide"),
        ((10, 10), 0, "positive integer"),
        ((10, 10), 2.5, "positive integer"),
        ((10, 8), 2, "square"),
        ((2, 4, 4), 2, "2-D"),
    ],
)
def test_bad_sizes(shape, size, match):
    with pytest.raises(ValueError, match=match):
        resize(np.zeros(shape), size, "mean")


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown resize method"):
        resize(A, 2, "bicubic")


def test_resize_frame_header():
    header = fits.Header()
    header["BITPIX"] = 16
    header["NAXIS"] = 2
    header["NAXIS1"] = 4
    header["NAXIS2"] = 4
    header["BZERO"] = 32768
    header["BSCALE"] = 1
    header["BLANK"] = -32768
    header["CRPIX1"] = 2.5
    header["CRPIX2"] = 2.5
    header["CDELT1"] = 1.0
    header["DATAMAX"] = 1e6
    data = A.astype(np.int16)
    out, new = resize_frame(data, header, 2, "subsample")
    assert out.dtype == np.float32 and new["NAXIS1"] == 2 and new["CDELT1"] == 2.0
    assert new["CRPIX1"] == pytest.approx(1.75)  # corner: (2.5 - 1) / 2 + 1
    assert new["BITPIX"] == -32 and "BZERO" not in new and "BLANK" not in new and "BSCALE" not in new
    assert new["DATAMAX"] == 10.0 and new["HC_SCALE"] == 2.0
    assert any("subsample" in str(h) for h in new["HISTORY"])
    _, new = resize_frame(data, header, 2, "mean")
    assert new["CRPIX1"] == pytest.approx(1.5)  # center: (2.5 - 0.5) / 2 + 0.5
    assert header["NAXIS1"] == 4 and "HC_SCALE" not in header  # input untouched


# ---------------------------------------------------------------------------------------------------------------
# WCS oracle: sunpy.map on real instrument headers


def _test_file(name):
    from sunpy.data.test import get_test_filepath

    return get_test_filepath(name)


def _header_from_text(name):
    with open(_test_file(name)) as fh:
        text = fh.read().replace("\t", " ")
    return fits.Header.fromstring(text, sep="\n")


def _real_fits(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # BLANK on float data in the sunpy files
        with fits.open(_test_file(name)) as hdul:
            return hdul[0].data.astype(np.float64), hdul[0].header.copy()


def _synthetic(header):
    header = header.copy()
    shape = (header["NAXIS2"], header["NAXIS1"])
    data = np.random.default_rng(0).normal(100, 10, size=shape).astype(np.float32)
    header["BITPIX"] = -32
    for key in ("BLANK", "BZERO", "BSCALE"):
        header.remove(key, ignore_missing=True)
    return data, header


CASES = {
    "EIT": (lambda: _real_fits("EIT/efz20040301.000010_s.fits"), 32),
    "AIA": (lambda: _real_fits("aia_171_level1.fits"), 32),
    "HMI": (lambda: _real_fits("resampled_hmi.fits"), 25),
    "LASCO-C3": (lambda: _synthetic(_header_from_text("lasco_c3.header")), 128),
    "MDI": (lambda: _synthetic(_header_from_text("mdi.fd_M_96m_lev182.20101015_191200_TAI.data.header")), 16),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wcs_centre_and_limb_preserved(case):
    import sunpy.map

    load, size = CASES[case]
    data, header = load()
    n = data.shape[0]
    factor = n // size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sunpy metadata warnings about the old headers
        original = sunpy.map.Map(data, header)
        frame = original.coordinate_frame
        rsun = original.rsun_obs.to_value(u.arcsec)
        tx = np.array([0.0, rsun, -rsun, 0.0, 0.0])
        ty = np.array([0.0, 0.0, 0.0, rsun, -rsun])
        points = SkyCoord(tx * u.arcsec, ty * u.arcsec, frame=frame)
        px_old = np.array(original.world_to_pixel(points)).astype(float)  # 0-based (x, y)
        assert np.isfinite(px_old).all() and np.ptp(px_old[0]) > 10  # limb points really span the disk
        for method in METHODS:
            small, new_header = resize_frame(data, header, size, method)
            resized = sunpy.map.Map(small, new_header)
            px_new = np.array(resized.world_to_pixel(points)).astype(float)
            # 0-based; center: new pixel j covers old j*f-0.5 .. (j+1)*f-0.5; corner: new pixel j is old pixel j*f
            centred = HEADER_CONVENTION[method] == "center"
            back = (px_new + 0.5) * factor - 0.5 if centred else px_new * factor
            np.testing.assert_allclose(back, px_old, atol=0.1, err_msg=f"{case} {method}")
            assert resized.rsun_obs.to_value(u.arcsec) == pytest.approx(rsun)


@pytest.mark.parametrize("n,size", [(64, 16), (1024, 256), (4096, 512), (96, 32), (1024, 1)])
def test_fast_block_mean_matches_the_numpy_block_reduction(n, size):
    from heliocube.resize import _block_mean

    rng = np.random.default_rng(n)
    data = rng.normal(1e4, 3e3, (n, n))
    f = n // size
    fast, reference = _block_mean(data, size), data.reshape(size, f, size, f).mean(axis=(1, 3))
    # float64 sums in another order: equal to the last bit or two, then rounded to the same float32
    np.testing.assert_allclose(fast, reference, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(fast.astype(np.float32), reference.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int8, np.uint16])
@pytest.mark.parametrize("n,size", [(4096, 512), (256, 16), (64, 32), (64, 2)])
def test_small_integer_block_means_in_float32_are_the_float64_ones(dtype, n, size):
    """8- and 16-bit integers average in float32 bands up to factor 16 (exact sums below 2**24) and give the
    same float32 frame, to the bit, as float64 accumulation; beyond that they stay in float64."""
    from heliocube.resize import _block_mean, _exact_float32

    info = np.iinfo(dtype)
    data = np.random.default_rng(n + size).integers(info.min, info.max, (n, n), endpoint=True).astype(dtype)
    data[:8, :8] = info.max  # a block at the extreme: the largest sum
    f = n // size
    reference = data.astype(np.float64).reshape(size, f, size, f).mean(axis=(1, 3)).astype(np.float32)
    assert _exact_float32(data.dtype, f) == (np.float32 if max(-int(info.min), int(info.max)) * f * f < 2**24
                                             else np.float64)  # fmt: skip
    for method, scale in (("mean", 1), ("sum", f * f)):
        np.testing.assert_array_equal(resize(data, size, method), reference * np.float32(scale), err_msg=method)
    np.testing.assert_array_equal(_block_mean(data, size).astype(np.float32), reference)
