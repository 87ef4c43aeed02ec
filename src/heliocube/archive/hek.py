"""The embedded archive's HEK: a deterministic flare list served in the Heliophysics Event Knowledgebase's dialect.

``/hek/her?cmd=search&type=column&event_type=FL&event_starttime=...&event_endtime=...&page=1`` answers what sunpy's
:class:`sunpy.net.hek.HEKClient` reads: ``{"result": [...], "overmax": bool}``, one page of events at a time (the
client asks for page 1, 2, ... while ``overmax`` is true). The parameters HEKClient sends are honoured:
``event_type`` (comma list, ``**`` for all), the time range (events overlapping it), the spatial box ``x1..x2``,
``y1..y2`` in ``event_coordsys`` (helioprojective arcsec or heliographic degrees), ``paramN/opN/valueN`` filters
(``= != < <= > >= like``, attribute names case-insensitive), ``result_limit`` (page size) and ``return`` (columns).

The flare list is a pure function of (seed, UTC day): 2 to 6 GOES flares per day from the ``SWPC`` method, about half
of them also reported by a second method (``SSW Latest Events``, times a minute later), as HEK lists one flare once
per method. Times are whole minutes; classes run from B to X, mostly C; positions are on the visible disk (longitude
within +-85 deg), given in helioprojective arcsec as seen from Earth at the event's start (sunpy's frames). Every
time has AIA frames in the synthetic mission, whose JSOC series have records at their native cadence on any date.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools

import numpy as np

__all__ = ["DEFAULT_PAGE_SIZE", "HEKQueryError", "flares_of_day", "search"]

#: Events per page when the query gives no ``result_limit``: small, so a few days' answer spans several pages.
DEFAULT_PAGE_SIZE = 5
#: Longest time range one query may span (the list is computed day by day).
_MAX_DAYS = 3700
_EPOCH = dt.date(1970, 1, 1)
_CLASSES = (("A", 1e-8), ("B", 1e-7), ("C", 1e-6), ("M", 1e-5), ("X", 1e-4))


class HEKQueryError(ValueError):
    """A query the embedded HEK cannot answer (the message says which parameter)."""


def _goes_class(flux: float) -> str:
    letter, base = next((letter, base) for letter, base in reversed(_CLASSES) if flux >= base or letter == "A")
    return f"{letter}{flux / base:.1f}"


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


@functools.lru_cache(maxsize=4096)
def flares_of_day(seed: int, day: dt.date) -> tuple[dict, ...]:
    """The HEK flare records that start on ``day`` (UTC), deterministic in (seed, day), in start order."""
    number = (day - _EPOCH).days
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x48454B, number])
    n = int(rng.integers(2, 7))
    midnight = dt.datetime.combine(day, dt.time())
    starts = np.sort(rng.integers(0, 24 * 60 - 90, n))  # minutes after midnight
    rises, decays = rng.integers(2, 21, n), rng.integers(4, 41, n)
    fluxes = 10.0 ** (-6.8 + 2.6 * rng.random(n) ** 2)
    lons, lats = rng.uniform(-85, 85, n), rng.uniform(-30, 30, n)
    regions = 11100 + rng.integers(0, 40, n)
    second = rng.random(n) < 0.5
    x, y = _helioprojective(lons, lats, [midnight + dt.timedelta(minutes=int(m)) for m in starts])
    events = []
    for i in range(n):
        start = midnight + dt.timedelta(minutes=int(starts[i]))
        peak = start + dt.timedelta(minutes=int(rises[i]))
        end = peak + dt.timedelta(minutes=int(decays[i]))
        for method, shift in (("SWPC", 0), ("SSW Latest Events", 1)) if second[i] else (("SWPC", 0),):
            moved = dt.timedelta(minutes=shift)
            stamp = (start + moved).strftime("%Y%m%d_%H%M%S")
            events.append({
                "event_type": "FL", "kb_archivid": f"ivo://helio-informatics.org/FL_{method.replace(' ', '')}_"
                                                  f"{stamp}_{i}",
                "frm_name": method, "frm_institute": "NOAA SWPC" if shift == 0 else "LMSAL",
                "frm_identifier": method, "frm_humanflag": "F", "frm_url": "http://127.0.0.1/",
                "frm_contact": "heliocube embedded archive", "frm_daterun": _iso(start + dt.timedelta(days=1)),
                "frm_paramset": "", "frm_specificid": f"{stamp}_{i}",
                "event_starttime": _iso(start + moved), "event_peaktime": _iso(peak + moved),
                "event_endtime": _iso(end + moved),
                "fl_goescls": _goes_class(float(fluxes[i])), "ar_noaanum": int(regions[i]),
                "hpc_x": round(float(x[i]), 2), "hpc_y": round(float(y[i]), 2),
                "hgs_x": round(float(lons[i]), 2), "hgs_y": round(float(lats[i]), 2),
                "event_coordsys": "UTC-HPC-TOPO", "event_coordunit": "arcseconds",
                "event_coord1": round(float(x[i]), 2), "event_coord2": round(float(y[i]), 2), "event_coord3": None,
                "obs_observatory": "GOES", "obs_instrument": "GOES", "obs_channelid": "1-8 Angstrom",
                "SOL_standard": f"SOL{_iso(start)}L{(-lons[i]) % 360:03.0f}C{90 - lats[i]:03.0f}",
            })
    return tuple(events)


def _helioprojective(lons, lats, times) -> tuple[np.ndarray, np.ndarray]:
    """Helioprojective (Earth view) arcsec of heliographic Stonyhurst positions at ``times``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from sunpy.coordinates import HeliographicStonyhurst, Helioprojective

    obstime = Time(times, scale="utc")
    surface = SkyCoord(np.asarray(lons) * u.deg, np.asarray(lats) * u.deg, frame=HeliographicStonyhurst,
                       obstime=obstime)
    seen = surface.transform_to(Helioprojective(observer="earth", obstime=obstime))
    return seen.Tx.to_value(u.arcsec), seen.Ty.to_value(u.arcsec)


