"""What a heliocube output file holds, told from its content: the summary behind ``heliocube info PATH``.

:func:`describe` recognises a cube (a per-year cube or a product's master, ``cubes/{variant}/{product}...h5``)
or a synced file (``synced/{experiment}.h5``) by its structure, not its name, and returns a JSON-ready dict;
:func:`format_summary` renders it as a few aligned lines. Anything else raises :class:`NotAHeliocubeOutput`
whose message says what the path is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .h5xarray import attr_value, file_attrs, read_column

__all__ = ["NotAHeliocubeOutput", "describe", "format_summary"]

_KNOWN = "a heliocube cube or synced file"


class NotAHeliocubeOutput(ValueError):
    """The path is not an output :func:`describe` can read; the message says what it is not, in one line."""


def _versions(attrs: dict[str, Any]) -> dict[str, str]:
    return {key.removeprefix("version_"): str(value) for key, value in attrs.items() if key.startswith("version_")}


def _compression(dataset: h5py.Dataset) -> dict[str, Any]:
    """The HDF5 filters of ``dataset``; for a virtual dataset (a master), those of its first source file."""
    if dataset.is_virtual:
        sources = dataset.virtual_sources()
        if not sources:
            return {"filter": None, "virtual": True}
        source = Path(dataset.file.filename).parent / sources[0].file_name
        try:
            with h5py.File(source, "r") as f:
                return {**_compression(f[sources[0].dset_name]), "virtual": True}
        except OSError:
            return {"filter": "unknown (source missing)", "virtual": True}
    return {"filter": dataset.compression, "level": dataset.compression_opts, "shuffle": bool(dataset.shuffle),
            "chunks": list(dataset.chunks) if dataset.chunks else None}


def _time_range(values: np.ndarray) -> list[str] | None:
    """First and last non-empty ISO time (text sorts as time in this format)."""
    texts = sorted(str(v) for v in values if str(v).strip())
    return [texts[0], texts[-1]] if texts else None


def _is_cube(f: h5py.File) -> bool:
    data = f.get("data")
    return isinstance(data, h5py.Dataset) and data.ndim == 3 and isinstance(f.get("frames"), h5py.Group)


def _is_synced(f: h5py.File) -> bool:
    if "products" not in f.attrs or not isinstance(f.get("time"), h5py.Dataset):
        return False
    return all(isinstance(f.get(f"{p}/data"), h5py.Dataset) for p in attr_value(f.attrs["products"]))


def _describe_cube(f: h5py.File) -> dict[str, Any]:
    attrs = file_attrs(f)
    data = f["data"]
    frames = f["frames"]
    sources = attrs.get("sources")
    return {
        "kind": "cube master" if data.is_virtual or sources else "cube",
        "product": attrs.get("product", ""),
        "variant": attrs.get("variant", ""),
        "shape": list(data.shape),
        "dims": ["time", "y", "x"],
        "dtype": str(data.dtype),
        "n_frames": int(data.shape[0]),
        "time_range": _time_range(read_column(frames["slot_time"])) if "slot_time" in frames else None,
        "cadence": attrs.get("cadence", ""),
        "units": str(attrs.get("units", data.attrs.get("units", ""))),
        "compression": _compression(data),
        "config_hash": attrs.get("config_hash", ""),
        "created": attrs.get("created", ""),
        "versions": _versions(attrs),
        "sources": list(sources) if sources else [],
        "columns": sorted(frames),
    }


def _describe_synced(f: h5py.File) -> dict[str, Any]:
    attrs = file_attrs(f)
    products = {}
    for name in attrs["products"]:
        group = f[name]
        data = group["data"]
        products[name] = {
            "shape": list(data.shape),
            "dtype": str(data.dtype),
            "units": str(group.attrs.get("units", data.attrs.get("units", ""))),
            "variant": str(attr_value(group.attrs.get("source_variant", ""))),
            "frames_present": int(attr_value(group.attrs.get("n_present", data.shape[0]))),
            "running_difference": bool(attr_value(group.attrs.get("difference", False))),
            "compression": _compression(data),
        }
    variants = sorted({p["variant"] for p in products.values() if p["variant"]})
    return {
        "kind": "synced",
        "experiment": attrs.get("experiment", ""),
        "products": products,
        "variant": ", ".join(variants),
        "n_rows": int(f["time"].shape[0]),
        "time_range": _time_range(read_column(f["time"])),
        "step": attrs.get("step", ""),
        "tolerance": attrs.get("tolerance", ""),
        "range": [attrs.get("range_start", ""), attrs.get("range_finish", "")],
        "dropped_rows": attrs.get("n_dropped_rows"),
        "config_hash": attrs.get("config_hash", ""),
        "created": attrs.get("created", ""),
        "versions": _versions(attrs),
    }


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready summary of the heliocube output at ``path``.

    Parameters
    ----------
    path : path-like
        A cube or master (``{root}/cubes/{variant}/{product}.h5``, ``.../{product}/{year}.h5``) or a synced file
        (``{root}/synced/{experiment}.h5``), recognised by content whatever its name.

    Returns
    -------
    dict
        ``path``, ``kind`` (``"cube"``, ``"cube master"`` or ``"synced"``) and what that kind records: shape,
        dtype, number of frames or rows, time range (first and last slot or axis time, UTC), products, variant,
        units, compression, config hash, creation time and software versions (the ``version_*`` attributes).

    Raises
    ------
    NotAHeliocubeOutput
        When ``path`` does not exist, is a directory, is not HDF5, or is HDF5 without either layout.
    """
    path = Path(path)
    if not path.exists():
        raise NotAHeliocubeOutput(f"{path}: no such file or directory")
    if path.is_dir():
        raise NotAHeliocubeOutput(f"{path} is a directory, not {_KNOWN} (exports are not described yet)")
    if not h5py.is_hdf5(path):
        raise NotAHeliocubeOutput(f"{path} is not an HDF5 file, so not {_KNOWN}")
    with h5py.File(path, "r") as f:
        if _is_synced(f):
            summary = _describe_synced(f)
        elif _is_cube(f):
            summary = _describe_cube(f)
        else:
            raise NotAHeliocubeOutput(
                f"{path} is an HDF5 file but not {_KNOWN} (a cube has /data (T, H, W) and /frames; a synced file a "
                "'products' attribute, /time and /<product>/data)"
            )
    return _json_ready({"path": str(path), **summary})


