"""Resize square solar frames by an integer factor, with an explicit NaN policy and the matching header update.

Every method reduces an ``n x n`` frame to ``size x size`` where ``size`` divides ``n`` (factor ``f = n // size``);
anything else is rejected, never padded or truncated silently. The output is always float32 (integer input is
converted, never cast back), so NaN can mark missing data.

Methods, their NaN policy and the header convention passed to :func:`heliocube.header.rescale_header`:

============  ==================================================================  ==========
method        value of an output pixel (block = the ``f x f`` input pixels)       convention
============  ==================================================================  ==========
subsample     the block's first pixel ``data[i*f, j*f]`` (NaN stays NaN)          corner
interp        anti-aliased: Gaussian (sigma ``(f-1)/2``) evaluated at the block    center
              centre, NaN-aware (normalized convolution), NaN if the Gaussian
              weight of valid pixels is below :data:`INTERP_MIN_WEIGHT`
minpool       ``nanmin`` of the block; NaN only if the whole block is NaN          center
maxpool       ``nanmax`` of the block; NaN only if the whole block is NaN          center
mean          ``nanmean`` of the block; NaN only if the whole block is NaN         center
sum           ``nanmean * f**2``: flux preserving, missing pixels count as the     center
              block's mean (equals the plain sum when no pixel is NaN); NaN only
              if the whole block is NaN
============  ==================================================================  ==========

Accumulation is in float64 (so integer sums are exact up to 2**53) and the result is rounded once to float32.
"""

from __future__ import annotations

import cv2
import numpy as np
from astropy.io import fits

from heliocube.header import rescale_header

__all__ = ["HEADER_CONVENTION", "INTERP_MIN_WEIGHT", "METHODS", "resize", "resize_factor", "resize_frame",
           "resized_header"]

METHODS = ("subsample", "interp", "minpool", "maxpool", "mean", "sum")
#: Pixel-grid convention of each method for :func:`heliocube.header.rescale_header`.
HEADER_CONVENTION = {
    "subsample": "corner",
    "interp": "center",
    "minpool": "center",
    "maxpool": "center",
    "mean": "center",
    "sum": "center",
}
#: ``interp``: an output pixel is NaN when the valid (non-NaN) pixels carry less than this fraction of its
#: Gaussian weight, i.e. when its neighbourhood is mostly missing.
INTERP_MIN_WEIGHT = 0.5
#: Size of the float64 band :func:`_block_mean` converts at a time (fits in a core's cache).
_BAND_BYTES = 2 << 20
#: Keywords describing the stored integer encoding, invalid once the data are float32.
_ENCODING_KEYS = ("BSCALE", "BZERO", "BLANK")


