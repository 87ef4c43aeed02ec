"""The QC's shortcuts (issue 13's 15 ms per 1024² frame) give what the plain computations give.

Each shortcut replaces a slower computation whose result decides a verdict: these tests hold them to the plain
computation on random inputs (numpy's nanmedian, sorting, OpenCV's labelling and Hough transform).
"""

from __future__ import annotations

import itertools
import math
import warnings

import cv2
import numpy as np
import pytest

from heliocube.qc import checks
from heliocube.qc.comet_tails import _nanmedian_rows
from heliocube.qc.framework import median_sorted, row_bands
from heliocube.qc.streaks import could_hold_segment


def _sorted_sigma(values: np.ndarray) -> float:
    """_robust_sigma's plain computation: two sorts."""
    values = np.sort(values)
    dev = np.sort(np.abs(values - median_sorted(values)))
    sigma = 1.4826 * median_sorted(dev)
    if sigma <= 0:
        sigma = 1.2533 * float(np.mean(dev))
    return sigma if sigma > 0 else 1.0


def test_nanmedian_rows_is_numpys_nanmedian():
    rng = np.random.default_rng(0)
    for trial in range(200):
        values = rng.normal(size=(int(rng.integers(1, 20)), int(rng.integers(1, 400)))) * 10 ** rng.uniform(-5, 5)
        values[rng.random(values.shape) < rng.uniform(0, 1)] = np.nan
        if trial % 5 == 0:
            values[0] = np.nan  # a row without numbers
            values = np.round(values, 1)  # ties
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(values, axis=1)
        assert np.array_equal(_nanmedian_rows(values), expected, equal_nan=True)


def test_integer_robust_sigma_is_the_sorted_one():
    rng = np.random.default_rng(1)
    for trial in range(400):
        n = int(rng.integers(1, 3000))
        kind = trial % 4
        if kind == 0:
            values = rng.normal(0, rng.uniform(0.1, 50), n).round()
        elif kind == 1:  # quantised: MAD 0, the mean-deviation fallback
            values = rng.integers(-1, 2, n).astype(float) * (rng.random(n) < 0.2)
        elif kind == 2:
            values = (rng.poisson(rng.uniform(0.01, 3), n) - rng.poisson(1, n)).astype(float)
        else:  # a few huge residuals: the histogram would be too long, the sort is used
            values = np.concatenate([rng.normal(0, 5, n).round(), rng.integers(-60000, 60000, 3).astype(float)])
        values = values.astype(np.float32)
        assert checks._robust_sigma(values, integer=True) == _sorted_sigma(values)


def test_components_are_8_connected_groups():
    rng = np.random.default_rng(2)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(3, 50, 2))
        mask = rng.random((h, w)) < rng.uniform(0.01, 0.9)
        idx = np.flatnonzero(mask)
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        ours = checks._components(idx, w)
        pairs = set(zip(labels.ravel()[idx].tolist(), ours.tolist(), strict=True))
        assert len(pairs) == count - 1 == len(set(ours.tolist()))  # the same partition


@pytest.mark.parametrize(("height", "width"), [(1024, 1024), (4096, 4096), (3, 3), (9, 3), (100, 7), (17, 65536)])
def test_row_bands_cover_the_rows_once(height, width):
    bands = row_bands(height, width)
    assert bands[0].start == 0 and bands[-1].stop == height
    assert all(a.stop == b.start for a, b in itertools.pairwise(bands))
    assert all(b.stop - b.start >= min(8, height) for b in bands)


def _random_edges(rng, size: int) -> np.ndarray:
    edges = np.zeros((size, size), dtype=np.uint8)
    edges[rng.random(edges.shape) < rng.uniform(0, 0.01)] = 255  # noise
    for _ in range(int(rng.integers(0, 4))):  # lines, some broken by gaps around the Hough's maximum gap
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
        line = np.zeros_like(edges)
        cv2.line(line, (x0, y0), (x1, y1), 255, 1)
        line[rng.random(line.shape) < rng.uniform(0, 0.3)] = 0
        edges |= line
    return edges


