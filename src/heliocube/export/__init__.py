"""Export stage: ML-ready copies of the synced experiments (``{root}/synced/{experiment}.h5``).

Every export is built from a synced file and names its channels with :func:`channel_name`:

- :mod:`heliocube.export.zarr_store`: an SDOML v2-style Zarr v3 store ``{root}/exports/{experiment}.zarr``, one
  group per year, one float32 ``(time, y, x)`` array per channel on the experiment's shared time axis, per-frame
  keyword lists in the array attributes and 1-D provenance arrays beside them.
- :mod:`heliocube.export.splits`: leak-free train/val/test manifests by time blocks with a guard gap.

Submodules are imported on use, so the config check (run by every Snakemake process) loads no zarr.
"""

from .channels import channel_name

__all__ = ["channel_name"]
