"""heliocube.calibrate.affine against the reference (full resolution, then resize) on real AIA, EIT, HMI and LASCO
headers: synthetic images of known geometry (a limb-darkened disk, point-like features at known helioprojective
positions), positions within 0.1 output pixel, disk-integrated flux within 1 %, the same WCS and keywords."""

import functools
import warnings

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits

from heliocube.archive.templates import load_template_header, sunpy_test_path
from heliocube.calibrate import calibrate, calibrate_frame, calibration_tag, parse_options
from heliocube.calibrate.affine import intermediate_factor
from heliocube.calibrate.geometry import input_geometry
from heliocube.header import rescale_header
from heliocube.resize import resize, resize_frame
from heliocube.variants import variant_of

pytestmark = pytest.mark.filterwarnings("ignore::sunpy.util.exceptions.SunpyMetadataWarning")

SDOML = {"exposure_normalise": True, "fixed_rsun_arcsec": 976.0, "north_up": True}
REFERENCE = {**SDOML, "method": "full_resolution"}
LASCO_DIR = "tests/data/lasco"
#: Keywords both paths must write identically (WCS, radii, provenance).
SAME_KEYS = ("NAXIS1", "NAXIS2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CUNIT1", "CUNIT2",
             "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RSUN_OBS", "R_SUN", "SOLAR_R", "X0_MP", "Y0_MP", "HC_NORTH",
             "HC_RSUNF", "HC_ZOOM", "HC_SCALE", "BUNIT", "HC_EXPN", "BITPIX", "EXPTIME")


