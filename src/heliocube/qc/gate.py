"""FrameQC: the quality gate of the fetch stage, driven by the product registry."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from ..fetch.gate import Rejection
from ..frameio import read_frame, stored_blank
from ..header import SCALE_KEYWORD, with_record_keywords
from ..manifest import record_keywords
from ..registry import get_product
from . import checks
from .frame_region import saturation_level
from .geometry import disk_geometry, region_masks
from .layouts import LayoutStore
from .thresholds import Thresholds

__all__ = ["FrameQC", "qc_code_digest", "read_frame"]

@functools.cache
def qc_code_digest() -> str:
    """SHA-256 of the source of every module that can decide a QC verdict and of the versions of the libraries
    they import (numpy, OpenCV, astropy, sunpy...): a changed check, a fixed decoder or another OpenCV gives another
    digest. The modules are not listed by hand: they are every module of :mod:`heliocube.qc` and every heliocube
    module those can import (:func:`heliocube.codedigest.code_digest`, which says what is followed and what is
    not), so a check moved to a new module, or a helper a check starts to import, counts without an edit here.
    Computed once per process (~30 ms: bench/bench_qc_digest.py)."""
    from ..codedigest import code_digest

    return code_digest(["heliocube.qc"])


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
    layouts : heliocube.qc.layouts.LayoutStore, optional
        Where the header layouts checked against sunpy are remembered across processes (the fetch jobs': under the
        output root), so that a later process imports sunpy only for a layout never checked; None: checked once
        per process.

    Checks after download, in this order (first failure wins): ``unreadable``, ``quality`` / ``missing_blocks`` /
    ``missvals`` (header), ``shape``, ``holes``, ``streak`` (annulus products, frames of at least
    ``streak_min_size`` pixels), ``cosmic_rays``.

    The valid-region mask is computed once per frame geometry and size (and cached across gates); every check runs
    on the full-resolution frame, 4096x4096 included.
    """

    #: accepted files whose metrics are remembered for :meth:`metrics_of` (oldest forgotten first)
    METRICS_KEPT = 65536

    def __init__(self, product_name: str, thresholds: Thresholds | dict | None = None, expected_size=None, *,
                 handoff=None, layouts: LayoutStore | None = None):
        self.product = get_product(product_name)
        if thresholds is None:
            thresholds = Thresholds()
        elif not isinstance(thresholds, Thresholds):
            thresholds = Thresholds.from_mapping(thresholds)
        self.thresholds = thresholds
        self.expected_size = None if expected_size is None else int(expected_size)
        #: streak detection is for coronagraphs: products whose valid region is an annulus around an occulter
        self.detect_streaks = self.product.is_coronagraph
        self._metrics: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._handoffs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._decoded = threading.local()
        #: :class:`heliocube.handoff.HandoffWriter` keeping each accepted frame for the clean stage, or None
        self.handoff = handoff
        #: :class:`heliocube.qc.layouts.LayoutStore` of the header layouts checked against sunpy, or None
        self.layouts = layouts

    @property
    def handoff_tag(self) -> str | None:
        """The tag of the handoffs this gate writes (None: it writes none)."""
        return None if self.handoff is None else self.handoff.tag

    @functools.cached_property
    def fingerprint(self) -> str:
        """What decides this gate's verdicts (the product's registry entry, thresholds, expected size,
        :func:`qc_code_digest`): the fetch stage reuses a verdict recorded under the same fingerprint for the same,
        unchanged file. The whole entry, not its name: ``data/products.yaml`` is no module the code digest sees,
        and its valid region, quality keyword and sizes decide verdicts."""
        what = {"product": dataclasses.asdict(self.product), "thresholds": self.thresholds.as_dict(),
                "expected_size": self.expected_size, "code": qc_code_digest()}
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()

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
        """Open the file and run the checks in order; the first Rejection, or None to accept.

        The metrics of an accepted file are kept for :meth:`metrics_of`. For a JSOC product the candidate's
        archive keywords (manifest ``keywords``) complete the file's header (:meth:`inspect`).
        """
        self._decoded.frame = None
        rejection, metrics = self.inspect(path, keywords=record_keywords(self.product, candidate))
        frame, self._decoded.frame = self._decoded.frame, None
        key = str(Path(path))
        # the decoded frame, kept for the clean stage while it is in hand (the one decode of the common case)
        handoff = None
        if rejection is None and self.handoff is not None and frame is not None:
            handoff = self.handoff.write(path, *frame)
        with self._lock:
            if rejection is None:
                self._metrics[key] = metrics
                self._metrics.move_to_end(key)
                while len(self._metrics) > self.METRICS_KEPT:
                    self._metrics.popitem(last=False)
            else:
                self._metrics.pop(key, None)
            if handoff is None:
                self._handoffs.pop(key, None)
            else:
                self._handoffs[key] = handoff
        return rejection

    def handoff_of(self, path: Path | str) -> dict | None:
        """The handoff entry (:meth:`heliocube.handoff.HandoffWriter.write`) of a file this gate accepted last."""
        with self._lock:
            return self._handoffs.pop(str(Path(path)), None)

    def metrics_of(self, path: Path | str) -> dict:
        """Metrics of a file this gate accepted (see :meth:`inspect`); {} when it did not or does not know it."""
        with self._lock:
            return dict(self._metrics.get(str(Path(path)), {}))

    # ------------------------------------------------------------------ inspection
    def inspect(self, path: Path | str, keywords=None) -> tuple[Rejection | None, dict]:
        """The verdict on a file and the metrics measured until it was reached.

        ``keywords`` (the record's archive keywords, mapping or JSON) fill the cards the file lacks first: JSOC's
        as-is files have no geometry of their own (:func:`heliocube.header.with_record_keywords`).

        Returns
        -------
        rejection : Rejection or None
            The first failed check, or None when the file is accepted.
        metrics : dict
            Plain Python scalars, a key for each check that ran: ``quality`` (the header's quality keyword),
            ``missing_blocks``, ``missvals`` (when the header has them), ``hole_fraction``, ``streak_segments``
            (annulus products), ``cosmic_ray_count``. A check after the rejecting one did not run and has no key.
        """
        metrics: dict = {}
        try:
            data, header = read_frame(path)
        except ValueError as exc:
            return Rejection("unreadable", None, str(exc)), metrics
        if self.handoff is not None:  # for after_download's handoff, in this thread
            self._decoded.frame = (data, header)
        return self._run(data, with_record_keywords(header, keywords), metrics), metrics

    def _run(self, data: np.ndarray, header, metrics: dict) -> Rejection | None:
        th = self.thresholds
        rejection = checks.header_flags(header, self.product.quality_keyword, th, metrics)
        if rejection is None:
            rejection = checks.shape(data, self._expected(header))
        if rejection is not None:
            return rejection
        region = region_masks(header, data.shape, self.product.valid_region, self.layouts)
        work = checks.FrameWork(data, region, stored_blank(data, header), saturation_level(data.dtype, header, th,
                                                                                       self.product.full_scale_dn))
        metrics["hole_fraction"] = fraction = checks.hole_fraction(work, region)
        if fraction > th.hole_fraction:
            return Rejection("holes", round(fraction, 6), f"> {th.hole_fraction:g} of the valid region")
        if self._search_streaks(data):
            segments = checks.streak_segments(work, region, th)
            metrics["streak_segments"] = len(segments)
            rejection = checks._streak_rejection(segments, th)
            if rejection is not None:
                return rejection
        metrics["cosmic_ray_count"] = count = checks.cosmic_ray_count(work, region, th)
        return checks._cosmic_ray_rejection(count, region.n, th)

    # ------------------------------------------------------------------ internals
    def _search_streaks(self, data: np.ndarray) -> bool:
        return self.detect_streaks and max(data.shape) >= self.thresholds.streak_min_size

    def _expected(self, header) -> int:
        if self.expected_size is not None:
            return self.expected_size
        return round(self.product.native_size / float(header.get(SCALE_KEYWORD, 1.0) or 1.0))

    def measure(self, path: Path | str, keywords=None) -> dict:
        """Every QC metric of a file (for ledgers and cube tables); ``readable`` False when it cannot be opened."""
        try:
            data, header = read_frame(path)
        except ValueError as exc:
            return {"readable": False, "error": str(exc)}
        header = with_record_keywords(header, keywords)
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
        geo = disk_geometry(header, data.shape, self.layouts)
        region = region_masks(header, data.shape, self.product.valid_region, self.layouts)
        saturation = saturation_level(data.dtype, header, self.thresholds, self.product.full_scale_dn)
        work = checks.FrameWork(data, region, stored_blank(data, header), saturation)
        out.update(
            centre_x=geo.cx,
            centre_y=geo.cy,
            rsun_px=geo.rsun_px,
            geometry_source=geo.source,
            valid_pixels=region.n,
            hole_fraction=checks.hole_fraction(work, region),
            streak_segments=(
                len(checks.streak_segments(work, region, self.thresholds)) if self._search_streaks(data) else None
            ),
            cosmic_ray_count=checks.cosmic_ray_count(work, region, self.thresholds),
            cosmic_ray_limit=checks.cosmic_ray_limit(region.n, self.thresholds),
        )
        rejection = self._run(data, header, {})
        out["reason"] = None if rejection is None else rejection.reason
        return out

