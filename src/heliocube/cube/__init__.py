"""Per-product HDF5 cubes written by streaming frames, a virtual-dataset master, and an xarray view.

Layout of a cube file (readable with plain h5py)::

    /data            float32 (T, H, W), chunks (1, H, W), maxshape (None, H, W), gzip+shuffle by default;
                     attrs: units
    /frames/<col>    one 1-D dataset of length T per metadata column (slot_time, obs_time, dt, record id, url,
                     sha256, QC metrics, WCS keys...): strings are variable-length UTF-8, ints int64, floats
                     float64, bools bool
    /headers         variable-length UTF-8 (T,): the full FITS header text of each frame ("\\n"-separated cards)
    root attrs       variant, config_hash, units, created (UTC ISO), software versions (version_heliocube,
                     version_numpy, version_astropy, version_sunpy, version_h5py), frame_shape, n_frames, plus any
                     ``attrs`` given to :class:`CubeWriter`

:class:`CubeWriter` writes to a hidden temporary file beside the target and renames it on a successful close, so a
file at the target path is always complete; it also writes ``<stem>_times.csv`` (slot_time, obs_time) the same way.
Memory use does not depend on the number of frames (one frame plus small per-frame metadata columns).

:func:`build_master` concatenates per-year cubes with HDF5 virtual datasets (no data copied), so extending a range
rewrites only the affected year and the master. :func:`open_cube_xarray` opens a cube as a lazily indexed
:class:`xarray.Dataset` with time and helioprojective coordinates (through h5py: see :mod:`heliocube.h5xarray`).

The modules: :mod:`~heliocube.cube.files` (paths, filters, versions), :mod:`~heliocube.cube.writer`
(:class:`CubeWriter`), :mod:`~heliocube.cube.master` (:func:`build_master`), :mod:`~heliocube.cube.xarray_view`
(:func:`open_cube_xarray`). None imports astropy or pandas: the cube and sync jobs start with numpy and h5py only.
"""

from .files import compression_options, software_versions, times_csv_path
from .master import build_master
from .writer import CubeWriter
from .xarray_view import lazy_array, open_cube_xarray

__all__ = [
    "CubeWriter",
    "build_master",
    "compression_options",
    "lazy_array",
    "open_cube_xarray",
    "software_versions",
    "times_csv_path",
]