def _json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as plain Python values, so ``json.dumps`` takes it."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _compression_text(options: dict[str, Any]) -> str:
    if options.get("filter") is None:
        text = "none"
    else:
        text = str(options["filter"])
        if options.get("level") is not None:
            text += f" level {options['level']}"
        if options.get("shuffle"):
            text += " + shuffle"
    if options.get("chunks"):
        text += f", chunks {' x '.join(map(str, options['chunks']))}"
    return text + (" (in the source files)" if options.get("virtual") else "")


def _range_text(times: list[str] | None) -> str:
    return f"{times[0]} .. {times[1]} UTC" if times else "(no frames)"


def format_summary(summary: dict[str, Any]) -> str:
    """The lines ``heliocube info`` prints for a :func:`describe` summary."""
    rows: list[tuple[str, str]] = [(summary["kind"], summary["path"])]
    if summary["kind"] == "synced":
        rows += [("experiment", summary["experiment"]),
                 ("rows", f"{summary['n_rows']} on a {summary['step']} axis, {_range_text(summary['time_range'])}"),
                 ("dropped rows", str(summary["dropped_rows"])),
                 ("variant", summary["variant"] or "unknown")]
        for name, product in summary["products"].items():
            extra = ", running difference" if product["running_difference"] else ""
            rows.append((f"  {name}", f"{' x '.join(map(str, product['shape']))} {product['dtype']} "
                                      f"[{product['units']}], {product['frames_present']} frames present{extra}"))
        first = next(iter(summary["products"].values()), None)
        rows.append(("compression", _compression_text(first["compression"]) if first else "none"))
    else:
        cadence = f" every {summary['cadence']}" if summary["cadence"] else ""
        rows += [("product", summary["product"] or "unknown"),
                 ("variant", summary["variant"] or "unknown"),
                 ("frames", f"{summary['n_frames']}{cadence}, {_range_text(summary['time_range'])}"),
                 ("shape", f"{' x '.join(map(str, summary['shape']))} {summary['dtype']} (time, y, x)"),
                 ("units", summary["units"]),
                 ("compression", _compression_text(summary["compression"]))]
        if summary["sources"]:
            rows.append(("sources", ", ".join(summary["sources"])))
    rows += [("config hash", summary["config_hash"] or "unknown"),
             ("created", summary["created"] or "unknown"),
             ("versions", ", ".join(f"{k} {v}" for k, v in summary["versions"].items()) or "unknown")]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
