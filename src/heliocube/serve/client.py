"""A small client of the read API (``heliocube serve``) with the seed's calls, names and arguments.

The seed's ``imageparam_getter`` functions work unchanged against a local server::

    from heliocube.serve import client as ipg
    from heliocube.serve.client import AIA_WAVE, IMAGE_PARAM, IMAGE_SIZE

    ipg.BASE_URL = "http://127.0.0.1:8000"   # or the HELIOCUBE_API environment variable
    img = ipg.get_aia_image_jpeg(dt, AIA_WAVE.AIA_171, IMAGE_SIZE.P2000)

Each function also takes ``base_url``, ``variant`` and (single-frame calls) ``tolerance`` keywords. ``aia_wave``
may be any product the server has (``"EIT195"``); an HTTP error raises :class:`APIError` with the server's message.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from enum import Enum, StrEnum
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import requests
from PIL import Image

from .xml import (
    convert_header_xml_to_dict,
    convert_param_bulk_xml_to_ndarray,
    convert_param_xml_to_ndarray,
)

__all__ = [
    "AIA_WAVE",
    "BASE_URL",
    "IMAGE_PARAM",
    "IMAGE_SIZE",
    "APIError",
    "convert_header_xml_to_dict",
    "convert_param_bulk_xml_to_ndarray",
    "convert_param_xml_to_ndarray",
    "get_aia_image_jpeg",
    "get_aia_imageheader_json",
    "get_aia_imageheader_xml",
    "get_aia_imageparam_bulk_json",
    "get_aia_imageparam_bulk_ndarray",
    "get_aia_imageparam_bulk_xml",
    "get_aia_imageparam_jpeg",
    "get_aia_imageparam_json",
    "get_aia_imageparam_xml",
    "get_events_spatiotemporal",
    "get_events_temporal",
]

#: Where the server listens (``heliocube serve``'s default), unless HELIOCUBE_API says otherwise.
BASE_URL = os.environ.get("HELIOCUBE_API", "http://127.0.0.1:8000")
TIMEOUT = 60
CHUNK_BYTES = 2**20


class AIA_WAVE(StrEnum):  # the seed's constant names
    AIA_94 = "94"
    AIA_131 = "131"
    AIA_171 = "171"
    AIA_193 = "193"
    AIA_211 = "211"
    AIA_304 = "304"
    AIA_335 = "335"
    AIA_1600 = "1600"
    AIA_1700 = "1700"


class IMAGE_SIZE(StrEnum):
    P4096 = "4k"
    P2000 = "2k"
    P512 = "512"
    P256 = "256"


class IMAGE_PARAM(StrEnum):
    ENTROPY = "1"
    MEAN = "2"
    STD_DEVIATION = "3"
    FRACTAL_DIM = "4"
    SKEWNESS = "5"
    KURTOSIS = "6"
    UNIFORMITY = "7"
    REL_SMOOTHNESS = "8"
    T_CONTRAST = "9"
    T_DIRECTIONALITY = "10"


class APIError(RuntimeError):
    """The server refused a request: ``status`` and its ``detail`` (which names the parameter at fault)."""

    def __init__(self, status: int, detail: str, parameter: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail, self.parameter = status, detail, parameter


def _text(value) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def _size(image_size) -> int:
    text = _text(image_size).lower()
    return int(text[:-1]) * 1024 if text.endswith("k") and text[:-1].isdigit() else int(text)


def _time(value: dt.datetime | str) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(value, dt.datetime) else str(value)


def _get(path: str, params: dict[str, Any], base_url: str | None) -> requests.Response:
    params = {k: _text(v) for k, v in params.items() if v is not None}
    response = requests.get(f"{(base_url or BASE_URL).rstrip('/')}{path}", params=params, timeout=TIMEOUT,
                            stream=True)
    # read in MiB pieces: requests' default 10 kB reads cost more than the server's answer for a 16 MB page
    response._content = b"".join(response.iter_content(CHUNK_BYTES))
    if response.status_code >= 400:
        try:
            body = response.json()
            raise APIError(response.status_code, body.get("detail", response.text), body.get("parameter"))
        except ValueError:
            raise APIError(response.status_code, response.text) from None
    return response


def get_aia_image_jpeg(starttime, aia_wave, image_size, *, base_url=None, variant=None, tolerance=None) -> Image:
    """The image of ``aia_wave`` nearest ``starttime``, ``image_size`` pixels wide, as a PIL image."""
    response = _get("/images", {"channel": aia_wave, "time": _time(starttime), "size": _size(image_size),
                                "variant": variant, "tolerance": tolerance}, base_url)
    return Image.open(io.BytesIO(response.content))


def get_aia_imageparam_jpeg(starttime, aia_wave, image_size, param_id, *, base_url=None, variant=None,
                            tolerance=None) -> Image:
    """The heatmap of parameter ``param_id`` (1-10 or a name) on the frame nearest ``starttime``, as a PIL image."""
    response = _get("/heatmap", {"channel": aia_wave, "time": _time(starttime), "size": _size(image_size),
                                 "param": param_id, "variant": variant, "tolerance": tolerance}, base_url)
    return Image.open(io.BytesIO(response.content))


def get_aia_imageparam_xml(starttime, aia_wave, *, base_url=None, variant=None, tolerance=None) -> ET.Element:
    """The ten parameters of the frame nearest ``starttime`` as the seed's XML (an Element)."""
    response = _get("/params", {"channel": aia_wave, "time": _time(starttime), "format": "xml",
                                "variant": variant, "tolerance": tolerance}, base_url)
    return ET.fromstring(response.content)


