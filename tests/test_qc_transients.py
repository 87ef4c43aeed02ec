"""The streak check's two transient signs on real LASCO sky: short saturated blooms and comet tails.

Each test paints one feature onto a real frame whose labelled transients were interpolated away (its stars,
cosmic-ray hits, streamers and, on C2, the long exposure's saturated occulter halo stay), so the sky around the
feature is the instrument's own.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from heliocube.qc import FrameQC, checks, region_masks
from heliocube.qc.gate import read_frame

LASCO_DATA = Path(__file__).parent / "data" / "lasco"
LABELS = yaml.safe_load((LASCO_DATA / "labels.yaml").read_text())
#: a C3 pixel at full well (the 19 s frames' blooms sit on a 12300-13300 DN plateau)
C3_FULL_WELL = 12700


def _without_transients(name: str) -> tuple[np.ndarray, object]:
    """The frame with each labelled box replaced, column by column, by a log-linear blend of the rows around it."""
    data, header = read_frame(LASCO_DATA / f"{name}.fts.gz")
    data = data.copy()
    for obj in LABELS[name]:
        x0, y0, x1, y1 = obj["box"]
        top, bottom = max(y0 - 3, 1), min(y1 + 3, data.shape[0] - 2)
        below, above = data[top - 1, x0 : x1 + 1].astype(float), data[bottom + 1, x0 : x1 + 1].astype(float)
        t = (np.arange(top, bottom + 1)[:, None] - (top - 1)) / (bottom + 2 - top)
        patch = np.exp((1 - t) * np.log(np.maximum(below, 1)) + t * np.log(np.maximum(above, 1)))
        data[top : bottom + 1, x0 : x1 + 1] = np.rint(patch).astype(data.dtype)
    return data, header


def _segments(data, header, **thresholds) -> np.ndarray:
    """Every streak segment the gate's search finds (no early stop at the rejection count)."""
    gate = FrameQC(f"LASCO_{header['DETECTOR'].strip()}")
    every = dataclasses.replace(gate.thresholds, streak_segments=10**9, **thresholds)
    region = region_masks(header, data.shape, gate.product.valid_region)
    return checks.streak_segments(data, region, every, header=header, full_scale_dn=gate.product.full_scale_dn)


def _near(segments: np.ndarray, x: float, y: float, reach: float) -> list[list[int]]:
    return [s for s in segments.tolist() if min(math.hypot(s[0] - x, s[1] - y), math.hypot(s[2] - x, s[3] - y)) < reach]


@pytest.fixture(scope="module")
def c3_sky():
    return _without_transients("planet_32236617")  # C3, 19 s: Mercury's bloom removed


@pytest.fixture(scope="module")
def c2_sky():
    return _without_transients("comet_22104858")  # C2, 25 s, saturated halo: the comet (head and tail) removed


def test_clean_skies_have_no_segments(c3_sky, c2_sky):
    """The C2 frame's saturated halo edge, its stars and hits alone give no segment (nor do the C3 frame's)."""
    assert _segments(*c3_sky).tolist() == []
    assert _segments(*c2_sky).tolist() == []


@pytest.mark.parametrize("length, found", [(14, True), (12, True), (7, False), (3, False)])
def test_short_saturated_run_is_a_bloom(c3_sky, length, found):
    """A run of >= 12 saturated pixels along a row is a bloom; a star's 2-7 px saturated core is not."""
    data, header = c3_sky
    data = data.copy()
    x0, row = 300, 300
    data[row, x0 : x0 + length] = C3_FULL_WELL
    data[row - 1 : row + 2, x0 + length // 2 - 1 : x0 + length // 2 + 1] = C3_FULL_WELL  # its saturated core
    near = _near(_segments(data, header), x0 + length / 2, row, 20)
    assert bool(near) is found, near
    if found:
        assert [s for s in near if s[1] == s[3] == row and s[2] - s[0] + 1 == length]


def test_vertical_saturated_run_is_a_bloom(c3_sky):
    data, header = c3_sky
    data = data.copy()
    data[600:616, 250] = C3_FULL_WELL
    assert _segments(data, header).tolist() == [[250, 600, 250, 615]]


def test_star_at_the_edge_of_the_saturated_pixels_is_not_a_bloom(c3_sky):
    """A 7 px saturated star at the right-hand end of the saturated pixels' bounding box, with a bloom to its left:
    the runs are opened inside that box, whose outside must count as unsaturated (OpenCV's default border extended
    the star's run past the box: a 6 px 'bloom')."""
    data, header = c3_sky
    data = data.copy()
    data[400, 300:340] = C3_FULL_WELL  # a bloom
    data[420, 700:707] = C3_FULL_WELL  # a star, the rightmost saturated pixels
    assert _segments(data, header).tolist() == [[300, 400, 339, 400]]


def _paint_comet(data, header, head, angle_deg: float, excess: float, length: int = 100) -> None:
    """A 2x2 head at the ADC's full scale and a 3 px wide straight tail leaving it ``angle_deg`` from anti-solar,
    ``excess`` above the sky near the head and fading linearly along its length."""
    gate = FrameQC(f"LASCO_{header['DETECTOR'].strip()}")
    geo = region_masks(header, data.shape, gate.product.valid_region).geometry
    hx, hy = head
    a = math.atan2(hy - geo.cy, hx - geo.cx) + math.radians(angle_deg)
    for t in np.arange(1, length, 0.5):
        for off in (-1, 0, 1):
            x = round(hx + t * math.cos(a) - off * math.sin(a))
            y = round(hy + t * math.sin(a) + off * math.cos(a))
            if 0 <= x < data.shape[1] and 0 <= y < data.shape[0]:
                gain = 1 + excess * (1 - t / length) * (1.0 if off == 0 else 0.5)
                data[y, x] = min(round(float(data[y, x]) * gain), 16000)
    data[hy : hy + 2, hx : hx + 2] = 16386


@pytest.mark.parametrize(
    "angle, excess, found",
    [
        (5, 0.4, True),  # the real C2 comet: 15-35 % above the sky, 5 deg from anti-solar
        (-15, 0.4, True),  # an aberrated or young dust tail
        (60, 0.4, False),  # a bright line leaving a saturated star sideways: not a tail
        (5, 0.0, False),  # a saturated head without a tail: a star
    ],
)
def test_saturated_head_with_an_anti_solar_tail_is_a_comet(c2_sky, angle, excess, found):
    data, header = c2_sky
    data = data.copy()
    head = (700, 250)  # C2: ~4 R☉ from the Sun's centre, up and to the right (as the real comet)
    _paint_comet(data, header, head, angle, excess)
    near = _near(_segments(data, header), head[0] + 1, head[1] + 1, 3)
    assert bool(near) is found, near


def test_tail_without_a_saturated_head_is_not_a_comet(c2_sky):
    """The same tail from an unsaturated head (a star, a streamer ray's knot) gives no segment: it is shorter than
    the Hough transform's lines, and the tail rule starts only from saturated heads."""
    data, header = c2_sky
    data = data.copy()
    _paint_comet(data, header, (700, 250), 5, 0.4, length=90)
    data[250:252, 700:702] = 9000  # below C2's saturation
    assert _segments(data, header).tolist() == []
