"""The read API: the seed's image-parameter web API and HEK-clone queries over one output root (FastAPI).

``create_app(root)`` builds the application; ``heliocube serve ROOT`` runs it with uvicorn. Every route is a GET;
OpenAPI docs at ``/docs``. A request selects data only by names listed from ROOT (channel, variant, event
dataset), so no request can read a path outside it. Bad requests get a 4xx whose ``detail`` starts with the
parameter at fault (``"limit: ..."``).
"""

from __future__ import annotations

import datetime as dt
import io
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ..h5xarray import attr_value
from . import xml
from .datasets import Catalog, RequestError, Series
from .events import EventTables, query_events
from .images import FORMATS, frame_image, header_number, heatmap_image

__all__ = ["MAX_LIMIT", "create_app"]

#: Most frames (and events) one request returns; the default page size too, as in the seed.
MAX_LIMIT = 100
_SECOND = np.timedelta64(1, "s")

Channel = Annotated[str, Query(description="product name (AIA171) or AIA wavelength (171)", max_length=64)]
Time = Annotated[str, Query(description="ISO 8601 UTC, e.g. 2012-02-13T20:10:00; the nearest frame is served")]
Start = Annotated[str, Query(description="start of the range, ISO 8601 UTC (inclusive)")]
End = Annotated[str, Query(description="end of the range, ISO 8601 UTC (inclusive)")]
Variant = Annotated[str | None, Query(description="dataset variant (default: the one with the largest frames)",
                                      max_length=128)]
Tolerance = Annotated[float | None, Query(ge=0, description="seconds between the requested time and a frame's "
                                          "(default: half the dataset's cadence)")]
Size = Annotated[int | None, Query(ge=16, le=4096, description="image width in pixels (default: the frame's)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (default and maximum {MAX_LIMIT})")]
Offset = Annotated[int, Query(ge=0, description="results skipped before the page")]
Step = Annotated[int, Query(ge=1, description="every step-th frame of the range")]
EventType = Annotated[str | None, Query(description="e.g. FL (flares); default: every type", max_length=64)]
Dataset = Annotated[str | None, Query(description="event dataset (events/{name}); default: all", max_length=128)]


class ImageFormat(StrEnum):
    jpeg = "jpeg"
    png = "png"


class DataFormat(StrEnum):
    json = "json"
    xml = "xml"


class RangeFormat(StrEnum):
    json = "json"
    xml = "xml"
    npz = "npz"


def _npz(arrays: dict[str, Any], paging: dict[str, Any]) -> Response:
    """numpy's ``.npz`` (uncompressed): the page as float32 without formatting numbers; paging in X- headers."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    headers = {f"X-{key.replace('_', '-').title()}": str(value) for key, value in paging.items() if value is not None}
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers=headers)


def parse_time(text: str, parameter: str) -> np.datetime64:
    """ISO 8601 (UTC when no zone is given) as naive UTC datetime64[ns]; RequestError naming ``parameter``."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise RequestError(parameter, f"{text!r} is not an ISO 8601 time such as 2012-02-13T20:10:00",
                           status=422) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return np.datetime64(value, "ns")


def _range(start: str, end: str) -> tuple[np.datetime64, np.datetime64]:
    begin, finish = parse_time(start, "start"), parse_time(end, "end")
    if finish < begin:
        raise RequestError("end", f"{end} is before start {start}", status=422)
    return begin, finish


