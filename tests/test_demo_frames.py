"""The demo's cleaned frames say where the Sun is, and the pixels agree.

Every demo product is queried, fetched and cleaned through the package's own stages from the embedded archive at
two served frame sizes, then opened with ``sunpy.map.Map``. The header's Sun (centre from the WCS, radius as
RSUN_OBS over the plate scale, both through sunpy) is compared with the Sun measured in the pixels:

- EUV imagers (EIT, AIA): a circle fitted to the limb-brightening maximum along 360 rays (outliers from active
  regions on the disk rejected). The optically thin corona peaks just above the photosphere (Fe XII 195 A, formed
  at ~1.5 MK, highest), so the fitted limb may lie up to 3 % + ``EUV_LIMB_HEIGHT`` outside the header's
  photospheric radius, and no more than 3 % inside it.
- Magnetograms (MDI, HMI): the finite pixels (off-disk is NaN); centre = their centroid, radius = sqrt(area / pi).
  The NaN edge is the data's crop radius: CROP_RAD where the header gives it (MDI: 504 of 489 native pixels),
  else the limb.
- LASCO: a coronagraph shows no disk. The occulter's shadow (the dark region around the frame centre, below the
  midpoint between the darkest pixels and the median) must be centred on the header's Sun within 1 px, and its
  radius, in solar radii from the header's plate scale, must be the instrument's: the inner edge of the field of
  view, 2.0 Rsun for C2 (Brueckner et al. 1995, Sol. Phys. 162, 357), within 10 %.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from astropy.io import fits
from scipy import ndimage
from sunpy.map.sources import AIAMap, EITMap, HMIMap, LASCOMap, MDIMap

from heliocube.archive.mission import SyntheticMission
from heliocube.archive.server import ArchiveServer
from heliocube.assemble import units_of
from heliocube.clean import clean_days, day_frames_path
from heliocube.config import validate_config
from heliocube.fetch import fetch_days
from heliocube.query import ArchiveContext, write_day_manifests
from heliocube.registry import get_product
from heliocube.variants import Variant

DAY = dt.date(2010, 10, 15)
#: The demo's products and the sunpy source each must open as.
MAP_CLASS = {"EIT195": EITMap, "LASCO_C2": LASCOMap, "MDI_96m": MDIMap, "AIA171": AIAMap, "HMI_720s": HMIMap}
#: Units of the cleaned data (and so of the cube): magnetograms are line-of-sight field in Gauss.
UNITS = {"MDI_96m": "Gauss", "HMI_720s": "Gauss"}
#: How far above the photospheric limb the EUV limb brightening may peak, in solar radii.
EUV_LIMB_HEIGHT = 0.02
#: Inner edge of the field of view (the occulter's shadow) in solar radii.
OCCULTER_RSUN = {"C2": 2.0}
#: (served frame size, variant): the demo's two variants at the demo's frame size, and a smaller frame.
CASES = [(256, Variant("64px-mean-6h", 64, "mean", dt.timedelta(hours=6), {})),
         (256, Variant("128px-interp-12h", 128, "interp", dt.timedelta(hours=12), {})),
         (128, Variant("64px-mean-6h", 64, "mean", dt.timedelta(hours=6), {}))]
NO_DEFECTS = {kind: 0.0 for kind in ("quality", "hole", "missing_blocks", "streak", "cosmic_rays", "corrupt",
                                     "truncated")}


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    """``cleaned(frame_size, variant)`` -> {product: (data, header)} of the first cleaned frame of DAY."""
    built: dict = {}

    def get(frame_size: int, variant: Variant) -> dict:
        key = (frame_size, variant.name)
        if key not in built:
            built[key] = _clean_demo_day(tmp_path_factory.mktemp(f"demo{frame_size}"), frame_size, variant)
        return built[key]

    return get


def _clean_demo_day(root: Path, frame_size: int, variant: Variant) -> dict:
    mission = SyntheticMission(seed=0, frame_size=frame_size, defect_rates=NO_DEFECTS)
    frames = {}
    with ArchiveServer(mission) as server:
        config = validate_config({
            "products": list(MAP_CLASS), "date_start": DAY.isoformat(), "date_finish": DAY.isoformat(),
            "image_size": variant.image_size, "output_root": str(root),
            "archive": {"embedded_url": server.url, "embedded_frame_size": frame_size},
            "fetch": {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "retries": 2, "timeout_seconds": 30},
            "jsoc": {"poll_seconds": 0.01},
        })
        context = ArchiveContext.from_config(config, server.url)
        for name in MAP_CLASS:
            days = [DAY + dt.timedelta(days=k) for k in (-1, 0, 1)]
            write_day_manifests(name, days, context, root, root / f"{name}.index.csv")
            slots, _ = fetch_days(name, [DAY], context, root, cadence=variant.cadence,
                                  tolerance=dt.timedelta(hours=3), anchor=DAY)
            index, ledger = clean_days(name, variant, [DAY], slots, root, anchor=DAY)
            assert len(index) and ledger.empty, name
            with fits.open(day_frames_path(root, variant.name, name, DAY)) as hdul:
                frames[name] = (hdul[1].data.astype(np.float64), hdul[1].header.copy())
    return frames


def _header_sun(smap) -> tuple[float, float, float]:
    """0-based pixel (x, y) of the Sun centre and the photospheric radius in pixels, as sunpy reads the header."""
    x, y = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
    return float(x), float(y), float((smap.rsun_obs / smap.scale[0]).to_value(u.pix))


def _fit_circle(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle (Kasa) through (x, y) points: centre x, y and radius."""
    design = np.c_[2 * points, np.ones(len(points))]
    (cx, cy, c), *_ = np.linalg.lstsq(design, (points**2).sum(axis=1), rcond=None)
    return cx, cy, float(np.sqrt(c + cx**2 + cy**2))