def _dotted_line(rng, size: int, length: int, gap: int) -> np.ndarray:
    """One line just about ``length`` long, with runs of up to ``gap`` missing pixels: the case at the limit."""
    edges = np.zeros((size, size), dtype=np.uint8)
    angle = rng.uniform(0, math.pi)
    extent = length + int(rng.integers(-2, 3))
    steps = int(extent / max(abs(math.cos(angle)), abs(math.sin(angle))))
    x0, y0 = (float(v) for v in rng.uniform(size / 2 - 5, size / 2 + 5, 2))
    for t in range(0, steps + 1, int(rng.integers(1, gap + 2))):
        x, y = round(x0 + (t - steps / 2) * math.cos(angle)), round(y0 + (t - steps / 2) * math.sin(angle))
        if 0 <= x < size and 0 <= y < size:
            edges[y, x] = 255
    return edges


def test_could_hold_segment_never_misses_a_hough_segment():
    rng = np.random.default_rng(3)
    said_no = 0
    for trial in range(600):
        size = int(rng.integers(40, 300))
        length, gap = int(rng.integers(5, 120)), int(rng.integers(1, 8))
        edges = _random_edges(rng, size) if trial % 2 else _dotted_line(rng, size, length, gap)
        cv2.setRNGSeed(1)
        votes = int(rng.integers(3, 40 if trial % 2 else 8))
        lines = cv2.HoughLinesP(edges, 1, math.pi / 360, votes, minLineLength=length,
                                maxLineGap=gap)  # fmt: skip
        if not could_hold_segment(edges, length, gap):
            said_no += 1
            assert lines is None, (trial, lines)
    assert said_no > 30  # the shortcut does skip frames


def _plain_log_image(work: checks.FrameWork) -> np.ndarray:
    """_log_image's plain computation: the positive valid pixels' mask and their maximum over the whole frame."""
    from heliocube.qc.framework import nonzero, percentile_sorted

    img, region = work.img, work.region
    ok = cv2.bitwise_and(cv2.compare(img, 0.0, cv2.CMP_GT), region.u8)
    if region.n == 0 or cv2.countNonZero(ok) == 0:
        return np.zeros(img.shape, dtype=np.uint8)
    high = cv2.minMaxLoc(img, ok)[1]
    values = work.sorted_sample
    values = values[np.searchsorted(values, 0.0, side="right") :]
    if values.size == 0:
        values = np.sort(img.ravel()[nonzero(ok)])
    lo, hi, fill = math.log10(percentile_sorted(values, 0.5)), math.log10(high), math.log10(median_sorted(values))
    scale = 255.0 / max(hi - lo, 1e-6)
    out = cv2.convertScaleAbs(cv2.log(cv2.max(img, 10.0**lo)), alpha=scale / math.log(10), beta=-lo * scale - 0.4999)
    cv2.bitwise_and(out, ok, dst=out)
    cv2.add(out, int(min(max((fill - lo) * scale, 0), 255)), dst=out, mask=cv2.bitwise_not(ok))
    return out


