"""A fetch job's candidates: the manifest rows a slot may take, the slot itself, and one candidate's raw file.

A candidate is a manifest row (its ``record_id``, ``time_utc``, ``url`` and ``size``); a :class:`Slot` ranks the
candidates near its time and moves on to the next after a rejection; :func:`download_candidate` gives a
candidate's raw file (downloaded unless cached) or the :class:`~heliocube.fetch.gate.Rejection` saying why it
cannot be had.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from ..locations import ForeignLocation, UnsafeLocation, archive_location, archive_url
from ..manifest import empty_manifest, normalize_manifest
from ..paths import manifest_path, raw_dir, safe_component
from .download import DownloadError, download_verified
from .gate import Rejection

__all__ = ["EXPORT_EXPIRED", "CandidateRows", "Slot", "download_candidate", "load_candidates", "location_or_as_is",
           "raw_file_name", "raw_target"]

#: Ledger reason of a record whose export's files were gone (404) before it was downloaded, after its renewals.
EXPORT_EXPIRED = "export_expired"


def raw_file_name(product, record_id: str) -> str:
    """Local file name of a record, built from validated parts only.

    JSOC ``aia.lev1_euv_12s[2011-02-15T00:00:12Z][171]`` becomes
    ``aia.lev1_euv_12s.2011-02-15T000012Z.171.image.fits``; an SDAC path keeps its last component, which must
    be a plain file name.
    """
    if product.is_jsoc:
        series, rest = record_id.split("[", 1)
        parts = [re.sub(r"[^A-Za-z0-9._+-]", "", part) for part in re.findall(r"\[([^\]]*)\]", "[" + rest)]
        return safe_component(".".join([series, *parts, product.segment, "fits"]))
    return safe_component(record_id.rstrip("/").rsplit("/", 1)[-1])


class CandidateRows:
    """The rows of a candidate table by position, each built once: pandas builds a row (``iloc``) in about a
    millisecond, and a fetch job asks for each candidate's row a few times (its location, its download, its QC,
    its receipt), which in a month of 200 files was a second of the job's wall time before and after its
    downloads. Record ids come from one list."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self._rows: dict[int, pd.Series] = {}
        self._record_ids = table["record_id"].tolist()

    def __getitem__(self, position: int) -> pd.Series:
        row = self._rows.get(position)
        if row is None:
            row = self._rows[position] = self.table.iloc[position]
        return row

    def record_id(self, position: int) -> str:
        return self._record_ids[position]

    @classmethod
    def of(cls, table) -> CandidateRows:
        """``table`` itself when it already is a :class:`CandidateRows`, else its rows."""
        return table if isinstance(table, cls) else cls(table)


@dataclasses.dataclass
class Slot:
    day: dt.date
    time: pd.Timestamp
    ranked: list[int]
    position: int = 0
    chosen: int | None = None
    path: Path | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    rejections: list[tuple[int, Rejection]] = dataclasses.field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.chosen is None and self.position < len(self.ranked)

    @property
    def current(self) -> int:
        return self.ranked[self.position]

    def reject(self, rejection: Rejection) -> None:
        self.rejections.append((self.current, rejection))
        self.position += 1


def load_candidates(product_name: str, days: list[dt.date], root) -> pd.DataFrame:
    """Manifests of ``days`` and of their neighbours (a slot near midnight may take a frame across it)."""
    wanted = sorted(set(days) | {d + dt.timedelta(days=k) for d in days for k in (-1, 1)})
    missing = [d for d in days if not manifest_path(root, product_name, d).exists()]
    if missing:
        raise FileNotFoundError(f"{product_name}: no manifest for {missing[0]} (run the query stage first)")
    # read as stored and typed once, together: typing each day's file (read_manifest) took a month's job a second
    paths = [p for p in (manifest_path(root, product_name, d) for d in wanted) if p.exists()]
    frames = [frame for frame in (pd.read_parquet(p) for p in paths) if not frame.empty]
    return normalize_manifest(pd.concat(frames, ignore_index=True)) if frames else empty_manifest()


def raw_target(root, product, row: pd.Series) -> Path | None:
    """Where the candidate's raw file is cached; None when its record id names no plain local file."""
    try:
        return raw_dir(root, product.name, row["time_utc"].date()) / raw_file_name(product, row["record_id"])
    except ValueError:
        return None


def location_or_as_is(url: str, base: str) -> str:
    try:
        return archive_location(url, base)
    except (ForeignLocation, UnsafeLocation):
        return url


def download_candidate(session, product, row: pd.Series, known_urls: dict, root, context, base: str,
                       refused: dict, limiter=None, digests=None, exported: Collection[str] = ()) -> Path | Rejection:
    """The candidate's raw file (downloaded unless cached), or why it cannot be had: a record id that names no
    plain local file (``unsafe_record``), a location off the archive (``foreign_host``) or outside its base
    (``unsafe_location``, refused before any request), or the download's failure. A 404 for a record of
    ``exported`` (whose location an export of this job gave) is :data:`EXPORT_EXPIRED`: the export's files were
    deleted before this one was downloaded, and a new export can give it. ``digests`` (a
    :class:`heliocube.fetch.cache.FileDigests`) notes the SHA-256 of each file downloaded, hashed as it was
    written."""
    target = raw_target(root, product, row)
    if target is None:  # one bad manifest row is one ledger row, never a failed month
        return Rejection("unsafe_record", detail=f"record id {row['record_id']!r} names no plain local file")
    location = known_urls.get(row["record_id"])
    if location is None and not target.exists():  # JSOC's refusal, or no URL in a finished export
        return refused.get(row["record_id"]) or Rejection("missing", detail="the archive gave no URL for this record")
    if target.exists():
        return target
    try:
        url = archive_url(location, base)
    except ForeignLocation as err:  # a URL the archive sent must not lead elsewhere
        return Rejection("foreign_host", detail=f"{err}{_LEGACY_HINT}")
    except UnsafeLocation as err:
        return Rejection("unsafe_location", detail=str(err))
    try:
        size = None if pd.isna(row["size"]) else int(row["size"])
        return download_verified(session, url, target, context.policy, context.timeout, expected_size=size,
                                 limiter=limiter, digests=digests)
    except DownloadError as err:
        if err.reason == "missing" and row["record_id"] in exported:
            return Rejection(EXPORT_EXPIRED, detail=f"{err.detail}: the export's files were gone before this one was "
                                                    "downloaded (the export expired)")
        return Rejection(err.reason, detail=err.detail)


#: Said with a refused absolute URL: manifests written before locations held the host of the archive they were
#: queried from, which may simply have moved.
_LEGACY_HINT = (" (manifests written before heliocube kept archive-relative locations hold absolute URLs: if the"
                " archive moved, delete the product's manifests so the query lists them again)")