def resize_factor(shape: tuple[int, ...], size: int) -> int:
    """Return the integer factor ``n // size`` for a square ``(n, n)`` shape, or raise ``ValueError``."""
    if len(shape) != 2:
        raise ValueError(f"resize needs a 2-D frame, got shape {tuple(shape)}")
    n_rows, n_cols = (int(s) for s in shape)
    if n_rows != n_cols:
        raise ValueError(f"resize needs a square frame, got {n_rows}x{n_cols}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"target size must be a positive integer, got {size!r}")
    size = int(size)
    if size > n_rows or n_rows % size:
        raise ValueError(
            f"target size {size} does not divide the frame size {n_rows}; choose a divisor of {n_rows} "
            "(upsampling and non-integer factors are not supported)"
        )
    return n_rows // size


def _blocks(data: np.ndarray, size: int, f: int) -> np.ndarray:
    return data.reshape(size, f, size, f)


def _exact_float32(dtype: np.dtype, f: int) -> np.dtype:
    """float32 when every sum of an ``f x f`` block of ``dtype`` integers is exact in single precision (below
    2**24: 8- and 16-bit integers up to factor 16, AIA's int16 included), so the block mean is the float64 one;
    float64 otherwise. Half the bytes to convert and to average."""
    if dtype.kind == "b":
        return np.dtype(np.float32)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        if max(-int(info.min), int(info.max)) * f * f < 2**24:
            return np.dtype(np.float32)
    return np.dtype(np.float64)


def _block_mean(data: np.ndarray, size: int) -> np.ndarray:
    """Mean of each ``f x f`` block of a frame, accumulated in float64 (or exactly in float32, see below).

    At a power-of-two factor OpenCV's area interpolation is this block mean (its weight ``1/f**2`` is exact in
    single precision; the float64 sums differ from numpy's reduction over a 4-D view only in summation order, by
    an ulp or two, and round to the same float32, checked in the tests) and about six times faster on one core.
    It runs on bands of rows converted to float64 one at a time, so the float64 copy stays in cache (a whole
    4096² frame converted at once streams 128 MB through memory: ~20 of the ~25 ms). Small integers convert to
    float32 instead (:func:`_exact_float32`): their block sums are exact there too, so the result is the same.
    Other factors would carry a single-precision weight, so numpy does them.
    """
    n = data.shape[0]
    f = n // size
    if f & (f - 1):
        return _blocks(data.astype(np.float64, copy=False), size, f).mean(axis=(1, 3))
    work = _exact_float32(data.dtype, f)
    out = np.empty((size, size), dtype=work)
    rows = max(1, _BAND_BYTES // (work.itemsize * n * f)) * f  # input rows per band, whole blocks only
    for start in range(0, n, rows):
        band = np.ascontiguousarray(data[start : start + rows], dtype=work)
        out[start // f : (start + rows) // f] = cv2.resize(band, (size, band.shape[0] // f),
                                                           interpolation=cv2.INTER_AREA)
    return out


def _interp_weights(n: int, size: int, f: int):
    """Sparse ``(size, n)`` matrix (``scipy.sparse.csr_array``) of Gaussian weights (sigma ``(f-1)/2``) centred on
    each block centre."""
    from scipy import sparse  # only interp needs it: the other methods' jobs start without scipy
    sigma = (f - 1) / 2.0
    half = int(np.ceil(4.0 * sigma)) + f  # covers the block and the Gaussian out to 4 sigma
    centres = np.arange(size) * f + (f - 1) / 2.0
    offsets = np.arange(-half, half + 1)
    cols = np.floor(centres)[:, None].astype(np.int64) + offsets[None, :]
    weights = np.exp(-0.5 * ((cols - centres[:, None]) / sigma) ** 2)
    keep = (cols >= 0) & (cols < n) & (weights > 1e-12)
    rows = np.broadcast_to(np.arange(size)[:, None], cols.shape)
    return sparse.csr_array((weights[keep], (rows[keep], cols[keep])), shape=(size, n))


def _interp(data: np.ndarray, size: int, f: int, nan_mask: np.ndarray | None) -> np.ndarray:
    """Anti-aliased resampling as a separable, NaN-aware (normalized) Gaussian convolution sampled at block centres.

    The weights are renormalized per output pixel over the valid in-frame pixels, so frame edges get no dark rim
    and NaN pixels neither spread nor bias their neighbours towards zero.
    """
    n = data.shape[0]
    weights = _interp_weights(n, size, f)
    weights_t = weights.T.tocsr()
    filled = data if nan_mask is None else np.where(nan_mask, 0.0, data)
    num = np.asarray(weights @ (weights @ filled).T).T  # rows then columns: (size, size)
    if nan_mask is None:
        norm = np.outer(weights.sum(axis=1), weights.sum(axis=1))
        return num / norm
    valid = (~nan_mask).astype(np.float64)
    den = np.asarray(weights @ np.asarray(valid @ weights_t))
    total = np.outer(weights.sum(axis=1), weights.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den < INTERP_MIN_WEIGHT * total] = np.nan
    return out


def resize(data: np.ndarray, size: int, method: str) -> np.ndarray:
    """Resize a square frame to ``size x size`` with one of :data:`METHODS`.

    Parameters
    ----------
    data : numpy.ndarray
        Square 2-D frame ``(n, n)``; any real dtype (integers are converted, never cast back).
    size : int
        Output edge; must divide ``n``.
    method : str
        One of :data:`METHODS`; the NaN policy of each is in the module docstring.

    Returns
    -------
    numpy.ndarray
        float32 ``(size, size)`` array (a new array, even for factor 1).

    Raises
    ------
    ValueError
        Unknown method, non-square or non-2-D input, or ``size`` not a divisor of ``n``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown resize method {method!r}; choose one of {METHODS}")
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise ValueError(f"resize needs real numeric data, got dtype {data.dtype}")
    f = resize_factor(data.shape, size)
    size = int(size)
    if f == 1:
        return data.astype(np.float32, copy=True)
    if method == "subsample":
        return data[::f, ::f].astype(np.float32)
    # np.min propagates NaN: one pass over the input, and a mask only for frames that have NaN
    nan_mask = np.isnan(data) if data.dtype.kind == "f" and np.isnan(data.min()) else None
    if method == "interp":
        return _interp(data.astype(np.float64, copy=False), size, f, nan_mask).astype(np.float32)
    if nan_mask is None:
        if method in ("minpool", "maxpool"):  # exact in the input type; one rounding to float32 as via float64
            blocks = _blocks(data, size, f)
            out = blocks.min(axis=(1, 3)) if method == "minpool" else blocks.max(axis=(1, 3))
        elif method == "mean":
            out = _block_mean(data, size)
        else:  # sum
            out = _block_mean(data, size) * (f * f)
        return out.astype(np.float32)
    work = data.astype(np.float64, copy=False)
    count = np.rint(_block_mean(np.where(nan_mask, 0.0, 1.0), size) * (f * f))
    empty = count == 0
    if method in ("minpool", "maxpool"):
        fill = np.inf if method == "minpool" else -np.inf
        blocks = _blocks(np.where(nan_mask, fill, work), size, f)
        out = blocks.min(axis=(1, 3)) if method == "minpool" else blocks.max(axis=(1, 3))
    else:
        total = _block_mean(np.where(nan_mask, 0.0, work), size) * (f * f)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / count
        if method == "sum":
            out = out * (f * f)
    out[empty] = np.nan
    return out.astype(np.float32)


def resize_frame(data: np.ndarray, header: fits.Header, size: int, method: str, *,
                 copy_header: bool = True) -> tuple[np.ndarray, fits.Header]:
    """Resize a frame and return it with its header updated by :func:`heliocube.header.rescale_header`.

    The header gets the method's convention (:data:`HEADER_CONVENTION`), a HISTORY line naming the method and
    sizes, ``HC_SCALE``, ``BITPIX = -32``, no BSCALE/BZERO/BLANK (the data are float32 now) and DATAMIN/DATAMAX
    recomputed when present (removed when the frame is all NaN). The input header is not modified, unless
    ``copy_header`` is False: then it is updated and returned.
    """
    out = resize(data, size, method)
    return out, resized_header(header, int(np.shape(data)[0]), size, method, out, copy_header=copy_header)


def resized_header(header: fits.Header, n: int, size: int, method: str, out: np.ndarray, *,
                   copy_header: bool = True) -> fits.Header:
    """The header :func:`resize_frame` gives a frame of edge ``n`` resized to ``out`` (``size x size``) by ``method``.

    Apart so that a frame resized from an exact intermediate (:mod:`heliocube.handoff`) gets the header of the
    resize from ``n``.
    """
    f = n // int(size)
    convention = HEADER_CONVENTION[method]
    history = f"heliocube resize: {method} {n}x{n} -> {size}x{size} (factor {f}, {convention} convention)"
    new = rescale_header(header, f, convention=convention, history=history, naxis=(int(size), int(size)),
                         copy=copy_header)
    for key in _ENCODING_KEYS:
        new.remove(key, ignore_missing=True, remove_all=True)
    if "BITPIX" in new:
        new["BITPIX"] = -32
    finite = out[np.isfinite(out)]
    for key, func in (("DATAMIN", np.min), ("DATAMAX", np.max)):
        if key in new:
            if finite.size:
                # float32's shortest text: a float64 repr can need 17 digits, more than a card's 20 characters
                new[key] = float(str(np.float32(func(finite))))
            else:  # FITS headers cannot hold NaN
                del new[key]
    return new