def get_aia_imageparam_json(starttime, aia_wave, *, base_url=None, variant=None, tolerance=None) -> dict:
    """The ten parameters of the frame nearest ``starttime``: ``params`` is [row][column][parameter]."""
    return _get("/params", {"channel": aia_wave, "time": _time(starttime), "variant": variant,
                            "tolerance": tolerance}, base_url).json()


def get_aia_imageparam_bulk_xml(starttime, endtime, aia_wave, limit=100, offset=0, step=1, *, base_url=None,
                                variant=None) -> ET.Element:
    """The parameters of the frames in [starttime, endtime], paged, as the seed's range XML."""
    response = _get("/params/range", {"channel": aia_wave, "start": _time(starttime), "end": _time(endtime),
                                      "limit": limit, "offset": offset, "step": step, "format": "xml",
                                      "variant": variant}, base_url)
    return ET.fromstring(response.content)


def get_aia_imageparam_bulk_json(starttime, endtime, aia_wave, limit=100, offset=0, step=1, *, base_url=None,
                                 variant=None) -> dict:
    """The parameters of the frames in [starttime, endtime], paged, as JSON (``frames`` and paging fields)."""
    return _get("/params/range", {"channel": aia_wave, "start": _time(starttime), "end": _time(endtime),
                                  "limit": limit, "offset": offset, "step": step, "variant": variant},
                base_url).json()


def get_aia_imageparam_bulk_ndarray(starttime, endtime, aia_wave, limit=100, offset=0, step=1, *, base_url=None,
                                    variant=None) -> dict[str, Any]:
    """The parameters of the frames in [starttime, endtime], paged, without text formats: ``params`` (N, G, G, P)
    float32 [frame][row][column][parameter], ``time``, ``parameter_names``, ``parameter_units``, ``total`` and
    ``next_offset`` (None on the last page)."""
    response = _get("/params/range", {"channel": aia_wave, "start": _time(starttime), "end": _time(endtime),
                                      "limit": limit, "offset": offset, "step": step, "format": "npz",
                                      "variant": variant}, base_url)
    with np.load(io.BytesIO(response.content)) as npz:
        out: dict[str, Any] = {"params": npz["params"], "time": npz["time"].tolist(),
                               "parameter_names": npz["parameter_names"].tolist(),
                               "parameter_units": npz["parameter_units"].tolist()}
    next_offset = response.headers.get("X-Next-Offset")
    out.update(total=int(response.headers["X-Total"]), next_offset=None if next_offset is None else int(next_offset))
    return out


def get_aia_imageheader_xml(starttime, aia_wave, *, base_url=None, variant=None, tolerance=None) -> ET.Element:
    """Header information (X0, Y0, DSUN, R_SUN, CDELT, QUALITY) of the frame nearest ``starttime``, as XML."""
    response = _get("/header", {"channel": aia_wave, "time": _time(starttime), "format": "xml",
                                "variant": variant, "tolerance": tolerance}, base_url)
    return ET.fromstring(response.content)


def get_aia_imageheader_json(starttime, aia_wave, *, base_url=None, variant=None, tolerance=None) -> dict:
    """Header information of the frame nearest ``starttime`` as a dict."""
    return _get("/header", {"channel": aia_wave, "time": _time(starttime), "variant": variant,
                            "tolerance": tolerance}, base_url).json()


def get_events_temporal(starttime, endtime, event_type=None, *, dataset=None, limit=100, offset=0,
                        base_url=None) -> dict:
    """Events overlapping [starttime, endtime] (the seed's HEK-clone temporal query)."""
    return _get("/events/temporal", {"start": _time(starttime), "end": _time(endtime), "event_type": event_type,
                                     "dataset": dataset, "limit": limit, "offset": offset}, base_url).json()


def get_events_spatiotemporal(starttime, endtime, box, event_type=None, *, dataset=None, limit=100, offset=0,
                              base_url=None) -> dict:
    """Events overlapping [starttime, endtime] inside ``box`` = (x_min, x_max, y_min, y_max), arcsec."""
    x_min, x_max, y_min, y_max = box
    return _get("/events/spatiotemporal", {"start": _time(starttime), "end": _time(endtime), "x_min": x_min,
                                           "x_max": x_max, "y_min": y_min, "y_max": y_max,
                                           "event_type": event_type, "dataset": dataset, "limit": limit,
                                           "offset": offset}, base_url).json()
