"""JSOC through the unmodified ``drms`` client: record-set strings, times, and candidate listings."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
from urllib.parse import urljoin

import drms
import numpy as np
import pandas as pd

from ..header import jsoc_value
from ..manifest import keywords_json, normalize_manifest
from ..retry import RetryableError, call_with_retries
from ..taiutc import to_utc_isot

__all__ = ["jsoc_client", "jsoc_times_to_utc", "list_jsoc", "parse_quality", "query_jsoc", "span_recordset"]

#: Keywords asked for when the series has them: the slot times and quality, and everything that places a frame on
#: the Sun. JSOC's as-is segment files carry none of it; QC and the clean stage take it from the manifest
#: (:func:`heliocube.header.with_record_keywords`).
WANTED_KEYS = (
    "T_REC", "T_OBS", "DATE__OBS", "QUALITY", "EXPTIME", "WAVELNTH", "WAVEUNIT", "MISSVALS", "BUNIT",
    "INSTRUME", "TELESCOP", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1",
    "CRVAL2", "CROTA2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RSUN_OBS", "R_SUN", "RSUN_REF", "X0", "Y0", "CROP_RAD",
    "DSUN_OBS", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS",
)

#: How far beyond the requested days a query reaches (see `query_jsoc`).
SPAN_MARGIN = dt.timedelta(hours=1)

#: Failures of the JSOC CGI that are worth another attempt.
TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError)

# drms logs every request URL at DEBUG, and checkAddress/exp_request URLs carry the notify address: keep its
# logger at INFO or above whatever the root level is, so the email never reaches a log.
_drms_log = logging.getLogger("drms")
_drms_log.setLevel(max(_drms_log.getEffectiveLevel(), logging.INFO))


def jsoc_client(base_url: str, email: str | None) -> drms.Client:
    """A ``drms.Client`` whose every endpoint sits below ``base_url`` (JSOC itself or the embedded archive).

    The endpoint names are JSOC's own, so the same function serves production and tests.
    """
    server = drms.ServerConfig(
        name="heliocube",
        cgi_baseurl=urljoin(base_url, "cgi-bin/ajax/"),
        cgi_show_series="show_series",
        cgi_jsoc_info="jsoc_info",
        cgi_jsoc_fetch="jsoc_fetch",
        cgi_check_address="checkAddress.sh",
        http_download_baseurl=base_url,
    )
    return drms.Client(server=server, email=email)


def jsoc_times_to_utc(values) -> pd.DatetimeIndex:
    """Convert JSOC time strings (``2010.10.15_19:12:00_TAI``, ``..._UTC``, ``2011-02-15T00:00:12Z``) to UTC.

    TAI strings are converted with the IERS leap-second table, not by dropping the suffix (the prior tool's
    34-35 s error): astropy's conversion, done with the standard library where that is exact
    (:func:`heliocube.taiutc.to_utc_isot`). Unparseable values (JSOC writes ``MISSING``) become NaT.
    """
    values = pd.Series(values, dtype="string").fillna("")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for suffix, scale in (("_TAI", "tai"), ("_UTC", "utc"), ("Z", "utc"), ("", "utc")):
        pending = out.isna() & values.str.endswith(suffix) & values.str.match(r"^\d{4}[.-]\d{2}[.-]\d{2}")
        if not pending.any():
            continue
        iso = values[pending].str.removesuffix(suffix).str.replace(r"^(\d{4})\.(\d{2})\.(\d{2})_", r"\1-\2-\3T",
                                                                  regex=True)
        out[pending] = pd.to_datetime(to_utc_isot(list(iso), scale), utc=True)
    return pd.DatetimeIndex(out)


def parse_quality(values) -> pd.Series:
    """JSOC QUALITY values (hex ``0x00000400``, decimal, or missing) as nullable integers.

    drms 0.9 with pandas 3 turns hex QUALITY into NaN when it converts numbers itself, so queries ask for
    raw strings and this parses them.
    """
    def one(value):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() in ("", "MISSING"):
            return pd.NA
        return int(str(value).strip(), 0)

    return pd.Series([one(v) for v in values], dtype="Int64")


def _jsoc_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y.%m.%d_%H:%M:%S_UTC")


def span_recordset(series: str, start: dt.datetime, duration: dt.timedelta, step: dt.timedelta | None,
                   wavelength: int | None) -> str:
    """A JSOC record set, e.g. ``aia.lev1_euv_12s[2011.02.14_23:00:00_UTC/90000s@120s][171]``."""
    cadence = f"@{int(step.total_seconds())}s" if step else ""
    wave = f"[{wavelength}]" if wavelength is not None else ""
    return f"{series}[{_jsoc_time(start)}/{int(duration.total_seconds())}s{cadence}]{wave}"


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.astype("string").replace({"MISSING": pd.NA}), errors="coerce")


def query_jsoc(product, days: list[dt.date], context) -> pd.DataFrame:
    """Every candidate record of ``product`` on ``days`` (one contiguous span, one ``rs_list`` call).

    Returns
    -------
    pandas.DataFrame
        Manifest rows (see `heliocube.manifest.MANIFEST_COLUMNS`); ``url`` is empty because JSOC resolves
        file locations at export time.
    """
    step = product.query_step if product.query_step and product.query_step > product.cadence else None
    # T_REC selects records but T_OBS dates them: widen the span so a record whose T_REC and T_OBS fall on
    # different sides of midnight is still listed, then keep the requested days by observation time.
    start = dt.datetime.combine(min(days), dt.time()) - SPAN_MARGIN
    duration = dt.timedelta(days=(max(days) - min(days)).days + 1) + 2 * SPAN_MARGIN
    frame = list_jsoc(product, start, duration, context, step)
    day_set = set(days)
    frame = frame[[t.date() in day_set for t in frame["time_utc"]]]
    return normalize_manifest(frame)


def list_jsoc(product, start: dt.datetime, duration: dt.timedelta, context,
              step: dt.timedelta | None = None) -> pd.DataFrame:
    """Manifest rows of every record of ``product`` whose T_REC lies in ``[start, start + duration)`` (UTC), from
    one record set (``step``: JSOC's ``@`` thinning; None lists the native cadence), in JSOC's order."""
    series = product.series_for(context.level_for(product))
    client = call_with_retries(lambda: jsoc_client(context.jsoc_url, context.email), context.policy,
                               "JSOC address check", (*TRANSIENT, RetryableError))
    info = call_with_retries(lambda: client.info(series), context.policy, f"JSOC series_struct {series}",
                             TRANSIENT)
    available = set(info.keywords.index)
    keys = [key for key in WANTED_KEYS if key in available]
    by_wavelength = "WAVELNTH" in info.primekeys
    recordset = span_recordset(series, start, duration, step, product.wavelength if by_wavelength else None)
    table = call_with_retries(lambda: client.query(recordset, key=keys, convert_numeric=False), context.policy,
                              f"JSOC rs_list {recordset}", TRANSIENT)
    if table.empty:
        return normalize_manifest(pd.DataFrame())
    t_obs = jsoc_times_to_utc(table["T_OBS"]) if "T_OBS" in table else None
    t_rec = jsoc_times_to_utc(table["T_REC"])
    times = t_rec if t_obs is None else t_obs.where(~t_obs.isna(), t_rec)
    if "WAVELNTH" in table:
        wavelength = _numeric(table["WAVELNTH"])
    else:
        wavelength = pd.Series(product.wavelength, index=table.index)
    record_ids = [
        f"{series}[{rec}]" + (f"[{int(wav)}]" if by_wavelength else "")
        for rec, wav in zip(table["T_REC"], wavelength, strict=True)
    ]
    types = info.keywords["type"].to_dict() if "type" in info.keywords else {}
    typed = [{key: jsoc_value(row[key], types.get(key, "string")) for key in keys if key != "T_REC"}
             for row in table[keys].to_dict("records")]
    frame = pd.DataFrame({
        "product": product.name,
        "record_id": record_ids,
        "url": "",
        "time_utc": times,
        "t_rec": table["T_REC"].astype("string"),
        "size": pd.NA,
        "level": context.level_for(product),
        "wavelength": wavelength.to_numpy(dtype=float),
        "quality": parse_quality(table["QUALITY"]) if "QUALITY" in table else pd.NA,
        "exptime": _numeric(table["EXPTIME"]) if "EXPTIME" in table else pd.NA,
        "keywords": [keywords_json(row) for row in typed],
    })
    return normalize_manifest(frame[frame["time_utc"].notna()])
