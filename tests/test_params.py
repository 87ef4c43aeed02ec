"""The ten image parameters (heliocube.params) against their formulas on cells whose values are worked out by hand,
and the vectorised computation against the cell-by-cell reference on random frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heliocube.config import ConfigError, validate_config
from heliocube.params import PARAMETER_NAMES, PARAMETER_UNITS
from heliocube.params.compute import compute_parameters
from heliocube.params.fractal import box_counts, slope
from heliocube.params.grid import blocked, cells, to_levels
from heliocube.params.reference import reference_parameters
from heliocube.params.settings import ParamSettings, settings_for
from heliocube.params.tamura import directionality

#: Gray level = value: a linear 0..255 range over 256 levels.
BYTE = ParamSettings(grid=1, scale="linear", range=(0.0, 255.0))
R = 12 / math.pi**2


def params_of(frame, settings=BYTE, cell=(0, 0)) -> dict[str, float]:
    values = compute_parameters(np.asarray(frame, dtype=np.float32), settings)
    return dict(zip(PARAMETER_NAMES, (float(v) for v in values[cell]), strict=True))


def expect(got: dict, **expected):
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_names_and_units_are_the_ten_gsu_parameters_in_order():
    assert PARAMETER_NAMES == ("entropy", "mean", "std", "fractal_dimension", "skewness", "kurtosis", "uniformity",
                               "relative_smoothness", "tamura_contrast", "tamura_directionality")
    assert len(PARAMETER_UNITS) == 10 and PARAMETER_UNITS[0] == "bit"


def test_a_constant_cell_has_no_spread_no_edge_and_no_direction():
    expect(params_of(np.full((8, 8), 10.0)), entropy=0, mean=10, std=0, fractal_dimension=0, skewness=0,
           kurtosis=0, uniformity=1, relative_smoothness=0, tamura_contrast=0, tamura_directionality=0)


def test_a_two_level_cell():
    """Left half 0, right half 100: p = (1/2, 1/2). The step makes columns 3 and 4 edges (dH = 3 * 100, dV = 0,
    |dG| = 150), all at phi = pi/2. Box counts 16, 8, 4, 1 for sides 1, 2, 4, 8: slope 6.5 / 5 = 1.3."""
    frame = np.zeros((8, 8))
    frame[:, 4:] = 100
    expect(params_of(frame), entropy=1, mean=50, std=50, fractal_dimension=1.3, skewness=0, kurtosis=1,
           uniformity=0.5, relative_smoothness=1 - 1 / (1 + 2500 / 255**2), tamura_contrast=2500,
           tamura_directionality=1)


def test_a_ramp():
    """z = 10 x: eight levels of 1/8 each (3 bits), variance 100 * 5.25, every pixel an edge (fractal 2), every
    gradient along x (directionality 1)."""
    frame = np.tile(10.0 * np.arange(8), (8, 1))
    m4 = 2 * (0.5**4 + 1.5**4 + 2.5**4 + 3.5**4) / 8
    expect(params_of(frame), entropy=3, mean=35, std=math.sqrt(525), fractal_dimension=2, skewness=0,
           kurtosis=m4 / 5.25**2, uniformity=1 / 8, relative_smoothness=1 - 1 / (1 + 525 / 255**2),
           tamura_contrast=525 / (m4 / 5.25**2) ** 0.25, tamura_directionality=1)


def test_a_checkerboard_has_two_levels_and_no_gradient_inside_the_frame():
    """0/100 alternating pixels: the histogram of a two-level cell; every 3x3 Prewitt sum cancels, so the middle
    cell (away from the frame's replicated border) has no edge and no direction."""
    frame = 100.0 * (np.indices((24, 24)).sum(axis=0) % 2)
    got = params_of(frame, ParamSettings(grid=3, scale="linear", range=(0.0, 255.0)), cell=(1, 1))
    expect(got, entropy=1, mean=50, std=50, skewness=0, kurtosis=1, uniformity=0.5, tamura_contrast=2500,
           fractal_dimension=0, tamura_directionality=0)


def test_skewness_of_a_one_in_four_cell():
    """Three pixels at 0, one at 4: m = 1, sigma**2 = 3, mu3 = (3 * -1 + 27) / 4 = 6."""
    frame = np.zeros((2, 2))
    frame[0, 0] = 4
    got = params_of(frame)
    expect(got, mean=1, std=math.sqrt(3), skewness=6 / 3**1.5, kurtosis=((3 * 1 + 81) / 4) / 9)


def sierpinski_carpet(order: int) -> np.ndarray:
    carpet = np.ones((1, 1), bool)
    for _ in range(order):
        hole = np.zeros_like(carpet)
        carpet = np.block([[carpet, carpet, carpet], [carpet, hole, carpet], [carpet, carpet, carpet]])
    return carpet


@pytest.mark.parametrize(("mask", "sizes", "dimension"), [
    (sierpinski_carpet(4), [1, 3, 9, 27, 81], math.log(8) / math.log(3)),
    (np.ones((64, 64), bool), [1, 2, 4, 8, 16, 32, 64], 2.0),
    (np.eye(64, dtype=bool), [1, 2, 4, 8, 16, 32, 64], 1.0),  # a diagonal line
    (np.pad(np.ones((1, 64), bool), ((10, 53), (0, 0))), [1, 2, 4, 8, 16, 32, 64], 1.0),
    (np.pad(np.ones((1, 1), bool), ((5, 58), (7, 56))), [1, 2, 4, 8, 16, 32, 64], 0.0),  # a point
    (np.zeros((64, 64), bool), [1, 2, 4, 8, 16, 32, 64], 0.0),  # no edge
])
def test_box_counting_of_known_sets(mask, sizes, dimension):
    counts = box_counts(mask[None, :, None, :], sizes)
    assert slope(sizes, counts)[0, 0] == pytest.approx(dimension, abs=1e-12)


def test_box_counting_runs_per_cell_of_a_grid():
    """Four cells of 64 px side by side each give their own dimension: filled, empty; diagonal, horizontal line."""
    frame = np.zeros((128, 128), bool)
    frame[:64, :64] = True
    frame[70, 64:] = True
    frame[64:, :64] = np.eye(64, dtype=bool)
    sizes = [1, 2, 4, 8, 16, 32, 64]
    np.testing.assert_allclose(slope(sizes, box_counts(blocked(frame, 2), sizes)), [[2, 0], [1, 1]], atol=1e-12)


@pytest.mark.parametrize(("counts", "expected"), [
    ([0] * 4 + [10] + [0] * 11, 1.0),  # one direction
    ([0] * 4 + [5, 5] + [0] * 10, 1 - R * (math.pi / 16) ** 2 * 0.5),  # a plateau: one peak, its first bin
    ([10] + [0] * 7 + [10] + [0] * 7, 1.0),  # two sharp directions, each its own window
    ([1] * 16, 1 - R * (math.pi / 16) ** 2 * (2 * sum(k * k for k in range(1, 8)) + 64) / 16),  # isotropic: ~0
    ([0] * 16, 0.0),  # no pixel above the threshold
    ([4, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1], 1 - R * 2 * (2 * (math.pi / 16) ** 2 / 8)),
])
def test_directionality_peaks_and_windows(counts, expected):
    """Peaks are circular local maxima holding at least half the largest bin; every bin belongs to its nearest peak.
    Last case: peaks at bins 0 and 8 (2 >= 4/2); bins 1 and 15 sit one bin from peak 0, with 1/8 each."""
    assert directionality(np.asarray(counts), 0.5) == pytest.approx(expected, abs=1e-12)


def test_gray_levels_clip_scale_and_exclude():
    settings = ParamSettings(grid=1, scale="log10", range=(1.0, 10000.0), levels=5)
    levels, excluded = to_levels(np.array([[0.5, 1.0, 10.0, 100.0], [1000.0, 1e6, np.nan, np.inf]]), settings)
    assert levels.tolist() == [[0, 0, 1, 2], [3, 4, 0, 0]]
    assert excluded.tolist() == [[False] * 4, [False, False, True, True]]
    unclipped = ParamSettings(grid=1, scale="linear", range=(0.0, 4.0), levels=5, clip=False)
    assert to_levels(np.array([[-1.0, 2.0, 5.0]]), unclipped)[1].tolist() == [[True, False, True]]


def test_cells_are_a_view_of_the_frame():
    frame = np.arange(64.0).reshape(8, 8)
    view = cells(frame, 4)
    assert view.shape == (4, 4, 2, 2) and np.shares_memory(view, frame)
    assert view[1, 2].tolist() == frame[2:4, 4:6].tolist()


@pytest.mark.parametrize("case", ["log", "nan", "unclipped", "uint16-levels", "bands", "few-directions"])
def test_vectorised_equals_the_cell_loop_reference(case):
    rng = np.random.default_rng(len(case))
    frame = rng.gamma(2.0, 150.0, (48, 48)).astype(np.float32)
    frame[10:20, 5:30] += 1500  # a bright patch: edges and directions that are not noise
    settings = ParamSettings(grid=6, scale="log10", range=(1.0, 16383.0), edge_threshold=6,
                             direction_threshold=6)
    band = 2**20
    if case == "nan":
        frame[rng.random(frame.shape) < 0.05] = np.nan
        frame[:8, :8] = np.nan  # a cell without a value
    elif case == "unclipped":
        settings = ParamSettings(grid=4, scale="linear", range=(50.0, 1200.0), clip=False, edge_threshold=20)
    elif case == "uint16-levels":
        settings = ParamSettings(grid=4, scale="linear", range=(0.0, 3000.0), levels=1000, edge_threshold=30,
                                 direction_threshold=40, direction_bins=12, peak_fraction=0.3)
    elif case == "bands":
        band = 100  # one cell row at a time
    elif case == "few-directions":  # under a quarter of the pixels above the threshold: looked up one by one
        settings = ParamSettings(grid=6, scale="log10", range=(1.0, 16383.0), direction_threshold=70)
    got = compute_parameters(frame, settings, band_pixels=band)
    want = reference_parameters(frame, settings)
    assert got.shape == (settings.grid, settings.grid, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if case == "nan":
        assert np.isnan(got[0, 0]).all() and not np.isnan(got[1:]).any()


def test_per_product_defaults_and_overrides():
    variant = {"name": "512px-mean-6h", "image_size": 512, "resize_method": "mean"}
    aia = settings_for({"grid": 64}, "AIA171", variant)
    assert (aia.scale, aia.range, aia.levels, aia.grid, aia.variant) == ("log10", (1.0, 16383.0), 256, 64,
                                                                          "512px-mean-6h")
    assert settings_for({}, "HMI_720s", variant).scale == "linear"
    summed = settings_for({}, "AIA171", {**variant, "resize_method": "sum"})
    assert summed.range == (64.0, 64.0 * 16383)  # 8x8 native pixels per pixel
    custom = settings_for({"defaults": {"levels": 128}, "settings": {"AIA171": {"range": [5, 500]}}}, "AIA171",
                          variant)
    assert (custom.levels, custom.range) == (128, (5.0, 500.0))
    assert ParamSettings.from_json(custom.to_json()) == custom


def test_a_grid_matters_only_where_parameters_are_built():
    """The default grid (64) does not divide 32 px frames: no error while params.products is empty."""
    config = validate_config({"products": ["AIA171"], "date_start": "2011-01-01", "date_finish": "2011-01-02",
                              "image_size": 32}, require_email=False)
    assert config["params"] == {"products": [], "variants": None, "grid": 64, "defaults": {}, "settings": {}}


@pytest.mark.parametrize(("params", "key"), [
    ({"products": ["AIA193"]}, "params.products[0]"),
    ({"products": ["AIA171"], "grid": 3}, "params.grid"),
    ({"products": ["AIA171"], "variants": ["nope"]}, "params.variants[0]"),
    ({"products": ["AIA171"], "grid": 8, "settings": {"AIA171": {"scale": "log10", "range": [0, 10]}}},
     "params.settings.AIA171"),
])
def test_config_errors_name_the_key(params, key):
    with pytest.raises(ConfigError) as error:
        validate_config({"products": ["AIA171"], "date_start": "2011-01-01", "date_finish": "2011-01-02",
                         "image_size": 64, "params": params}, require_email=False)
    assert error.value.key == key
