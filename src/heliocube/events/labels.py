"""Frame file names and the label files of an event dataset (the prior notebook's ``image_labels.csv`` / ``.txt``).

A sampled frame is named as the JSOC export names its record, which is the name the prior notebook's files had:
``aia.lev1_euv_12s.2014-02-20T081811Z.131.image_lev1.fits`` for ``aia.lev1_euv_12s[2014-02-20T08:18:11Z][131]``
(series, prime keys without characters unsafe in file names, the segment's storage name, ``fits``).
Labels are 1 for a flare frame and 0 for a pre- or post-flare frame; ``goes_class`` (the class of the event the
frame belongs to, for its pre and post frames too) and ``phase`` are optional columns.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ..paths import atomic_path, safe_component
from ..registry import get_product

__all__ = ["LABEL_OF_PHASE", "label_table", "seed_file_name", "write_labels"]

#: Label of each phase: flare frames are the positive class.
LABEL_OF_PHASE = {"pre": 0, "flare": 1, "post": 0}
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def seed_file_name(product: str, record: str, time: pd.Timestamp) -> str:
    """The file name of one frame: JSOC's export name of the record, else the record's last path component
    (SDAC archives), else ``{product}.{YYYY-MM-DDThhmmss}Z.fits`` from the observation time.

    Examples
    --------
    >>> seed_file_name("AIA131", "aia.lev1_euv_12s[2014-02-20T08:18:11Z][131]", pd.Timestamp("2014-02-20T08:18:11"))
    'aia.lev1_euv_12s.2014-02-20T081811Z.131.image_lev1.fits'
    """
    try:
        entry = get_product(product)
    except KeyError:
        entry = None
    record = str(record or "")
    if entry is not None and entry.is_jsoc and "[" in record:
        series, rest = record.split("[", 1)
        keys = [_UNSAFE.sub("", key) for key in re.findall(r"\[([^\]]*)\]", "[" + rest)]
        return safe_component(".".join([series, *keys, entry.segment_file or entry.segment or "data", "fits"]))
    if record and "[" not in record:
        name = _UNSAFE.sub("", record.rstrip("/").rsplit("/", 1)[-1])
        if name:
            return safe_component(name if name.lower().endswith((".fits", ".fts")) else f"{name}.fits")
    return safe_component(f"{_UNSAFE.sub('', product)}.{pd.Timestamp(time):%Y-%m-%dT%H%M%S}Z.fits")


def label_table(sampled: pd.DataFrame, *, goes_class: bool = False, phase: bool = False) -> pd.DataFrame:
    """``filename, label[, goes_class][, phase]`` of the sampled frames, sorted by file name (as the notebook).

    ``sampled`` has ``filename``, ``owner_phase`` and ``goes_class`` per sampled frame.

    Raises
    ------
    ValueError
        When two sampled frames have the same file name (they would be one file in a copy of the dataset).
    """
    table = pd.DataFrame({"filename": sampled["filename"].astype(str),
                          "label": sampled["owner_phase"].map(LABEL_OF_PHASE).astype("int64")})  # fmt: skip
    if goes_class:
        table["goes_class"] = sampled["goes_class"].astype(str).to_numpy()
    if phase:
        table["phase"] = sampled["owner_phase"].astype(str).to_numpy()
    repeated = table["filename"][table["filename"].duplicated()]
    if len(repeated):
        raise ValueError(f"two sampled frames are both named {repeated.iloc[0]!r}")
    return table.sort_values("filename", kind="stable").reset_index(drop=True)


def write_labels(table: pd.DataFrame, csv_path: str | os.PathLike, tsv_path: str | os.PathLike) -> None:
    """Write the label table as CSV and as TSV (the notebook's two files), atomically, ``\\n`` line ends."""
    for path, sep in ((Path(csv_path), ","), (Path(tsv_path), "\t")):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, sep=sep, index=False, lineterminator="\n")