def test_log_image_is_the_whole_frame_one():
    """The log image's positive-pixel mask is built band by band and its maximum taken from the region's range
    (frames with holes or non-positive valid pixels): the same bytes as the whole-frame computation."""
    from heliocube.qc.streaks import _log_image

    rng = np.random.default_rng(5)
    for trial in range(60):
        size = int(rng.integers(8, 300))
        img = (10 ** rng.uniform(-12, 4, (size, size))).astype(np.float32)
        kind = trial % 5
        if kind == 1:  # holes (0 and NaN) in the valid region
            img[rng.random(img.shape) < rng.uniform(0, 0.3)] = 0
            img[rng.random(img.shape) < 0.05] = np.nan
        elif kind == 2:  # negative values (calibrated frames)
            img[rng.random(img.shape) < rng.uniform(0, 0.5)] *= -1
        elif kind == 3:  # nothing positive in the region
            img = -np.abs(img)
        mask = rng.random(img.shape) < rng.uniform(0.05, 1)
        if kind == 4:  # positive pixels only off the statistics' sub-grid (every other row and column here)
            img = -np.abs(rng.normal(size=(300, 300)).astype(np.float32))
            img[1::2, 1::2] = np.abs(img[1::2, 1::2])
            mask = np.ones(img.shape, dtype=bool)
        work = checks.FrameWork(img, mask)
        assert np.array_equal(_log_image(work), _plain_log_image(checks.FrameWork(img, mask))), trial


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32, np.float64])
def test_without_holes_is_the_whole_frame_dilation(dtype):
    """The streak search's region less its holes' outlines, from the region's own holes (stamped, or dilated when
    many), equals keep & ~dilate(every NaN/0 pixel of the frame) for the region's keep at the same margin."""
    from heliocube.qc.streaks import without_holes

    rng = np.random.default_rng(6)
    for trial in range(40):
        size = int(rng.integers(16, 200))
        yy, xx = np.mgrid[:size, :size]
        r = np.hypot(yy - rng.uniform(0, size), xx - rng.uniform(0, size))
        mask = (r >= rng.uniform(0, size / 4)) & (r <= rng.uniform(size / 4, size))
        if trial % 4 == 0:
            mask |= rng.random(mask.shape) < 0.3  # ragged edges
        data = rng.integers(1, 1000, (size, size)).astype(dtype)
        data[rng.random(data.shape) < rng.choice([0.001, 0.01, 0.2])] = 0  # in and out of the region
        data[~mask & (rng.random(data.shape) < 0.5)] = 0
        if data.dtype.kind == "f":
            data[rng.random(data.shape) < 0.01] = np.nan
            data[rng.random(data.shape) < 0.01] = np.inf * rng.choice([-1, 1])  # not holes
        data[0, :] = 0  # holes on the frame's border
        work = checks.FrameWork(data, mask)
        margin = int(rng.integers(0, 8))
        keep = work.region.keep(margin)
        bad = work.bad(with_blank=False).view(np.uint8)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        expected = cv2.bitwise_and(keep, cv2.compare(cv2.dilate(bad, kernel), 0, cv2.CMP_EQ))
        holes = work.holes_in_mask()
        assert np.array_equal(holes, np.flatnonzero(work.bad(with_blank=False) & mask))
        assert np.array_equal(without_holes(keep, holes, margin), expected), (trial, margin)


@pytest.mark.parametrize("name", ["comet_96p_level1_35082085", "planet_22321894"])  # a level-1 fill, a C2 halo
def test_search_region_is_keep_less_fill_and_halo(name):
    """search_region's saturating subtractions of 0/255 masks are keep & ~dilate(fill) & ~halo."""
    from pathlib import Path

    from heliocube.frameio import read_frame
    from heliocube.qc import FrameQC, region_masks
    from heliocube.qc.frame_region import fill_mask, halo_mask, saturation_level, search_region

    data, header = read_frame(Path(__file__).parent / "data" / "lasco" / f"{name}.fts.gz")
    gate = FrameQC(f"LASCO_{header['DETECTOR'].strip()}")
    th = gate.thresholds
    region = region_masks(header, data.shape, gate.product.valid_region)
    work = checks.FrameWork(data, region, None, saturation_level(data.dtype, header, th, gate.product.full_scale_dn))
    keep = region.keep(int(th.streak_margin))
    expected = keep.copy()
    fill, halo = fill_mask(work, th), halo_mask(work, th)
    assert fill is not None or halo is not None
    if fill is not None:
        m = int(th.streak_margin)
        fill = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * m + 1, 2 * m + 1)))
        expected &= ~fill
    if halo is not None:
        expected[halo[0]] &= ~halo[1]
    assert np.array_equal(search_region(work, keep, th), expected)


def _plain_halo(work: checks.FrameWork, th) -> np.ndarray | None:
    """halo_mask's plain computation, every step on the whole search box; the whole frame's mask."""
    from heliocube.qc.frame_region import _disk

    region, sat, geometry = work.region, work.saturation, work.region.geometry
    if work.region_range[1] < th.streak_halo * sat:
        return None
    inner = region.region.inner * geometry.rsun_px
    reach = th.streak_halo_reach * inner
    h, w = region.shape
    rows = slice(max(int(geometry.cy - reach), 0), min(int(geometry.cy + reach) + 2, h))
    cols = slice(max(int(geometry.cx - reach), 0), min(int(geometry.cx + reach) + 2, w))
    bright = cv2.compare(work.img[rows, cols], th.streak_halo * sat, cv2.CMP_GE)
    if cv2.countNonZero(bright) == 0:
        return None
    centre = (round(geometry.cx) - cols.start, round(geometry.cy) - rows.start)
    cv2.circle(bright, centre, max(int(inner) - 1, 1), 255, -1)
    limit = np.zeros_like(bright)
    cv2.circle(limit, centre, int(reach), 255, -1)
    cv2.bitwise_and(bright, limit, dst=bright)
    k = max(3, round(th.streak_ridge_width * max(h, w)) | 1)
    core = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    if not core[centre[1], centre[0]]:
        return None
    cv2.floodFill(core, np.zeros((core.shape[0] + 2, core.shape[1] + 2), np.uint8), centre, 128, flags=8)
    core = cv2.compare(core, 128, cv2.CMP_EQ)
    rim = cv2.bitwise_and(cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k + 1, 2 * k + 1))), bright)
    halo = cv2.bitwise_or(core, rim)
    margin = 2 * int(th.streak_margin)
    if margin > 0:
        halo = cv2.dilate(halo, _disk(margin))
    out = np.zeros(region.shape, np.uint8)
    out[rows, cols] = halo
    return out


