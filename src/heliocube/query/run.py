"""The query job: list a product's candidates for a span of days and write one manifest per day."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
from pathlib import Path

import pandas as pd

from ..manifest import manifest_day, write_manifest
from ..paths import atomic_path, manifest_path
from ..registry import get_product

__all__ = ["CLIENTS", "query_client", "query_days", "write_day_manifests"]

log = logging.getLogger(__name__)

#: The registry's ``dialect`` picks the client (module, function); every client has the signature (product, days,
#: context). A job imports only its product's client: drms for JSOC, bs4 and the FITS header reads for SDAC.
CLIENTS = {"jsoc": ("jsoc", "query_jsoc"), "sdac_eit": ("sdac", "query_eit"), "sdac_lasco": ("sdac", "query_lasco")}


def query_client(dialect: str):
    """The query function of a registry ``dialect`` (its module imported now)."""
    module, name = CLIENTS[dialect]
    return getattr(importlib.import_module(f".{module}", __package__), name)


def query_days(product_name: str, days: list[dt.date], context) -> pd.DataFrame:
    """All candidate records of ``product_name`` observed on ``days`` (a contiguous span), as manifest rows."""
    product = get_product(product_name)
    return query_client(product.dialect)(product, sorted(days), context)


def write_day_manifests(product_name: str, days: list[dt.date], context, root: str | os.PathLike,
                        index_path: str | os.PathLike) -> pd.DataFrame:
    """Write the manifest of every day in ``days`` that has none yet, then the span's index.

    Days whose manifest already exists are not queried again (a manifest is written atomically, so one that
    exists is complete). The index lists each day with its manifest path and record count.

    Returns
    -------
    pandas.DataFrame
        The index: ``day``, ``manifest``, ``records``.
    """
    missing = [day for day in days if not manifest_path(root, product_name, day).exists()]
    if missing:
        log.info("%s: querying %d day(s) %s..%s", product_name, len(missing), min(missing), max(missing))
        listed = query_days(product_name, missing, context)
        for day in missing:
            write_manifest(manifest_day(listed, day), manifest_path(root, product_name, day))
    rows = []
    for day in days:
        path = manifest_path(root, product_name, day)
        records = len(pd.read_parquet(path, columns=["record_id"]))
        rows.append({"day": day.isoformat(), "manifest": str(path), "records": records})
    index = pd.DataFrame(rows, columns=["day", "manifest", "records"])
    with atomic_path(Path(index_path)) as tmp:
        index.to_csv(tmp, index=False)
    return index