def _page(positions: np.ndarray, limit: int, offset: int, step: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The seed's paging: every ``step``-th result, then ``limit`` of them from ``offset``."""
    sampled = positions[::step]
    page = sampled[offset:offset + limit]
    more = offset + limit < len(sampled)
    return page, {"total": len(sampled), "offset": offset, "limit": limit, "step": step,
                  "next_offset": offset + limit if more else None}


def _json(payload: Any) -> Response:
    # orjson writes numpy arrays in C (NaN as null): a 100-frame page of 64x64x10 parameters is 40 MB of JSON
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


def _tolerance(series: Series, seconds: float | None) -> np.timedelta64:
    if seconds is None:
        return series.cadence / 2
    return np.timedelta64(round(seconds * 1e9), "ns")


def _param_info(series: Series) -> tuple[list[str], list[str], int]:
    """Parameter names, units and grid size of a parameter series (names and units are attributes of ``params``
    or of the file)."""
    handle = series.handles[0]
    attrs = handle["params"].attrs if "parameter_names" in handle["params"].attrs else handle.attrs
    names = [str(attr_value(n)) for n in attrs.get("parameter_names", [])]
    units = [str(attr_value(n)) for n in attrs.get("parameter_units", [""] * len(names))]
    if not names:  # unnamed: the contract's order
        names = [f"param{k + 1}" for k in range(handle["params"].shape[-1])]
    return names, units, int(handle["params"].shape[1])


def _parameter_index(param: str, names: list[str]) -> int:
    """A parameter given by the seed's id (1-10) or its name."""
    if param.isdigit() and 1 <= int(param) <= len(names):
        return int(param) - 1
    lowered = [n.lower() for n in names]
    if param.lower() in lowered:
        return lowered.index(param.lower())
    raise RequestError("param", f"unknown parameter {param!r}; give 1-{len(names)} or one of {', '.join(names)}",
                       status=422)


def _header_values(series: Series, positions: np.ndarray) -> list[dict[str, Any]]:
    """The seed's header information of each frame (cube files), plus the frame's time and edge in pixels.

    X0, Y0: the disk centre in the frame's own pixels (0-based, from CRPIX/CRVAL/CDELT); DSUN: DSUN_OBS (m);
    R_SUN: solar radius in the frame's pixels; CDELT: arcsec per pixel; QUALITY: the frame's QUALITY word.
    """
    columns = {k: series.column(k, positions) for k in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2",
                                                        "R_SUN", "qc_quality")}
    texts = series.read("headers", positions) if all("headers" in h for h in series.handles) else [b""] * len(
        positions)
    out = []
    for n, position in enumerate(positions):
        handle, _ = series.locate(position)
        header = texts[n].decode() if isinstance(texts[n], bytes) else str(texts[n])

        def value(key, _n=n, _header=header):
            column = columns.get(key)
            number = float(column[_n]) if column is not None else header_number(_header, key)
            return None if number is None or not np.isfinite(number) else number

        x0 = y0 = None
        if None not in (value("CRPIX1"), value("CRVAL1"), value("CDELT1")) and value("CDELT1"):
            x0 = value("CRPIX1") - 1 - value("CRVAL1") / value("CDELT1")
        if None not in (value("CRPIX2"), value("CRVAL2"), value("CDELT2")) and value("CDELT2"):
            y0 = value("CRPIX2") - 1 - value("CRVAL2") / value("CDELT2")
        quality = value("qc_quality") if columns["qc_quality"] is not None else header_number(header, "QUALITY")
        out.append({"X0": x0, "Y0": y0, "DSUN": header_number(header, "DSUN_OBS"), "R_SUN": value("R_SUN"),
                    "CDELT": value("CDELT1"), "QUALITY": None if quality is None else int(quality),
                    "time": series.time_text(position), "image_size": int(handle["data"].shape[-1])})
    return out


