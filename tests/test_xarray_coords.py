"""time and helioprojective x/y coordinates of the xarray views of cubes and synced files."""

from __future__ import annotations

import warnings

import astropy.units as u
import h5py
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits
from astropy.wcs import WCS

from heliocube.cube import CubeWriter, open_cube_xarray
from heliocube.helioprojective import WCS_TOLERANCE_PX, helioprojective_axes
from heliocube.sync import open_synced_xarray, sync_experiment

from .real_cubes import build_cubes
from .test_fetch import DAY

SIZE = 32


@pytest.fixture(scope="module")
def cubes(clean_mission, tmp_path_factory):
    return build_cubes(clean_mission, tmp_path_factory.mktemp("cubes"), ["MDI_96m", "AIA171", "EIT195", "HMI_720s"])


def _frames_and_headers(path):
    with h5py.File(path, "r") as f:
        headers = [fits.Header.fromstring(text, sep="\n") for text in f["headers"].asstr()[()]]
        return f["data"][()], headers


def _world(header, data=None):
    """Tx, Ty (arcsec) of every pixel centre, (H, W), as astropy's WCS (or sunpy's map, given data) places it."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's notes on the instrument's non-standard keywords
        if data is None:
            world = WCS(header).pixel_to_world(cols, rows)
        else:
            world = sunpy.map.Map(data, header).pixel_to_world(cols * u.pix, rows * u.pix)
    return world.Tx.to_value(u.arcsec), world.Ty.to_value(u.arcsec)


@pytest.mark.parametrize("name", ["MDI_96m", "AIA171"])
def test_cube_x_y_are_astropy_wcs_pixel_centres(cubes, name):
    _, headers = _frames_and_headers(cubes[name])
    with open_cube_xarray(cubes[name]) as ds:
        assert ds["data"].dims == ("time", "y", "x") and ds["data"].attrs["hpc_coords"].startswith("1-D")
        assert ds["x"].dims == ("x",) and ds["y"].dims == ("y",) and ds["x"].attrs["units"] == "arcsec"
        for header in headers:  # one shared axis serves every frame
            tx, ty = _world(header)
            assert np.abs(tx - ds["x"].values[None, :]).max() < 0.01 * header["CDELT1"]
            assert np.abs(ty - ds["y"].values[:, None]).max() < 0.01 * header["CDELT2"]
        # the reference pixel (1-based CRPIX) is where x, y equal CRVAL
        i, j = int(headers[0]["CRPIX1"]) - 1, int(headers[0]["CRPIX2"]) - 1
        pixel = ds["data"].isel(time=0).sel(x=ds["x"].values[i], y=ds["y"].values[j])
        assert pixel.values == ds["data"].values[0, j, i]


def test_eit_solar_x_axes_match_sunpy(cubes):
    # EIT's CTYPE 'Solar-X'/'Solar-Y' is not a celestial axis for astropy; sunpy's EITMap reads it as Tx/Ty
    data, headers = _frames_and_headers(cubes["EIT195"])
    with open_cube_xarray(cubes["EIT195"]) as ds:
        tx, ty = _world(headers[0], data[0])
        assert np.abs(tx - ds["x"].values[None, :]).max() < 0.01 * headers[0]["CDELT1"]
        assert np.abs(ty - ds["y"].values[:, None]).max() < 0.01 * headers[0]["CDELT2"]


def test_cube_time_is_utc_datetime64_of_the_slots(cubes):
    with open_cube_xarray(cubes["MDI_96m"]) as ds:
        assert ds["time"].dtype == np.dtype("datetime64[ns]") and ds["time"].attrs["time_zone"] == "UTC"
        expected = [f"{DAY}T{h:02d}:00:00" for h in (0, 6, 12, 18)]
        assert [str(t)[:19] for t in ds["time"].values] == expected == list(ds["slot_time"].values)


def test_rotated_frames_get_no_x_y(cubes):
    _, headers = _frames_and_headers(cubes["HMI_720s"])
    assert abs(headers[0]["CROTA2"]) > 170  # HMI looks at the Sun upside down
    with open_cube_xarray(cubes["HMI_720s"]) as ds:
        assert "x" not in ds.coords and "y" not in ds.coords and ds["data"].dims == ("time", "y", "x")
        assert ds["data"].attrs["hpc_coords"].startswith("none: frames are rotated")


def test_a_drifting_disk_centre_gives_per_frame_coords(cubes, tmp_path):
    data, headers = _frames_and_headers(cubes["MDI_96m"])
    with h5py.File(cubes["MDI_96m"], "r") as f:
        rows = [{key: f["frames"][key][i] for key in ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2")}
                for i in range(len(headers))]
    drifting = tmp_path / "drift.h5"
    with CubeWriter(drifting, (SIZE, SIZE)) as writer:
        for k, (frame, header, row) in enumerate(zip(data, headers, rows, strict=True)):
            header["CRPIX1"] += 0.5 * k  # the disk centre moves half a pixel per frame
            writer.append(frame, {**row, "CRPIX1": header["CRPIX1"]}, header)
    with open_cube_xarray(drifting) as ds:
        assert ds["data"].dims == ("time", "y_pix", "x_pix") and ds["data"].attrs["hpc_coords"].startswith("per frame")
        assert ds["x"].dims == ("time", "x_pix") and ds["y"].dims == ("time", "y_pix")
        for k, header in enumerate(headers):
            tx, ty = _world(header)
            assert np.abs(tx - ds["x"].values[k][None, :]).max() < 0.01 * header["CDELT1"]
            assert np.abs(ty - ds["y"].values[k][:, None]).max() < 0.01 * header["CDELT2"]


def test_rotation_and_drift_tolerances():
    columns = {"CRPIX1": np.array([16.5, 16.5]), "CRPIX2": np.array([16.5, 16.5]), "CDELT1": np.array([10.0, 10.0]),
               "CDELT2": np.array([10.0, 10.0]), "CRVAL1": np.zeros(2), "CRVAL2": np.zeros(2)}
    reach = np.hypot(15.5, 15.5)  # pixels from the reference pixel to a corner pixel centre
    just_under = np.rad2deg(2 * np.arcsin(0.99 * WCS_TOLERANCE_PX / (2 * reach)))
    axes = helioprojective_axes({**columns, "CROTA2": np.array([just_under, np.nan])}, (SIZE, SIZE))
    np.testing.assert_allclose(axes.x, 10.0 * (np.arange(SIZE) + 1 - 16.5))
    assert helioprojective_axes({**columns, "CROTA2": np.array([0.0, just_under * 1.02])}, (SIZE, SIZE)).x is None
    shifted = {**columns, "CRVAL1": np.array([0.0, 0.99 * WCS_TOLERANCE_PX * 10.0])}
    assert helioprojective_axes(shifted, (SIZE, SIZE)).x.ndim == 1
    shifted["CRVAL1"][1] *= 1.02 / 0.99
    assert helioprojective_axes(shifted, (SIZE, SIZE)).per_frame
    # rows without a frame (a synced file's keep_missing rows) carry NaN keys and are left out
    holes = {key: np.append(value, np.nan) for key, value in columns.items()}
    axes = helioprojective_axes(holes, (SIZE, SIZE), present=np.array([True, True, False]))
    assert axes.x.ndim == 1
    header = "CTYPE1  = 'HPLN-TAN'\nPC1_1   = 1.0\nPC1_2   = 0.1"
    assert "PCi_j" in helioprojective_axes(columns, (SIZE, SIZE), first_header=header).note
    assert "not a helioprojective axis" in helioprojective_axes(columns, (SIZE, SIZE),
                                                                first_header="CTYPE1  = 'RA---TAN'").note
    in_degrees = helioprojective_axes(columns, (SIZE, SIZE), first_header="CUNIT1  = 'deg'\nCUNIT2  = 'arcsec'")
    np.testing.assert_allclose(in_degrees.x, 3600 * 10.0 * (np.arange(SIZE) + 1 - 16.5))


def test_synced_file_has_per_product_coords(cubes, tmp_path):
    result = sync_experiment(tmp_path / "mh.h5", {"MDI_96m": cubes["MDI_96m"], "HMI_720s": cubes["HMI_720s"]},
                             experiment="mh", start=DAY, finish=DAY, step="6h")
    with open_synced_xarray(result.path) as synced, open_cube_xarray(cubes["MDI_96m"]) as cube:
        assert synced["time"].dtype == np.dtype("datetime64[ns]") and synced["time"].attrs["time_zone"] == "UTC"
        assert [str(t)[:13] for t in synced["time"].values] == [f"{DAY}T{h:02d}" for h in (0, 6, 12, 18)]
        assert synced["MDI_96m_x"].dims == ("x",) and synced["MDI_96m_y"].dims == ("y",)
        np.testing.assert_array_equal(synced["MDI_96m_x"].values, cube["x"].values)
        np.testing.assert_array_equal(synced["MDI_96m_y"].values, cube["y"].values)
        assert "HMI_720s_x" not in synced.coords and synced["HMI_720s"].attrs["hpc_coords"].startswith("none: frames")