def _euv_limb(data: np.ndarray, rays: int = 360) -> tuple[float, float, float]:
    """Circle through the limb-brightening maximum of an EUV image, measured from the pixels alone.

    Starting from the frame centre, each ray's brightest point in its outer two thirds is taken; a circle is fitted
    with points more than 3 sigma (robust) off it dropped (active regions), and the rays are cast again from the
    new centre.
    """
    image = ndimage.median_filter(np.nan_to_num(data, nan=np.nanmin(data)), 3)
    ny, nx = image.shape
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    for _ in range(3):
        radii = np.arange(0, min(cx, cy, nx - 1 - cx, ny - 1 - cy), 0.1)
        start = len(radii) // 3
        points = []
        for theta in np.linspace(0, 2 * np.pi, rays, endpoint=False):
            xs, ys = cx + radii * np.cos(theta), cy + radii * np.sin(theta)
            profile = ndimage.map_coordinates(image, [ys, xs], order=1)
            k = start + int(np.argmax(profile[start:]))
            points.append((xs[k], ys[k]))
        points = np.array(points)
        keep = np.ones(len(points), dtype=bool)
        for _ in range(5):
            cx, cy, radius = _fit_circle(points[keep])
            residual = np.hypot(points[:, 0] - cx, points[:, 1] - cy) - radius
            centre = np.median(residual[keep])
            spread = 1.4826 * np.median(np.abs(residual[keep] - centre))
            keep = np.abs(residual - centre) < 3 * spread + 0.25
    return cx, cy, radius


def _finite_disk(data: np.ndarray) -> tuple[float, float, float]:
    """Centroid and equivalent radius of the finite pixels (a magnetogram is NaN off the disk)."""
    ys, xs = np.nonzero(np.isfinite(data))
    return xs.mean(), ys.mean(), float(np.sqrt(len(xs) / np.pi))


def _occulter(data: np.ndarray) -> tuple[float, float, float]:
    """Centroid and equivalent radius of the dark region holding the frame centre (the occulter's shadow)."""
    threshold = 0.5 * (np.nanpercentile(data, 2) + np.nanmedian(data))
    labels, _ = ndimage.label(np.nan_to_num(data, nan=np.inf) < threshold)
    ny, nx = data.shape
    region = labels == labels[ny // 2, nx // 2]
    assert labels[ny // 2, nx // 2] and not region[0].any() and not region[:, 0].any(), "no occulter at the centre"
    ys, xs = np.nonzero(region)
    return xs.mean(), ys.mean(), float(np.sqrt(len(xs) / np.pi))


@pytest.mark.parametrize(("frame_size", "variant"), CASES, ids=[f"{f}px-{v.name}" for f, v in CASES])
@pytest.mark.parametrize("name", list(MAP_CLASS))
def test_cleaned_frame_header_puts_the_sun_where_the_pixels_show_it(cleaned, name, frame_size, variant):
    data, header = cleaned(frame_size, variant)[name]
    product = get_product(name)
    assert data.shape == (variant.image_size, variant.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smap = sunpy.map.Map(data, header)
        x, y, radius = _header_sun(smap)  # LASCO: sunpy assumes an Earth observer for RSUN_OBS, and says so
    assert type(smap) is MAP_CLASS[name], f"{name} opens as {type(smap).__name__}"
    if product.instrument in ("EIT", "AIA"):
        mx, my, measured = _euv_limb(data)
        assert 0.97 * radius <= measured <= (1.03 + EUV_LIMB_HEIGHT) * radius, (name, measured, radius)
    elif product.instrument in ("MDI", "HMI"):
        mx, my, measured = _finite_disk(data)
        crop = radius * header["CROP_RAD"] / header["R_SUN"] if "CROP_RAD" in header else radius
        assert measured == pytest.approx(crop, rel=0.03), (name, measured, crop)
        assert units_of(header, product.units) == UNITS[name] and smap.unit == u.G
    else:
        mx, my, measured = _occulter(data)
        assert measured / radius == pytest.approx(OCCULTER_RSUN[product.detector], rel=0.10), (name, measured, radius)
    assert np.hypot(mx - x, my - y) <= 1.0, (name, (mx, my), (x, y))
    # every pixel radius the header states is the one sunpy derives from RSUN_OBS and the plate scale
    for key in ("R_SUN", "SOLAR_R"):
        if key in header:
            assert header[key] == pytest.approx(radius, rel=0.01), key
