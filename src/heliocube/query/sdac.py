"""SDAC/NRL HTTP trees for SoHO: EIT level zero and LASCO, read from plain directory listings.

sunpy's ``Scraper`` walks such trees too, but it neither reports file sizes nor follows our retry policy,
and EIT needs each file's header (the wavelength is not in the file name), so this small client reads the
listings and the header blocks itself. Base URLs come from configuration, so the same code reads SDAC in
production and the embedded archive in tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import pandas as pd
from astropy.io import fits
from bs4 import BeautifulSoup

from .. import httpclient
from ..manifest import keywords_json, normalize_manifest
from ..paths import safe_component
from ..retry import RetryableError, call_with_retries
from .header_cache import HeaderCache, header_cache_path, kept_keywords

log = logging.getLogger(__name__)

__all__ = ["parse_img_hdr", "parse_listing", "query_eit", "query_lasco", "read_remote_header", "template_regex"]

_FIELD = re.compile(r"\{(\w+):0?(\d+)d\}")
#: Header bytes read per request when looking for END (FITS headers are 2880-byte blocks).
HEADER_CHUNK = 2880 * 2
#: Header keywords kept in an EIT manifest's keywords column.
EIT_KEYWORDS = ("OBJECT", "FILTER", "SCI_OBJ", "N_MISSING_BLOCKS", "NAXIS1", "NAXIS2", "CDELT1", "SOLAR_R")
#: Header keywords an EIT query uses (time, wavelength, exposure and the manifest's): what the header cache keeps.
HEADER_KEYWORDS = ("DATE_OBS", "DATE-OBS", "WAVELNTH", "EXPTIME", *EIT_KEYWORDS)


def template_regex(template: str) -> re.Pattern:
    """A regex with named groups for a registry file template such as ``efz{year:04d}{month:02d}...``."""
    pattern, last = "", 0
    for match in _FIELD.finditer(template):
        pattern += re.escape(template[last:match.start()]) + rf"(?P<{match.group(1)}>\d{{{match.group(2)}}})"
        last = match.end()
    return re.compile("^" + pattern + re.escape(template[last:]) + "$")


def parse_listing(html: str) -> dict[str, int | None]:
    """File names and byte sizes of an HTML directory listing (nginx/Apache autoindex).

    Sub-directories, parent links and names that are not plain file names are left out (the latter with a
    warning: a path such as ``../x`` or a link to another host); a size the listing does not give exactly
    (``-``, ``2.0M``) is None.
    """
    entries: dict[str, int | None] = {}
    for anchor in BeautifulSoup(html, "html.parser").find_all("a"):
        name = anchor.get("href", "")
        if not name or name.endswith("/") or "?" in name:
            continue
        try:
            safe_component(name)
        except ValueError:  # never let a listed name steer a path or a host (see paths.safe_component)
            log.warning("listing entry %r refused: not a plain file name", name)
            continue
        tail = str(anchor.next_sibling or "").split()
        entries[name] = int(tail[-1]) if tail and tail[-1].isdigit() else None
    return entries


def _listing(session, url: str, context) -> dict[str, int | None]:
    try:
        response = httpclient.get(session, url, context.policy, context.timeout)
    except httpclient.NotFound:
        return {}  # no directory: the archive has no data there
    return parse_listing(response.text)


def read_remote_header(session, url: str, context) -> tuple[fits.Header, int | None]:
    """The primary FITS header of a remote file, read with HTTP Range requests, and the file's full size.

    An answer that does not start like a FITS header (``SIMPLE  =``: a garbled body) is retried like a failed
    request, rather than parsed into a header of garbage (one astropy warning per garbled card) that names no
    wavelength, which would drop the file from the month without a word.
    """
    return call_with_retries(lambda: _read_header_once(session, url, context), context.policy, f"header of {url}")


def _read_header_once(session, url: str, context) -> tuple[fits.Header, int | None]:
    data, total = b"", None
    while b"END" + b" " * 77 not in _cards(data):
        start = len(data)
        # one request: the caller retries the whole read (nested retries would multiply the budgets)
        response = httpclient.get_once(session, url, context.timeout,
                                       headers={"Range": f"bytes={start}-{start + HEADER_CHUNK - 1}"})
        content_range = response.headers.get("Content-Range", "")
        total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else len(response.content)
        data += response.content if response.status_code == 206 else response.content[start:]
        if not data.startswith(b"SIMPLE  ="):
            raise RetryableError(f"{url}: the answer is not a FITS header", reason="unreadable")
        if len(data) >= total or not response.content:
            break
    return fits.Header.fromstring(data[: _header_end(data)].decode("ascii", "replace")), total


def _cards(data: bytes) -> list[bytes]:
    return [data[i:i + 80] for i in range(0, len(data) - len(data) % 80, 80)]


def _header_end(data: bytes) -> int:
    for index, card in enumerate(_cards(data)):
        if card.startswith(b"END" + b" " * 77):
            return (index + 1) * 80
    return len(data) - len(data) % 80


def _header_time(header: fits.Header) -> pd.Timestamp | None:
    for key in ("DATE_OBS", "DATE-OBS"):
        value = str(header.get(key, ""))
        if "T" in value:
            return pd.Timestamp(value.rstrip("Z"), tz="UTC")
    return None


def query_eit(product, days: list[dt.date], context) -> pd.DataFrame:
    """Every EIT level-zero file of ``product``'s wavelength observed on ``days``.

    The month directory lists every wavelength under time-only names, so each file of the wanted days has its
    header read (a few kB by HTTP Range) to learn WAVELNTH and the observation time. With ``context.cache_root``
    set, each header read is kept in the month directory's header cache (:mod:`.header_cache`, shared by the
    wavelengths) as soon as it arrives, so a query killed part way and run again reads only the headers it had not
    read, and the other wavelengths' queries of the month read none.
    """
    template = product.series_for(context.level_for(product))
    directory_template, file_template = template.rsplit("/", 1)
    file_regex = template_regex(file_template)
    day_set = set(days)
    session = httpclient.new_session(context.connections)
    candidates = []
    for year, month in sorted({(day.year, day.month) for day in days}):
        directory = directory_template.format(year=year, month=month) + "/"
        cache = None
        if context.cache_root is not None:
            cache = HeaderCache(header_cache_path(context.cache_root, directory), HEADER_KEYWORDS)
        for name, size in _listing(session, urljoin(context.sdac_url, directory), context).items():
            match = file_regex.match(name)
            if match:
                fields = {key: int(value) for key, value in match.groupdict().items()}
                if dt.date(fields["year"], fields["month"], fields["day"]) in day_set:
                    candidates.append((directory + name, size, fields, cache))
    cached = sum(cache is not None and cache.get(path, size) is not None for path, size, _, cache in candidates)
    if cached:
        log.info("%s: %d of %d EIT headers from the header cache", product.name, cached, len(candidates))

    def describe(candidate):
        record_id, size, fields, cache = candidate
        url = urljoin(context.sdac_url, record_id)
        known = cache.get(record_id, size) if cache is not None else None
        if known is not None:
            header, total = known
        else:
            try:
                header, total = read_remote_header(session, url, context)
            except (RetryableError, OSError, ValueError) as err:
                # Without its header a file cannot be attributed to a wavelength: count it, do not fail the month.
                log.warning("EIT header of %s unreadable after retries (%s); not listed", url, err)
                return None
            # Cached or not, the row is built from the same kept keywords, so a rerun lists exactly the same rows.
            # A header without WAVELNTH (a garbled answer) is not kept: the next run reads it again.
            if cache is None or "WAVELNTH" not in header:
                header = kept_keywords(header, HEADER_KEYWORDS)
            else:
                header = cache.put(record_id, size, header, total)
        time = _header_time(header) or pd.Timestamp(dt.datetime(**fields), tz="UTC")
        return {
            "product": product.name, "record_id": record_id, "url": record_id, "time_utc": time,
            "size": size if size is not None else total, "level": context.level_for(product),
            "wavelength": header.get("WAVELNTH"), "exptime": header.get("EXPTIME"),
            "keywords": keywords_json({key: header.get(key) for key in EIT_KEYWORDS if key in header}),
        }

    with ThreadPoolExecutor(max_workers=context.connections) as pool:
        rows = list(pool.map(describe, candidates))
    frame = pd.DataFrame([row for row in rows if row is not None])
    if frame.empty:
        return normalize_manifest(frame)
    frame = frame[frame["wavelength"].astype(float) == float(product.wavelength)]
    frame = frame[[t.date() in day_set for t in frame["time_utc"]]]
    return normalize_manifest(frame)


#: Column names of a LASCO ``img_hdr.txt`` after file name, date and time.
IMG_HDR_COLUMNS = ("detector", "exptime", "naxis1", "naxis2", "filter", "polar")


def parse_img_hdr(text: str) -> pd.DataFrame:
    """Rows of a LASCO ``img_hdr.txt``: file name, UTC time, and the descriptive columns that follow."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or not re.match(r"^\d{4}/\d{2}/\d{2}$", parts[1]):
            continue
        row = {"name": parts[0], "time_utc": pd.Timestamp(f"{parts[1].replace('/', '-')}T{parts[2]}", tz="UTC")}
        row.update(dict(zip(IMG_HDR_COLUMNS, parts[3:], strict=False)))
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "time_utc", *IMG_HDR_COLUMNS])