@pytest.mark.parametrize("name", ["comet_22104858", "planet_22321894", "planet_32046494"])  # C2 halos, a C3
def test_halo_on_the_bright_pixels_box_is_the_search_box_one(name):
    """halo_mask works on the bright pixels' box, not the whole search box: the same halo, on the real frame and
    on it with bright blobs and bars added at random (near the occulter, the reach, the box's edges)."""
    from pathlib import Path

    from heliocube.frameio import read_frame
    from heliocube.qc import FrameQC, region_masks
    from heliocube.qc.frame_region import halo_mask, saturation_level

    data, header = read_frame(Path(__file__).parent / "data" / "lasco" / f"{name}.fts.gz")
    gate = FrameQC(f"LASCO_{header['DETECTOR'].strip()}")
    th = gate.thresholds
    region = region_masks(header, data.shape, gate.product.valid_region)
    saturation = saturation_level(data.dtype, header, th, gate.product.full_scale_dn)
    geometry = region.geometry
    reach = th.streak_halo_reach * region.region.inner * geometry.rsun_px
    rng = np.random.default_rng(7)
    found = 0
    for trial in range(12):
        frame = data.copy()
        for _ in range(trial):  # bright blobs and thin bars around the reach circle and the box's corners
            angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5) * reach
            x, y = int(geometry.cx + radius * np.cos(angle)), int(geometry.cy + radius * np.sin(angle))
            hw, hh = (int(rng.integers(1, 20)), int(rng.integers(1, 20))) if trial % 2 else (40, 1)
            frame[max(y - hh, 0) : y + hh + 1, max(x - hw, 0) : x + hw + 1] = int(saturation) + 10
        work = checks.FrameWork(frame, region, None, saturation)
        halo = halo_mask(work, th)
        expected = _plain_halo(checks.FrameWork(frame, region, None, saturation), th)
        got = None
        if halo is not None:
            got = np.zeros(region.shape, np.uint8)
            got[halo[0]] = halo[1]
        assert (got is None) == (expected is None), trial
        if got is not None:
            found += 1
            assert np.array_equal(got, expected), trial
    assert found


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_image_is_finite_with_holes_at_0(dtype):
    """FrameWork.img (its finiteness test is numpy's isfinite, not cv2.checkRange): float32 with NaN and
    infinities (float64 overflowing float32 included) at 0, and the frame itself when float32 and finite."""
    from heliocube.qc.framework import _all_finite

    rng = np.random.default_rng(8)
    for trial in range(30):
        data = (rng.normal(size=(int(rng.integers(1, 90)), 64)) * 10 ** rng.uniform(-30, 30)).astype(dtype)
        kind = trial % 4
        if kind:
            bad = rng.random(data.shape) < 0.05
            data[bad] = [np.nan, np.inf, -np.inf][kind - 1]
        if dtype == np.float64 and trial % 5 == 0:
            data[0, 0] = 1e300  # finite, but not in float32
        assert _all_finite(data) == cv2.checkRange(data)[0]
        with np.errstate(over="ignore"):  # 1e300 becomes an infinity in float32, then 0
            img = checks.FrameWork(data, np.ones(data.shape, bool)).img
            expected = data.astype(np.float32)
        expected[~np.isfinite(expected)] = 0
        assert img.dtype == np.float32 and np.array_equal(img, expected)
        assert (img is data) == (dtype == np.float32 and bool(np.isfinite(data).all()))