def _parse_time(params: dict, key: str) -> dt.datetime:
    value = params.get(key, "")
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise HEKQueryError(f"{key}={value!r} is not a time (YYYY-MM-DDThh:mm:ss)")


def _compare(value, op: str, wanted: str) -> bool:
    if value is None:
        return False
    if op == "like":
        return fnmatch.fnmatchcase(str(value).lower(), wanted.lower().replace("%", "*").replace("_", "?"))
    if isinstance(value, (int, float)):
        try:
            other = float(wanted)
        except ValueError:
            return False
        value = float(value)
    else:
        value, other = str(value), str(wanted)
        if op in ("=", "!="):
            value, other = value.lower(), other.lower()
    return {"=": value == other, "!=": value != other, "<": value < other, "<=": value <= other,
            ">": value > other, ">=": value >= other}[op]


def _filters(params: dict) -> list[tuple[str, str, str]]:
    out = []
    for key in sorted(k for k in params if k.startswith("param")):
        n = key[len("param"):]
        op = params.get(f"op{n}", params.get(f"operator{n}", "="))
        if op not in ("=", "!=", "<", "<=", ">", ">=", "like"):
            raise HEKQueryError(f"op{n}={op!r} is not one of = != < <= > >= like")
        out.append((params[key].lower(), op, params.get(f"value{n}", "")))
    return out


def _in_box(event: dict, params: dict) -> bool:
    try:
        x1, x2, y1, y2 = (float(params[k]) for k in ("x1", "x2", "y1", "y2"))
    except KeyError:
        return True
    except ValueError as err:
        raise HEKQueryError(f"spatial box x1, x2, y1, y2 must be numbers ({err})") from None
    heliographic = params.get("event_coordsys", "helioprojective").lower().startswith("helio" "graphic")
    x, y = (event["hgs_x"], event["hgs_y"]) if heliographic else (event["hpc_x"], event["hpc_y"])
    return min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2)


def search(seed: int, params: dict) -> dict:
    """The answer to one ``/hek/her`` request (``params``: its query parameters, one value each).

    Raises
    ------
    HEKQueryError
        For a command other than ``search``, a missing or malformed time, filter or box, or a range too long.
    """
    if params.get("cmd", "search") != "search":
        raise HEKQueryError(f"cmd={params.get('cmd')!r}: the embedded HEK answers cmd=search only")
    start, end = _parse_time(params, "event_starttime"), _parse_time(params, "event_endtime")
    if end < start or (end - start).days > _MAX_DAYS:
        raise HEKQueryError(f"event_starttime..event_endtime must be ordered and span at most {_MAX_DAYS} days")
    types = {t.strip().upper() for t in params.get("event_type", "**").split(",") if t.strip()}
    filters = _filters(params)
    try:
        limit = int(params.get("result_limit") or DEFAULT_PAGE_SIZE)
        page = int(params.get("page") or 1)
    except ValueError as err:
        raise HEKQueryError(f"result_limit and page must be integers ({err})") from None
    if limit < 1 or page < 1:
        raise HEKQueryError("result_limit and page must be positive")
    matches = []
    day = start.date() - dt.timedelta(days=1)  # a flare of the day before may last into the range
    while day <= end.date():
        for event in flares_of_day(seed, day):
            if "**" not in types and event["event_type"] not in types:
                continue
            if event["event_starttime"] > _iso(end) or event["event_endtime"] < _iso(start):
                continue
            if not _in_box(event, params):
                continue
            lowered = {key.lower(): value for key, value in event.items()}
            if all(_compare(lowered.get(name), op, value) for name, op, value in filters):
                matches.append(event)
        day += dt.timedelta(days=1)
    matches.sort(key=lambda e: (e["event_starttime"], e["kb_archivid"]))
    chosen = matches[(page - 1) * limit: page * limit]
    columns = [c.strip() for c in params.get("return", "").split(",") if c.strip()]
    if columns:
        chosen = [{key: value for key, value in e.items() if key.lower() in {c.lower() for c in columns}}
                  for e in chosen]
    return {"result": chosen, "overmax": page * limit < len(matches), "association": []}
