"""The JSOC side of seeding: the keywords to fetch, and the batched, retried ``rs_list`` queries of a cube's records.

Record ids (``series[T_REC][other prime keys...]``) are parsed, grouped into batches whose URL-encoded record set
stays short enough for JSOC's web server, queried with retries, and every answer is matched back to the record it
answers by its prime-key values (T_REC as a UTC instant), never by position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from urllib.parse import quote

import drms
import pandas as pd

from ..query.jsoc import TRANSIENT, jsoc_times_to_utc
from ..retry import budget_spent, call_with_retries

#: The keywords a heliophysicist needs to place a frame on the Sun (JSOC spelling); only those the series has are
#: fetched. Pixel quantities among them (CRPIX, R_SUN, X0/Y0, CROP_RAD) are mapped onto the cube grid.
DEFAULT_KEYWORDS = (
    "T_REC", "T_OBS", "DATE__OBS",
    "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2", "CROTA2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
    "CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", "WCSNAME",
    "RSUN_OBS", "R_SUN", "RSUN_REF", "X0", "Y0", "CROP_RAD",
    "DSUN_OBS", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS", "CAR_ROT", "OBS_VR", "OBS_VW", "OBS_VN",
    "EXPTIME", "QUALITY", "WAVELNTH", "INSTRUME", "TELESCOP", "BUNIT",
)
#: Pass as ``keywords`` to fetch every keyword of the series.
ALL_KEYWORDS = "**ALL**"
#: Records per ``rs_list`` call.
DEFAULT_BATCH_SIZE = 100
#: Upper bound on the URL-encoded length of one batch's record set (JSOC's web server refuses request lines much
#: beyond 8 kB; the keyword list and the rest of the URL need room too).
MAX_RECORDSET_CHARS = 4000
_RECORD_ID = re.compile(r"^\s*([\w.]+)((?:\[[^\]]*\])+)\s*$")


class SeedingError(RuntimeError):
    """Seeding cannot complete: the archive did not answer, or records of the cube are missing from it."""


# ----------------------------------------------------------------------------------------------- record ids and keys
def _parse_record_id(record_id: str) -> tuple[str, list[str]]:
    """(series, prime-key values) of ``series[T_REC][other prime keys...]``."""
    match = _RECORD_ID.match(record_id)
    if not match:
        raise ValueError(f"{record_id!r} is not a JSOC record id (series[T_REC]...)")
    return match.group(1), [v.strip() for v in re.findall(r"\[([^\]]*)\]", match.group(2))]


def _time_keys(values: Sequence[str]) -> list[str]:
    """Comparable keys of JSOC times: the UTC instant when parseable (so spellings of one time agree), else the text."""
    texts = [str(v).strip() for v in values]
    try:
        parsed = list(jsoc_times_to_utc(texts))
    except ValueError:  # one malformed time spoils a vectorised parse: parse one by one
        parsed = []
        for text in texts:
            try:
                parsed.append(jsoc_times_to_utc([text])[0])
            except ValueError:
                parsed.append(pd.NaT)
    return [text if pd.isna(moment) else moment.isoformat() for text, moment in zip(texts, parsed, strict=True)]


def _prime_value_key(value: str) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _record_keys(primes: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Match keys of prime-key value lists: T_REC as a time key, the others normalised (``171`` == ``171.0``)."""
    times = _time_keys([values[0] for values in primes])
    return [(t, *(_prime_value_key(v) for v in values[1:])) for t, values in zip(times, primes, strict=True)]


def _batches(record_ids: Sequence[str], batch_size: int, max_chars: int) -> Iterator[list[str]]:
    """Consecutive groups of at most ``batch_size`` records whose comma-joined, URL-encoded set fits ``max_chars``."""
    batch: list[str] = []
    length = 0
    for record_id in record_ids:
        cost = len(quote(record_id, safe="")) + len(quote(",", safe=""))
        if cost > max_chars:
            raise ValueError(f"record id {record_id!r} alone exceeds the record-set limit of {max_chars} characters")
        if batch and (len(batch) >= batch_size or length + cost > max_chars):
            yield batch
            batch, length = [], 0
        batch.append(record_id)
        length += cost
    if batch:
        yield batch