def query_lasco(product, days: list[dt.date], context) -> pd.DataFrame:
    """Every LASCO image of ``product`` (its detector and configured level) observed on ``days``.

    One directory per observation day holds the files (8-digit ids) and ``img_hdr.txt`` with their times.
    A day's directory also holds a few images taken just after midnight of the next day, so the previous day's
    directory is read too and rows are kept by observation time.
    """
    level = context.level_for(product)
    template = product.series_for(level)
    session = httpclient.new_session(context.connections)
    day_set = set(days)
    directories = sorted(day_set | {day - dt.timedelta(days=1) for day in days})
    frames = []
    for day in directories:
        directory = template.format(yymmdd=f"{day:%y%m%d}") + "/"
        listing = _listing(session, urljoin(context.sdac_url, directory), context)
        if "img_hdr.txt" not in listing:
            continue
        response = httpclient.get(session, urljoin(context.sdac_url, directory + "img_hdr.txt"), context.policy,
                                  context.timeout)
        table = parse_img_hdr(response.text)
        table = table[table["name"].isin(listing.keys())]  # only files that are really there
        if table.empty:
            continue
        frames.append(pd.DataFrame({
            "product": product.name,
            "record_id": directory + table["name"],
            "url": directory + table["name"],  # archive-relative: the host is the config's, at fetch time
            "time_utc": table["time_utc"],
            "size": [listing[name] for name in table["name"]],
            "level": level,
            "wavelength": pd.NA,
            "exptime": pd.to_numeric(table["exptime"], errors="coerce"),
            "keywords": [keywords_json(row) for row in table[list(IMG_HDR_COLUMNS)].to_dict("records")],
        }))
    if not frames:
        return normalize_manifest(pd.DataFrame())
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[[t.date() in day_set for t in frame["time_utc"]]]
    return normalize_manifest(frame.drop_duplicates("record_id"))
