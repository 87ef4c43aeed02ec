"""Simulation parameters and the real headers and images (from sunpy's test data) the synthetic mission builds on."""

from __future__ import annotations

import functools
import os
import warnings
from importlib.resources import files

import numpy as np
import yaml
from astropy.io import fits

from ..registry import Product

__all__ = ["level_value", "load_template_header", "load_template_image", "sim_params", "sunpy_test_path"]

#: Structural keywords dropped from templates; astropy writes the right ones for the served data.
_STRUCTURAL = (
    "SIMPLE",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "EXTEND",
    "XTENSION",
    "PCOUNT",
    "GCOUNT",
    "BSCALE",
    "BZERO",
    "BLANK",
    "CHECKSUM",
    "DATASUM",
    "ZIMAGE",
    "ZBITPIX",
    "ZNAXIS",
    "ZNAXIS1",
    "ZNAXIS2",
    "ZCMPTYPE",
)


@functools.cache
def _table() -> dict:
    return yaml.safe_load(files("heliocube").joinpath("data/archive/simulation.yaml").read_text())


def sim_params(product: Product) -> dict:
    """Simulation parameters of a registry product: defaults, then its instrument's entry, then its own."""
    table = _table()
    params = dict(table["defaults"])
    params["defects"] = dict(params["defects"])
    for entry in (table["instruments"].get(product.instrument, {}), table["products"].get(product.name, {})):
        for key, value in entry.items():
            if key == "defects":
                params["defects"].update(value)
            else:
                params[key] = value
    return params


def level_value(value, level: str):
    """A parameter that may be given per level (a mapping) or once for all levels."""
    return value[str(level)] if isinstance(value, dict) else value


def sunpy_test_path(name: str) -> str:
    """Absolute path of a file in sunpy's shipped test data."""
    import sunpy.data.test

    return os.path.join(os.path.dirname(sunpy.data.test.__file__), name)


@functools.cache
def _raw_header(name: str) -> fits.Header:
    path = sunpy_test_path(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. BLANK on float data in the AIA/HMI test files
        header = fits.Header.fromtextfile(path) if name.endswith(".header") else fits.getheader(path)
    clean = fits.Header()
    for card in header.cards:
        key, value, comment = card.keyword, card.value, card.comment
        if key in ("", None):
            continue
        if key in ("HISTORY", "COMMENT"):
            # real LASCO headers hold TABs in HISTORY: unprintable in FITS, so astropy refuses to write them
            clean.add_history(str(value).replace("\t", " ")) if key == "HISTORY" else clean.add_comment(
                str(value).replace("\t", " ")
            )
            continue
        if key in _STRUCTURAL:
            continue
        if isinstance(value, str):
            value = value.replace("\t", " ")
        if isinstance(comment, str):
            comment = comment.replace("\t", " ")
        try:
            clean.append((key, value, comment))
        except (ValueError, fits.VerifyError):
            continue
    naxis = (int(header["NAXIS1"]), int(header["NAXIS2"]))
    clean["NAXIS1"], clean["NAXIS2"] = naxis  # kept for rescale_header; removed again before writing
    return clean


def load_template_header(name: str) -> fits.Header:
    """A cleaned copy of a real header (structural keywords dropped, TABs replaced); NAXIS1/2 kept."""
    return _raw_header(name).copy()


@functools.cache
def load_template_image(name: str) -> np.ndarray:
    """The real image of a sunpy test file as float32, NaNs replaced by 0 (read-only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(sunpy_test_path(name)) as hdul:
            data = np.nan_to_num(np.asarray(hdul[0].data, dtype=np.float32))
    data.setflags(write=False)
    return data
