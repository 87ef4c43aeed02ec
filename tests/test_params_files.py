"""Parameter files read back with h5py, heatmaps decoded as images, and the demo's parameters and heatmaps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
from astropy.io import fits

from heliocube.cube import CubeWriter
from heliocube.params import PARAMETER_NAMES, PARAMETER_UNITS
from heliocube.params.compute import compute_parameters
from heliocube.params.heatmap import render_heatmap, write_heatmaps
from heliocube.params.settings import ParamSettings
from heliocube.params.store import read_parameters, write_cube_parameters

SETTINGS = ParamSettings(grid=4, product="AIA171", variant="16px-test-6h")


def small_cube(path: Path, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = [rng.gamma(2.0, 100.0, (16, 16)).astype(np.float32) for _ in range(n)]
    frames[1][:4, :4] = np.nan  # a cell without a value
    with CubeWriter(path, (16, 16), attrs={"variant": "16px-test-6h", "config_hash": "cfg", "units": "DN",
                                            "product": "AIA171"}) as cube:
        for i, frame in enumerate(frames):
            row = {"slot_time": f"2011-01-01T{6 * i:02d}:00:00", "obs_time": f"2011-01-01T{6 * i:02d}:00:05",
                   "record_id": f"r{i}", "EXPTIME": 2.0 + i, "qc_ok": True}
            cube.append(frame, row, fits.Header())
    return frames


def test_the_parameter_file_holds_every_frame_the_frame_table_and_the_settings(tmp_path):
    cube = tmp_path / "cubes" / "2011.h5"
    frames = small_cube(cube)
    out = write_cube_parameters(cube, tmp_path / "params" / "2011.h5", SETTINGS, config_hash="abc")
    with h5py.File(out, "r") as f, h5py.File(cube, "r") as c:
        params = f["params"]
        assert params.shape == (3, 4, 4, 10) and params.dtype == np.float32 and params.chunks == (1, 4, 4, 10)
        for attrs in (f.attrs, params.attrs):
            assert list(attrs["parameter_names"]) == list(PARAMETER_NAMES)
            assert list(attrs["parameter_units"]) == list(PARAMETER_UNITS)
            assert attrs["grid"] == 4 and attrs["product"] == "AIA171" and attrs["variant"] == "16px-test-6h"
            assert attrs["config_hash"] == "abc" and json.loads(attrs["settings"])["range"] == [1.0, 16383.0]
        for i, frame in enumerate(frames):
            np.testing.assert_array_equal(params[i], compute_parameters(frame, SETTINGS))
        assert np.isnan(params[1, 0, 0]).all() and not np.isnan(params[0]).any()
        assert [t.decode() for t in f["time"][()]] == ["2011-01-01T00:00:00", "2011-01-01T06:00:00",
                                                       "2011-01-01T12:00:00"]
        assert sorted(f["frames"]) == sorted(c["frames"])
        for name in c["frames"]:
            assert f["frames"][name].dtype == c["frames"][name].dtype
            np.testing.assert_array_equal(f["frames"][name][()], c["frames"][name][()])
    stored = read_parameters(out)
    assert stored.settings == SETTINGS and stored.parameter("mean").shape == (3, 4, 4)


def test_a_heatmap_is_an_image_with_a_colour_bar(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.random((8, 8))
    values[0, 0] = np.nan
    png = render_heatmap(rng.random((64, 64)), values, "fractal_dimension", "1", title="AIA171 2011-01-01")
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and image.shape[0] > 300 and image.shape[1] > 400
    assert render_heatmap(np.zeros((64, 64)), np.zeros((8, 8)), "mean", "level", fmt="jpg")[:2] == b"\xff\xd8"


def test_the_heatmaps_of_a_cube_frame(tmp_path):
    cube = tmp_path / "2011.h5"
    small_cube(cube)
    params = write_cube_parameters(cube, tmp_path / "p.h5", SETTINGS)
    written = write_heatmaps(cube, params, tmp_path / "heatmaps")
    assert [p.name for p in written] == [f"20110101T120000_{name}.png" for name in PARAMETER_NAMES]


def test_the_demo_writes_the_aia_parameters_and_their_heatmaps(demo_run):
    """The demo config computes AIA 171's parameters on an 8x8 grid for every variant's year cube; the report has
    their heatmaps."""
    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    files = sorted(root.glob("params/*/AIA171/2010.h5"))
    assert len(files) == 2
    for path in files:
        with h5py.File(path, "r") as f, h5py.File(root / "cubes" / path.parent.parent.name / "AIA171" / "2010.h5",
                                                  "r") as cube:
            assert f["params"].shape == (cube["data"].shape[0], 8, 8, 10)
            assert np.isfinite(f["params"][()]).all()
        heatmaps = sorted((path.parent / "2010_heatmaps").glob("*.png"))
        assert len(heatmaps) == 10 and all(p.stat().st_size > 5000 for p in heatmaps)
    page = (root / "report" / "index.html").read_text()
    assert 'id="params"' in page and page.count('alt="Image parameter heatmaps of AIA171') == 2
    assert "<td>tamura_directionality</td>" in page
