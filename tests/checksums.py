"""Checksums of the *data* in an output tree, equal for two runs that produced the same data.

:func:`data_checksums` maps every data file under a root (relative POSIX path) to a sha256 over what the file
holds, not over its bytes, where the bytes carry run-specific noise:

* FITS (recognised by content, so raw files without a ``.fits`` suffix count): per HDU, the header cards in order
  except the volatile ones (:data:`VOLATILE_FITS_CARDS`: file-creation date and checksums), with date-times in
  ``HISTORY``/``COMMENT`` text masked, then the HDU's data bytes exactly as stored.
* HDF5: every attribute (except volatile ones: :data:`VOLATILE_KEYS`, also as a ``_``-joined part of a name, so
  ``created`` and ``seeded_created``) of every group and dataset, and every
  dataset's dtype, shape and values (variable-length strings included; virtual datasets read through their
  sources), visited in sorted name order.
* Parquet: column names, types and values, without the schema metadata (which names writer versions) and without
  volatile columns. CSV/TSV: the cells, without volatile columns. JSON: the parsed document, volatile keys dropped
  at every depth. gzip: the decompressed content, classified again (the gzip header holds a time stamp).
* Anything else: its bytes.

Logs, benchmarks, the report, the EIT header caches, the embedded archive's files, Snakemake's metadata and hidden
files (except zarr v2 metadata) are skipped (:data:`SKIPPED_DIRS`, :data:`SKIPPED_SUFFIXES`). Software versions
stay in: a change of version is a real difference.
In text (not in pixel bytes) the root's absolute path reads as ``<root>``, so trees in two directories compare;
other paths and URLs are data, so the two runs compared must use the same relative ``output_root`` and the same
archive URL.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

__all__ = ["SKIPPED_DIRS", "SKIPPED_SUFFIXES", "VOLATILE_FITS_CARDS", "VOLATILE_KEYS", "data_checksum",
           "data_checksums", "is_skipped"]

#: Top-level directories of an output root (and directories anywhere) that hold no data. The report is a view of
#: the data plus this run's rule runtimes, so two runs with identical data still differ there (test_report checks it).
SKIPPED_DIRS = frozenset({"logs", "benchmarks", "embedded-archive", ".snakemake", "report"})
#: File-name endings of caches that are not data: the EIT header cache holds the archive's answers in arrival order
#: (a resumed query appends after a torn line), and what it lists is compared through the manifests.
SKIPPED_SUFFIXES = (".headers.jsonl",)
#: HDF5 attributes, table columns and JSON keys that differ between identical runs: when a file was written or
#: (``mtime_ns``, the fetch receipts' identity of a QC-inspected raw file) downloaded.
VOLATILE_KEYS = frozenset({"created", "mtime_ns"})
#: FITS cards that differ between identical runs: when the file was written, and checksums over the header.
VOLATILE_FITS_CARDS = frozenset({"DATE", "CHECKSUM", "DATASUM", "ZHECKSUM", "ZDATASUM"})
#: Hidden files that are data: zarr v2 metadata.
_HIDDEN_DATA = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata"})
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class _Digest:
    """sha256 of a sequence of length-prefixed parts, so that ("ab", "c") and ("a", "bc") differ.

    Text parts have the output root's absolute path replaced by ``<root>``, binary parts (pixel bytes) do not.
    """

    def __init__(self, roots: tuple[bytes, ...] = ()):
        self._hash = hashlib.sha256()
        self._roots = sorted(roots, key=len, reverse=True)

    def add(self, part: bytes | str, text: bool = True) -> None:
        data = part.encode() if isinstance(part, str) else bytes(part)
        if text:
            for root in self._roots:
                data = data.replace(root, b"<root>")
        self._hash.update(len(data).to_bytes(8, "little"))
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def data_checksums(root: str | Path, volatile: frozenset[str] = VOLATILE_KEYS) -> dict[str, str]:
    """``{relative path: sha256 of its data}`` for every data file under ``root`` (see the module docstring)."""
    root = Path(root)
    roots = tuple({str(root.absolute()).encode(), str(root.resolve()).encode()})
    sums = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or is_skipped(relative):
            continue
        sums[relative.as_posix()] = data_checksum(path, volatile, roots)
    return sums


def is_skipped(relative: Path) -> bool:
    """Whether the file or folder at ``relative`` (to the root) holds no data for :func:`data_checksums`."""
    *dirs, name = relative.parts
    if any(part in SKIPPED_DIRS or part.startswith(".") for part in dirs) or name in SKIPPED_DIRS:
        return True
    if name.endswith(SKIPPED_SUFFIXES):
        return True
    return name.startswith(".") and name not in _HIDDEN_DATA


def data_checksum(path: str | Path, volatile: frozenset[str] = VOLATILE_KEYS, roots: tuple[bytes, ...] = ()) -> str:
    """sha256 over the data of one file, by its kind (recognised from its content, else its suffix); ``roots``
    are absolute paths (bytes) to read as ``<root>`` in text."""
    path = Path(path)
    digest = _Digest(roots)
    _add_content(digest, path.read_bytes(), path.name.lower(), path, volatile)
    return digest.hexdigest()


def _add_content(digest: _Digest, raw: bytes, name: str, path: Path | None, volatile: frozenset[str]) -> None:
    if raw[:2] == b"\x1f\x8b":
        digest.add("gzip")
        _add_content(digest, gzip.decompress(raw), name.removesuffix(".gz"), None, volatile)
    elif raw[:9] == b"SIMPLE  =":
        digest.add("fits")
        _add_fits(digest, raw)
    elif raw[:8] == _HDF5_SIGNATURE or (path is not None and name.endswith((".h5", ".hdf5", ".he5", ".nc"))):
        digest.add("hdf5")
        _add_hdf5(digest, path, raw, volatile)
    elif raw[:4] == b"PAR1" and raw[-4:] == b"PAR1":
        digest.add("parquet")
        _add_parquet(digest, raw, volatile)
    elif name.endswith((".csv", ".tsv")):
        digest.add("table")
        _add_table(digest, raw, "\t" if name.endswith(".tsv") else ",", volatile)
    elif name.endswith(".json") or name in _HIDDEN_DATA:
        digest.add("json")
        digest.add(json.dumps(_drop_keys(json.loads(raw), volatile), sort_keys=True, default=str))
    else:
        digest.add("bytes")
        digest.add(raw)


def _add_fits(digest: _Digest, raw: bytes) -> None:
    from astropy.io import fits

    with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False) as hdus:
        for hdu in hdus:
            for card in hdu.header.cards:
                if card.keyword in VOLATILE_FITS_CARDS:
                    continue
                text = card.image
                if card.keyword in ("HISTORY", "COMMENT", ""):
                    text = _TIMESTAMP.sub("<time>", text)
                digest.add(text)
            info = hdu.fileinfo()
            digest.add(raw[info["datLoc"] : info["datLoc"] + info["datSpan"]], text=False)


def _add_hdf5(digest: _Digest, path: Path | None, raw: bytes, volatile: frozenset[str]) -> None:
    import h5py

    source = path if path is not None else io.BytesIO(raw)
    with h5py.File(source, "r") as f:
        _add_attrs(digest, f, volatile)
        names: list[str] = []
        f.visit(names.append)
        for name in sorted(names):
            obj = f.get(name, getlink=True)
            if isinstance(obj, h5py.ExternalLink | h5py.SoftLink):
                digest.add(f"link {name} -> {obj.path}")
                continue
            obj = f[name]
            digest.add(name)
            _add_attrs(digest, obj, volatile)
            if isinstance(obj, h5py.Dataset):
                _add_dataset(digest, obj)


def _add_attrs(digest: _Digest, obj, volatile: frozenset[str]) -> None:
    for key in sorted(obj.attrs):
        if not _is_volatile(key, volatile):
            digest.add(key)
            digest.add(_value_bytes(obj.attrs[key]))


def _add_dataset(digest: _Digest, dataset) -> None:
    import h5py
    import numpy as np

    digest.add(f"{dataset.dtype.str} {dataset.shape}")
    if dataset.is_virtual:  # which sources it maps: reading a missing source would silently give fill values
        for source in dataset.virtual_sources():
            digest.add(f"virtual {source.file_name} {source.dset_name}")
    if dataset.shape is None:  # empty dataspace
        return
    if dataset.dtype.names and dataset.dtype.hasobject:  # compound with variable-length fields
        digest.add(repr(dataset[()].tolist()))
    elif h5py.check_string_dtype(dataset.dtype) or dataset.dtype.kind == "O":
        for value in np.asarray(dataset[()], dtype=object).ravel():
            digest.add(_value_bytes(value))
    else:
        digest.add(np.ascontiguousarray(dataset[()]).tobytes(), text=False)


def _value_bytes(value) -> bytes:
    import numpy as np

    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    array = np.asarray(value)
    if array.dtype.kind == "O":
        return b"\0".join(_value_bytes(item) for item in array.ravel())
    if array.dtype.kind == "U":
        return "\0".join(array.ravel().tolist()).encode()
    return f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes()


def _add_parquet(digest: _Digest, raw: bytes, volatile: frozenset[str]) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(raw))
    for column in table.column_names:
        if _is_volatile(column, volatile):
            continue
        digest.add(f"{column} {table.schema.field(column).type}")
        digest.add(json.dumps(table.column(column).to_pylist(), default=str))


def _add_table(digest: _Digest, raw: bytes, delimiter: str, volatile: frozenset[str]) -> None:
    rows = list(csv.reader(io.StringIO(raw.decode()), delimiter=delimiter))
    if not rows:
        return
    keep = [i for i, column in enumerate(rows[0]) if not _is_volatile(column, volatile)]
    for row in rows:
        digest.add("\0".join(row[i] if i < len(row) else "" for i in keep))


def _drop_keys(document, volatile: frozenset[str]):
    if isinstance(document, dict):
        return {key: _drop_keys(value, volatile) for key, value in document.items()
                if not _is_volatile(key, volatile)}
    if isinstance(document, list):
        return [_drop_keys(item, volatile) for item in document]
    return document


def _is_volatile(key: str, volatile: frozenset[str]) -> bool:
    """``created`` is volatile, and so are ``seeded_created`` and ``created_utc``."""
    return key in volatile or any(key.endswith(f"_{word}") or key.startswith(f"{word}_") for word in volatile)