# --------------------------------------------------------------------------------------------------------- archive
def _jsoc_type(info_keywords: pd.DataFrame, key: str) -> str:
    if key in info_keywords.index and "type" in info_keywords.columns:
        return str(info_keywords.loc[key, "type"]).strip().lower()
    return "string"


def _select_keywords(requested, info) -> list[str]:
    available = list(info.keywords.index)
    if requested is None:
        chosen = [k for k in DEFAULT_KEYWORDS if k in available]
    elif isinstance(requested, str) and requested == ALL_KEYWORDS:
        chosen = available
    else:
        chosen = list(dict.fromkeys([requested] if isinstance(requested, str) else requested))
        unknown = [k for k in chosen if k not in available]
        if unknown:
            raise ValueError(f"keywords {unknown} are not keywords of {info.name}")
    primes = [k for k in info.primekeys if k in available or k == "T_REC"]
    return list(dict.fromkeys([*primes, *chosen]))


def _with_retries(action, context, what: str, retry_on: tuple):
    """``call_with_retries``, with exhausted or refused archive calls turned into a :class:`SeedingError`."""
    try:
        return call_with_retries(action, context.policy, what, retry_on)
    except retry_on as err:
        raise SeedingError(f"{what}: JSOC at {context.jsoc_url} did not answer, "
                           f"{budget_spent(err, context.policy)} ({type(err).__name__}: {err}); nothing was written"
                           ) from err
    except drms.DrmsError as err:
        raise SeedingError(f"{what}: JSOC refused the request ({err}); nothing was written") from err


def _match(batch: list[str], answers: list[dict[str, str]], primekeys: list[str], what: str) -> dict[str, dict]:
    """Each requested record's answer, found by its prime-key values (a record id may omit trailing prime keys)."""
    answer_keys = _record_keys([[row[k] for k in primekeys] for row in answers])
    by_prefix: dict[int, dict[tuple, list[dict[str, str]]]] = {}
    matched = {}
    for record_id, key in zip(batch, _record_keys([_parse_record_id(r)[1] for r in batch]), strict=True):
        key = key[: len(primekeys)]
        if len(key) not in by_prefix:
            index: dict[tuple, list[dict[str, str]]] = {}
            for row, answer_key in zip(answers, answer_keys, strict=True):
                index.setdefault(answer_key[: len(key)], []).append(row)
            by_prefix[len(key)] = index
        candidates = by_prefix[len(key)].get(key, [])
        distinct = {tuple(sorted(row.items())) for row in candidates}
        if len(distinct) > 1:
            raise SeedingError(f"{what}: record {record_id!r} matches {len(distinct)} archive records; name every "
                               f"prime key ({', '.join(primekeys)})")
        if candidates:
            matched[record_id] = candidates[0]
    return matched


def _fetch(client, context, series: str, primekeys: list[str], keys: list[str], record_ids: list[str],
           batch_size: int, max_chars: int) -> tuple[dict[str, dict[str, str]], int]:
    """Keyword values of every record found (record id -> {key: text}) and the number of rs_list calls."""
    found: dict[str, dict[str, str]] = {}
    batches = list(_batches(record_ids, batch_size, max_chars))
    for number, batch in enumerate(batches, start=1):
        recordset = ",".join(batch)
        what = f"JSOC rs_list {series} batch {number}/{len(batches)} ({len(batch)} records)"
        table = _with_retries(lambda rs=recordset: client.query(rs, key=keys, convert_numeric=False), context, what,
                              TRANSIENT)
        if table is None or table.empty:
            continue
        absent = [k for k in primekeys if k not in table.columns]
        if absent:
            raise SeedingError(f"{what}: the answer lacks the prime keys {absent}")
        answers = table.astype(str).to_dict("records")
        for record_id, row in _match(batch, answers, primekeys, what).items():
            found[record_id] = {k: row.get(k, "") for k in keys}
    return found, len(batches)