def create_app(root: str | os.PathLike) -> FastAPI:
    """The read API over the output root ``root`` (a directory)."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory (give the workflow's output_root)")
    catalog = Catalog(root)
    events = EventTables()
    app = FastAPI(title="heliocube read API", version="1", description=(
        "Images, image-parameter heatmaps, parameters (JSON or the GSU API's XML), header information and "
        f"event queries over the datasets under `{catalog.root}`. Times are ISO 8601 UTC."))
    app.state.catalog = catalog

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return JSONResponse({"detail": str(exc), "parameter": exc.parameter}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        names = [str(e["loc"][-1]) for e in errors]
        text = "; ".join(f"{name}: {e['msg']}" for name, e in zip(names, errors, strict=True))
        return JSONResponse({"detail": text, "parameter": names[0] if names else None}, status_code=422)

    def frame_of(kind: str, channel: str, variant: str | None, time: str, tolerance: float | None):
        product = catalog.resolve_product(kind, channel)
        series = catalog.series(kind, catalog.resolve_variant(kind, product, variant), product)
        return series, series.nearest(parse_time(time, "time"), _tolerance(series, tolerance))

    @app.get("/", summary="What is served: channels, variants, time ranges, event datasets")
    def catalog_listing():
        listing: dict[str, Any] = {"root": str(catalog.root)}
        for kind in ("cubes", "params"):
            entries = []
            for product in catalog.products(kind):
                for variant in catalog.variants(kind, product):
                    series = catalog.series(kind, variant, product)
                    entries.append({"channel": product, "variant": variant, "frames": len(series.times),
                                    "first": series.time_text(0) if len(series.times) else None,
                                    "last": series.time_text(-1) if len(series.times) else None,
                                    "cadence_seconds": float(series.cadence / _SECOND)})
            listing[kind] = entries
        listing["events"] = sorted(catalog.event_tables())
        return listing

    @app.get("/images", summary="An image by channel, time (nearest) and size (the seed's AIA images)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    def image(channel: Channel, time: Time, size: Size = None, variant: Variant = None,
              tolerance: Tolerance = None, format: ImageFormat = ImageFormat.jpeg):
        series, position = frame_of("cubes", channel, variant, time, tolerance)
        handle, row = series.locate(position)
        content = frame_image(handle["data"][row], handle["headers"].asstr()[row], series.product, size=size,
                              fmt=format.value)
        return Response(content, media_type=FORMATS[format.value][1],
                        headers={"X-Frame-Time": series.time_text(position), "X-Variant": series.variant})

    @app.get("/heatmap", summary="A heatmap of one parameter over its image (the seed's parameter images)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    def heatmap(channel: Channel, time: Time, param: Annotated[str, Query(description="1-10 or a name")],
                size: Size = None, variant: Variant = None, tolerance: Tolerance = None,
                format: ImageFormat = ImageFormat.jpeg):
        series, position = frame_of("params", channel, variant, time, tolerance)
        names, units, _ = _param_info(series)
        k = _parameter_index(param, names)
        handle, row = series.locate(position)
        year = series.files[int(series.file_index[position])].name
        cube = catalog.series("cubes", series.variant, series.product) if series.variant in catalog.variants(
            "cubes", series.product) else None
        if cube is None or year not in [f.name for f in cube.files]:
            raise RequestError("channel", f"no {series.product} ({series.variant}) cube {year} to draw the heatmap on")
        image_handle = cube.handles[[f.name for f in cube.files].index(year)]
        title = f"{series.product} {series.time_text(position)}"
        content = heatmap_image(image_handle["data"][row], handle["params"][row, :, :, k], names[k], units[k],
                                title=title, size=size, fmt=format.value)
        return Response(content, media_type=FORMATS[format.value][1],
                        headers={"X-Frame-Time": series.time_text(position), "X-Variant": series.variant})

    def params_payload(series: Series, positions: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
        names, units, grid = _param_info(series)
        meta = {"channel": series.product, "variant": series.variant, "grid": grid, "parameter_names": names,
                "parameter_units": units}
        return meta, series.read("params", positions)

    @app.get("/params", summary="The ten parameters of one frame (nearest time), JSON or the seed's XML")
    def params_one(channel: Channel, time: Time, variant: Variant = None, tolerance: Tolerance = None,
                   format: DataFormat = DataFormat.json):
        series, position = frame_of("params", channel, variant, time, tolerance)
        meta, values = params_payload(series, np.array([position]))
        meta["time"] = series.time_text(position)
        if format is DataFormat.xml:
            return _xml(xml.params_xml(values[0], meta["parameter_names"], {
                k: meta[k] for k in ("channel", "variant", "time", "grid")}))
        return _json({**meta, "params": values[0]})

    @app.get("/params/range", summary="The parameters of the frames in a time range, paged (limit, offset, step)",
             description="JSON (``frames``: time and [row][column][parameter] values), the seed's XML, or numpy's "
             "npz (arrays ``params`` (N, G, G, P) float32, ``time``, ``parameter_names``, ``parameter_units``; "
             "the paging fields as X-Total, X-Offset, X-Limit, X-Step, X-Next-Offset headers).")
    def params_range(channel: Channel, start: Start, end: End, limit: Limit = MAX_LIMIT, offset: Offset = 0,
                     step: Step = 1, variant: Variant = None, format: RangeFormat = RangeFormat.json):
        begin, finish = _range(start, end)
        product = catalog.resolve_product("params", channel)
        series = catalog.series("params", catalog.resolve_variant("params", product, variant), product)
        page, paging = _page(series.between(begin, finish), limit, offset, step)
        meta, values = params_payload(series, page)
        times = [series.time_text(p) for p in page]
        if format is RangeFormat.xml:
            attrs = {k: meta[k] for k in ("channel", "variant", "grid")} | {
                k: v for k, v in paging.items() if v is not None}
            return _xml(xml.params_range_xml(values, times, meta["parameter_names"], attrs))
        if format is RangeFormat.npz:
            return _npz({"params": values, "time": np.array(times, dtype=str),
                         "parameter_names": np.array(meta["parameter_names"], dtype=str),
                         "parameter_units": np.array(meta["parameter_units"], dtype=str)}, paging)
        return _json({**meta, **paging, "frames": [{"time": t, "params": v} for t, v in zip(times, values,
                                                                                         strict=True)]})

    @app.get("/header", summary="The seed's header information (X0, Y0, DSUN, R_SUN, CDELT, QUALITY) of a frame")
    def header(channel: Channel, time: Time, variant: Variant = None, tolerance: Tolerance = None,
               format: DataFormat = DataFormat.json):
        series, position = frame_of("cubes", channel, variant, time, tolerance)
        (values,) = _header_values(series, np.array([position]))
        values = {"channel": series.product, "variant": series.variant, **values}
        if format is DataFormat.xml:
            return _xml(xml.header_xml(values, {k: v for k, v in values.items() if k not in xml.HEADER_KEYS}))
        return values

    @app.get("/header/range", summary="Header information of the frames in a time range, paged")
    def header_range(channel: Channel, start: Start, end: End, limit: Limit = MAX_LIMIT, offset: Offset = 0,
                     step: Step = 1, variant: Variant = None):
        begin, finish = _range(start, end)
        product = catalog.resolve_product("cubes", channel)
        series = catalog.series("cubes", catalog.resolve_variant("cubes", product, variant), product)
        page, paging = _page(series.between(begin, finish), limit, offset, step)
        return {"channel": series.product, "variant": series.variant, **paging,
                "frames": _header_values(series, page)}

    def event_query(start, end, event_type, dataset, limit, offset, box=None):
        begin, finish = _range(start, end)
        tables = catalog.event_tables()
        if dataset is not None:
            if dataset not in tables:
                raise RequestError("dataset", f"unknown event dataset {dataset!r}; available: "
                                   f"{', '.join(tables) or 'none (the event stage has not run)'}")
            tables = {dataset: tables[dataset]}
        found = query_events({n: events.table(p) for n, p in tables.items()}, pd.Timestamp(begin, tz="UTC"),
                             pd.Timestamp(finish, tz="UTC"), event_type=event_type, box=box)
        rows = found.to_dict("records")
        page = rows[offset:offset + limit]
        return {"total": len(rows), "offset": offset, "limit": limit,
                "next_offset": offset + limit if offset + limit < len(rows) else None, "events": page}

    @app.get("/events/temporal", summary="Events overlapping a time range (the seed's HEK-clone temporal query)")
    def events_temporal(start: Start, end: End, event_type: EventType = None, dataset: Dataset = None,
                        limit: Limit = MAX_LIMIT, offset: Offset = 0):
        return event_query(start, end, event_type, dataset, limit, offset)

    @app.get("/events/spatiotemporal", summary="Events overlapping a time range inside a helioprojective box")
    def events_spatiotemporal(start: Start, end: End, x_min: Annotated[float, Query(description="arcsec")],
                              x_max: Annotated[float, Query(description="arcsec")],
                              y_min: Annotated[float, Query(description="arcsec")],
                              y_max: Annotated[float, Query(description="arcsec")], event_type: EventType = None,
                              dataset: Dataset = None, limit: Limit = MAX_LIMIT, offset: Offset = 0):
        if x_max < x_min:
            raise RequestError("x_max", f"{x_max} is less than x_min {x_min}", status=422)
        if y_max < y_min:
            raise RequestError("y_max", f"{y_max} is less than y_min {y_min}", status=422)
        return event_query(start, end, event_type, dataset, limit, offset, box=(x_min, x_max, y_min, y_max))

    return app