def _sunpy_header(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.getheader(sunpy_test_path(name))


def _at(header, n):
    """A real header on an ``n x n`` grid (the sunpy test files are binned copies of full frames)."""
    return rescale_header(header, header["NAXIS1"] / n, naxis=(n, n))


def _eit(n):
    header = _sunpy_header("EIT/efz20040301.000010_s.fits")  # binned 1024 -> 128 without CDELT/SOLAR_R: fix them
    header["CDELT1"] = header["CDELT2"] = header["CDELT1"] * 1024 / 128
    header["SOLAR_R"] = header["SOLAR_R"] * 128 / 1024
    return _at(header, n)


def _lasco(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(f"{LASCO_DIR}/{name}")
    header["EXPTIME"] = header.get("EXPTIME") or 25.0
    return header


#: case -> (product, header of the input grid, output size); real headers at the sizes of real frames or binned
CASES = {
    "aia": ("AIA171", lambda: _at(_sunpy_header("aia_171_level1.fits"), 2048), 256),
    "eit": ("EIT195", lambda: _eit(1024), 128),
    "hmi-rolled-180": ("HMI_720s", lambda: _at(_sunpy_header("resampled_hmi.fits"), 1024), 128),
    "lasco-c2-rolled-180": ("LASCO_C2", lambda: _lasco("planet_22321894.fts.gz"), 128),
    "lasco-c3-level1": ("LASCO_C3", lambda: _lasco("comet_96p_level1_35082085.fts.gz"), 256),
    "lasco-c3-template": ("LASCO_C3", lambda: load_template_header("lasco_c3.header"), 256),
}


def _quiet_map(data, header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sunpy.map.Map(data, header)


def _features(smap, coronagraph):
    """Known sky positions: disk centre, inside the disk, near the limb (and out in the corona for coronagraphs)."""
    rsun = smap.rsun_obs.to_value(u.arcsec)
    radii = [0.0, 0.45, 0.6, 0.85, 0.92] + ([2.8, 3.5] if coronagraph else [])
    angles = np.deg2rad([0, 35, 160, 250, 300, 80, 200])[: len(radii)]
    tx = np.array(radii) * rsun * np.cos(angles)
    ty = np.array(radii) * rsun * np.sin(angles)
    return SkyCoord(tx * u.arcsec, ty * u.arcsec, frame=smap.coordinate_frame)


def _scene(header, out_size, product):
    """(disk image, features image, feature coordinates, input map): the synthetic input of a case."""
    n = int(header["NAXIS1"])
    smap = _quiet_map(np.zeros((n, n), np.float32), header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sun_x, sun_y = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    rsun_px = smap.rsun_obs.to_value(u.arcsec) / abs(smap.scale[0].to_value(u.arcsec / u.pix))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    r = np.hypot(xx - sun_x, yy - sun_y) / rsun_px
    mu = np.sqrt(np.clip(1 - r**2, 0, 1))
    disk = np.where(r < 1, 1000.0 * (0.3 + 0.7 * mu), 100.0 * np.exp(-4.0 * (r - 1)))
    coords = _features(smap, product.startswith("LASCO"))
    fx, fy = smap.wcs.world_to_pixel(coords)
    f = n / out_size
    keep = []  # at least 8 output pixels apart (a small disk is crowded) and inside the frame
    for i, (x, y) in enumerate(zip(fx, fy, strict=True)):
        if 8 * f < min(x, y) < n - 8 * f and all(np.hypot(x - fx[j], y - fy[j]) >= 8 * f for j in keep):
            keep.append(i)
    coords, fx, fy = coords[keep], fx[keep], fy[keep]
    sigma = 0.8 * f  # point-like at the output scale
    features = np.zeros((n, n))
    half = int(6 * sigma) + 1
    for x, y in zip(fx, fy, strict=True):
        rows = slice(max(0, int(y) - half), int(y) + half + 1)
        cols = slice(max(0, int(x) - half), int(x) + half + 1)
        features[rows, cols] += 5000.0 * np.exp(-0.5 * ((xx[rows, cols] - x) ** 2 + (yy[rows, cols] - y) ** 2)
                                                / sigma**2)
    return disk.astype(np.float32), features.astype(np.float32), coords, smap


def _centroid(image, x, y, radius=3):
    x0, y0 = round(float(x)), round(float(y))
    window = np.nan_to_num(image[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]).clip(0)
    yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(window * xx).sum() / window.sum(), (window * yy).sum() / window.sum()])


def _disk_flux(image, header, within=1.0):
    smap = _quiet_map(image, header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cx, cy = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    rsun_px = smap.rsun_obs.to_value(u.arcsec) / abs(smap.scale[0].to_value(u.arcsec / u.pix))
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return float(np.nansum(image[np.hypot(xx - cx, yy - cy) <= within * rsun_px]))


def _world_of_pixel_centres(image, header):
    smap = _quiet_map(image, header)
    n = image.shape[0]
    idx = np.array([0, n // 3, n // 2, n - 1], dtype=float)
    xx, yy = np.meshgrid(idx, idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        world = smap.pixel_to_world(xx.ravel() * u.pix, yy.ravel() * u.pix)
    return np.array([world.Tx.to_value(u.arcsec), world.Ty.to_value(u.arcsec)])


@functools.cache
def _case(name):
    """Both paths on one case: {product, header, size, coords, ref/affine: (disk, disk header, features)}; computed
    once per session (the reference takes a second at 2048²)."""
    product, make_header, size = CASES[name]
    header = make_header()
    disk, features, coords, smap = _scene(header, size, product)
    out = {"name": name, "product": product, "header": header, "size": size, "coords": coords,
           "input_map": smap, "disk": disk, "features": features}
    for key, options in (("ref", REFERENCE), ("affine", SDOML)):
        disk_out, disk_header = calibrate_frame(disk + features, header, options, product, size, "mean")
        feat_out, _ = calibrate_frame(features, header, options, product, size, "mean")
        out[key] = (disk_out, disk_header, feat_out)
    return out


@pytest.fixture(params=list(CASES))
def case(request):
    return _case(request.param)


def test_feature_positions_within_a_tenth_of_an_output_pixel(case):
    ref, ref_header, ref_features = case["ref"]
    _, _, fast_features = case["affine"]
    out_map = _quiet_map(ref, ref_header)
    expected = np.array(out_map.wcs.world_to_pixel(case["coords"])).T
    found_ref = np.array([_centroid(ref_features, x, y) for x, y in expected])
    found_fast = np.array([_centroid(fast_features, x, y) for x, y in expected])
    assert np.abs(found_fast - found_ref).max() <= 0.1, f"{case['name']}: {found_fast - found_ref}"
    # and both where the sky coordinates say (the reference is right too)
    assert np.abs(found_ref - expected).max() <= 0.15
    assert np.abs(found_fast - expected).max() <= 0.15


def test_disk_integrated_flux_within_one_percent(case):
    ref, ref_header, _ = case["ref"]
    fast, fast_header, _ = case["affine"]
    for within in (1.0, 1.5):
        assert _disk_flux(fast, fast_header, within) == pytest.approx(_disk_flux(ref, ref_header, within), rel=0.01)
    # the scalar step is applied to the small output: DN/s, like the reference
    assert fast_header["BUNIT"] == ref_header["BUNIT"]


def test_same_wcs_and_keywords_as_the_reference(case):
    ref, ref_header, _ = case["ref"]
    fast, fast_header, _ = case["affine"]
    assert fast.shape == ref.shape == (case["size"], case["size"]) and fast.dtype == np.float32
    np.testing.assert_allclose(_world_of_pixel_centres(fast, fast_header), _world_of_pixel_centres(ref, ref_header),
                               atol=1e-6)
    for key in SAME_KEYS:
        assert (key in fast_header) == (key in ref_header), key
        if key in ref_header:
            value = ref_header[key]
            assert fast_header[key] == (pytest.approx(value, rel=1e-12, abs=1e-12) if isinstance(value, float)
                                        else value), key
    assert fast_header["HC_GEOM"] == "affine" and ref_header["HC_GEOM"] == "full_resolution"
    assert "one resampling" in "".join(fast_header["HISTORY"])


def test_missing_only_where_the_reference_is(case):
    """Off-detector output pixels are NaN in both; those with valid input under their whole block are finite."""
    ref, _, _ = case["ref"]
    fast, fast_header, _ = case["affine"]
    # the two may differ only on the rim of the input, where a block holds a sliver of valid pixels
    disagree = np.isnan(ref) != np.isnan(fast)
    assert disagree.sum() <= 4 * case["size"], disagree.sum()
    # an output pixel whose block maps wholly inside the input is finite, wholly outside is NaN
    after = _quiet_map(fast, fast_header)
    before = case["input_map"]
    n_in, size = case["header"]["NAXIS1"], case["size"]
    idx = np.arange(size, dtype=float)
    xx, yy = np.meshgrid(idx, idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src_x, src_y = before.wcs.world_to_pixel(after.pixel_to_world(xx.ravel() * u.pix, yy.ravel() * u.pix))
    margin = n_in / size  # a block is ~f input pixels across
    inside = (src_x > margin) & (src_x < n_in - 1 - margin) & (src_y > margin) & (src_y < n_in - 1 - margin)
    outside = (src_x < -margin) | (src_x > n_in - 1 + margin) | (src_y < -margin) | (src_y > n_in - 1 + margin)
    values = fast.ravel()
    assert np.all(np.isfinite(values[inside])) and np.all(np.isnan(values[outside]))


def test_full_resolution_method_is_the_reference():
    """``method: full_resolution`` is calibrate() at the input size, then the resize: today's path, unchanged."""
    product, make_header, size = CASES["eit"]
    header = make_header()
    disk, features, _, _ = _scene(header, size, product)
    image = disk + features
    out, new = calibrate_frame(image, header, REFERENCE, product, size, "mean")
    full, full_header = calibrate(image, header, SDOML, product)
    expected, expected_header = resize_frame(full, full_header, size, "mean")
    np.testing.assert_array_equal(out, expected)
    assert new.tostring() == expected_header.tostring()
    # interp, minpool and maxpool have no affine form: the default falls back to the reference for them
    for method in ("interp", "maxpool"):
        fallback, fallback_header = calibrate_frame(image, header, SDOML, product, size, method)
        reference, _ = resize_frame(full, full_header, size, method)
        np.testing.assert_array_equal(fallback, reference)
        assert fallback_header["HC_GEOM"] == "full_resolution"


def test_sum_and_subsample_keep_their_meaning():
    """``sum`` is the mean times f**2; ``subsample`` samples each block's first pixel, at the reference's places."""
    eit = _case("eit")
    product, header, size, coords, features = (eit[key] for key in ("product", "header", "size", "coords",
                                                                    "features"))
    mean, _ = calibrate_frame(features, header, SDOML, product, size, "mean")
    total, _ = calibrate_frame(features, header, SDOML, product, size, "sum")
    f = header["NAXIS1"] // size
    np.testing.assert_allclose(total, mean * f * f, rtol=1e-6)
    ref, ref_header = calibrate_frame(features, header, REFERENCE, product, size, "subsample")
    fast, fast_header = calibrate_frame(features, header, SDOML, product, size, "subsample")
    assert fast_header["CRPIX1"] == pytest.approx(ref_header["CRPIX1"]) and fast_header["HC_GEOM"] == "affine"
    expected = np.array(_quiet_map(ref, ref_header).wcs.world_to_pixel(coords)).T
    shift = [_centroid(fast, x, y) - _centroid(ref, x, y) for x, y in expected]
    assert np.abs(shift).max() <= 0.1
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))


@pytest.mark.parametrize("binning", [2, 4, 8])
def test_a_binned_input_gives_the_same_frame(binning):
    """The fetch job may hand over a block-averaged frame with its binned WCS: the header alone drives the map."""
    aia = _case("aia")
    product, header, size, coords, disk, features = (aia[key] for key in ("product", "header", "size", "coords",
                                                                          "disk", "features"))
    n = header["NAXIS1"]
    binned_header = rescale_header(header, binning, naxis=(n // binning, n // binning))
    ref, ref_header, ref_features = aia["ref"]
    fast, fast_header = calibrate_frame(resize(disk + features, n // binning, "mean"), binned_header, SDOML, product,
                                        size, "mean")
    fast_features, _ = calibrate_frame(resize(features, n // binning, "mean"), binned_header, SDOML, product, size,
                                       "mean")
    expected = np.array(_quiet_map(ref, ref_header).wcs.world_to_pixel(coords)).T
    shift = [_centroid(fast_features, x, y) - _centroid(ref_features, x, y) for x, y in expected]
    assert np.abs(shift).max() <= 0.1
    assert _disk_flux(fast, fast_header) == pytest.approx(_disk_flux(ref, ref_header), rel=0.01)
    np.testing.assert_allclose(_world_of_pixel_centres(fast, fast_header), _world_of_pixel_centres(ref, ref_header),
                               atol=1e-6)
    assert fast_header["HC_SCALE"] == pytest.approx(ref_header["HC_SCALE"])


def test_missing_pixels_carry_no_weight():
    """A hole of NaN (a missing block) stays a hole: no zeros leak into its neighbours, far pixels are unchanged."""
    eit = _case("eit")
    product, header, size, disk = (eit[key] for key in ("product", "header", "size", "disk"))
    holed = disk.copy()
    holed[400:480, 500:660] = np.nan  # 80 x 160 input pixels: whole output pixels inside it
    fast, _ = calibrate_frame(holed, header, SDOML, product, size, "mean")
    clean, _ = calibrate_frame(disk, header, SDOML, product, size, "mean")
    ref, _ = calibrate_frame(holed, header, REFERENCE, product, size, "mean")
    assert np.isnan(ref).sum() > 100 and not np.isnan(clean).any()
    # the hole is where the reference has it (at most its rim of output pixels may differ)
    assert (np.isnan(fast) != np.isnan(ref)).sum() <= 0.1 * np.isnan(ref).sum()
    # around it the weighted mean is the disk's value, not pulled towards zero (zero-filling is off by ~50 %)
    finite = np.isfinite(fast)
    np.testing.assert_allclose(fast[finite], clean[finite], rtol=0.01)


def test_options_and_names():
    assert parse_options({**SDOML}).method == "affine"
    assert calibration_tag(SDOML) == "dns-r976-north"
    assert calibration_tag(REFERENCE) == "dns-r976-north-fullres"
    assert calibration_tag({"exposure_normalise": True, "method": "full_resolution"}) == "dns"  # no resampling
    with pytest.raises(ValueError, match="method"):
        parse_options({"north_up": True, "method": "bicubic"})
    config = {"image_size": 512, "resize_method": "mean", "cadence": "12min"}
    # the method is a parameter of a resampling variant only (so switching it reruns its clean jobs)
    assert variant_of(config, {"calibration": SDOML}).calibration["method"] == "affine"
    assert variant_of(config, {"calibration": REFERENCE}).name == "512px-mean-12min-dns-r976-north-fullres"
    assert "method" not in variant_of(config, {"calibration": {"exposure_normalise": True, "method": "affine"}}
                                      ).calibration
    assert variant_of(config, {"calibration": {"method": "affine"}}).calibration == {}
    assert intermediate_factor(8, "mean") in (2, 4) and intermediate_factor(1, "mean") == 1


def test_light_geometry_matches_sunpys_coordinates():
    """The disk centre and Jacobian from the observer-free WCS equal sunpy's SkyCoord answers on every case."""
    for product, make_header, _ in CASES.values():
        header = make_header()
        n = int(header["NAXIS1"])
        geometry = input_geometry((n, n), header)
        smap = _quiet_map(np.zeros((n, n), np.float32), header)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sun = np.array(smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame)))
            step = smap.pixel_to_world((sun[0] + np.array([1.0, -1.0, 0.0, 0.0])) * u.pix,
                                       (sun[1] + np.array([0.0, 0.0, 1.0, -1.0])) * u.pix)
        tx, ty = step.Tx.to_value(u.arcsec), step.Ty.to_value(u.arcsec)
        jacobian = np.array([[tx[0] - tx[1], tx[2] - tx[3]], [ty[0] - ty[1], ty[2] - ty[3]]]) / 2
        np.testing.assert_allclose(geometry.sun_pixel, sun, atol=1e-6, err_msg=product)
        np.testing.assert_allclose(geometry.jacobian, jacobian, rtol=1e-7, atol=1e-9, err_msg=product)
