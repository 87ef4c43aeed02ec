"""FrameQC: the quality gate of the fetch stage, driven by the product registry."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from ..fetch.gate import Rejection
from ..header import SCALE_KEYWORD
from ..registry import get_product
from . import checks
from .geometry import disk_geometry, valid_region_mask
from .thresholds import Thresholds

__all__ = ["FrameQC", "read_frame"]


def read_frame(path: Path | str) -> tuple[np.ndarray, fits.Header]:
    """Data and header of the first HDU holding data (compressed JSOC files: the first extension).

    Raises
    ------
    ValueError
        When the file is unreadable, truncated or holds no image data.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    if hdu.header.get("NAXIS", 0) or getattr(hdu, "is_image", False):
                        data = hdu.data
                        if data is not None:
                            return np.array(data), hdu.header.copy()
    except Exception as exc:  # astropy raises many kinds on broken files
        raise ValueError(f"unreadable FITS: {type(exc).__name__}: {exc}") from exc
    raise ValueError("no HDU holds image data")


class FrameQC:
    """Quality gate for one registry product (implements :class:`heliocube.fetch.gate.QualityGate`).

    Parameters
    ----------
    product_name : str
        Registry product; its ``quality_keyword`` and ``valid_region`` decide what is checked.
    thresholds : Thresholds or mapping, optional
        Defaults: :class:`Thresholds()`; a mapping is read with :meth:`Thresholds.from_mapping`.
    expected_size : int, optional
        Edge the frames must have. Default: the registry's ``native_size``, divided by the header's rescale factor
        (``HC_SCALE``) when a frame was served resampled.

    Checks after download, in this order (first failure wins): ``unreadable``, ``quality`` / ``missing_blocks`` /
    ``missvals`` (header), ``shape``, ``holes``, ``streak`` (annulus products only), ``cosmic_rays``.
    """

    def __init__(self, product_name: str, thresholds: Thresholds | dict | None = None, expected_size=None):
        self.product = get_product(product_name)
        if thresholds is None:
            thresholds = Thresholds()
        elif not isinstance(thresholds, Thresholds):
            thresholds = Thresholds.from_mapping(thresholds)
        self.thresholds = thresholds
        self.expected_size = None if expected_size is None else int(expected_size)
        #: streak detection is for coronagraphs: products whose valid region is an annulus around an occulter
        self.detect_streaks = self.product.valid_region.shape == "annulus"

    # ------------------------------------------------------------------ QualityGate
    def before_download(self, candidate: pd.Series) -> Rejection | None:
        """Reject a manifest row whose archive ``quality`` is non-zero (no download needed)."""
        value = candidate.get("quality") if hasattr(candidate, "get") else None
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        try:
            flagged = int(value) != 0
        except (TypeError, ValueError):
            flagged = str(value).strip() not in ("", "0")
        if flagged:
            return Rejection("quality", checks.plain(value), "manifest quality")
        return None

    def after_download(self, candidate: pd.Series | None, path: Path | str) -> Rejection | None:
        """Open the file and run the checks in order; the first Rejection, or None to accept."""
        try:
            data, header = read_frame(path)
        except ValueError as exc:
            return Rejection("unreadable", None, str(exc))
        for check in self._checks(data, header):
            rejection = check()
            if rejection is not None:
                return rejection
        return None

    # ------------------------------------------------------------------ internals
    def _expected(self, header) -> int:
        if self.expected_size is not None:
            return self.expected_size
        return round(self.product.native_size / float(header.get(SCALE_KEYWORD, 1.0) or 1.0))

    def _mask(self, data, header) -> np.ndarray:
        return valid_region_mask(header, data.shape, self.product.valid_region)

    def _checks(self, data, header):
        th = self.thresholds
        yield lambda: checks.header_flags(header, self.product.quality_keyword, th)
        yield lambda: checks.shape(data, self._expected(header))
        state = {}

        def mask():
            if "mask" not in state:
                state["mask"] = self._mask(data, header)
            return state["mask"]

        yield lambda: checks.holes(data, mask(), _blank(data, header), th)
        if self.detect_streaks:
            yield lambda: checks.streaks(data, mask(), th)
        yield lambda: checks.cosmic_rays(data, mask(), th)

    def measure(self, path: Path | str) -> dict:
        """Every QC metric of a file (for ledgers and cube tables); ``readable`` False when it cannot be opened."""
        try:
            data, header = read_frame(path)
        except ValueError as exc:
            return {"readable": False, "error": str(exc)}
        qk = self.product.quality_keyword
        out = {
            "readable": True,
            "shape": "x".join(str(n) for n in data.shape),
            "quality": header.get(qk) if qk else None,
            "missing_blocks": checks.missing_blocks(header),
            "missvals": header.get("MISSVALS"),
        }
        if checks.shape(data) is not None:
            return out
        geo = disk_geometry(header, data.shape)
        mask = self._mask(data, header)
        out.update(
            centre_x=geo.cx,
            centre_y=geo.cy,
            rsun_px=geo.rsun_px,
            geometry_source=geo.source,
            valid_pixels=int(mask.sum()),
            hole_fraction=checks.hole_fraction(data, mask, _blank(data, header)),
            streak_segments=(len(checks.streak_segments(data, mask, self.thresholds)) if self.detect_streaks else None),
            cosmic_ray_count=checks.cosmic_ray_count(data, mask, self.thresholds),
        )
        rejection = self.after_download(None, path)
        out["reason"] = None if rejection is None else rejection.reason
        return out


def _blank(data: np.ndarray, header) -> int | None:
    """BLANK applies to integer data only (astropy turns it into NaN when it scales)."""
    if data.dtype.kind in "iu" and header.get("BLANK") is not None:
        return int(header["BLANK"])
    return None
