"""Real LASCO frames with their labelled transients taken out: the same sky, halo, pylon and stars, for the QC
tests and bench/bench_lasco_real.py (which time and judge the clean version of each labelled frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def without_transients(path: Path, objects: list[dict], out: Path) -> Path:
    """The frame with each labelled box replaced, column by column, by a log-linear blend of the rows just outside
    it (fill pixels of level-1 frames kept): the same sky, halo, pylon and stars without the transients. Written
    as plain FITS (the header's HISTORY/COMMENT cards dropped: some hold tabs astropy refuses to write)."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data.copy()
    fill = data[0, 0] if data.dtype.kind == "f" else None
    for obj in objects:
        x0, y0, x1, y1 = obj["box"]
        top, bottom = max(y0 - 3, 1), min(y1 + 3, data.shape[0] - 2)
        below, above = data[top - 1, x0 : x1 + 1].astype(float), data[bottom + 1, x0 : x1 + 1].astype(float)
        t = (np.arange(top, bottom + 1)[:, None] - (top - 1)) / (bottom + 2 - top)
        patch = np.exp((1 - t) * np.log(np.maximum(below, 1e-30)) + t * np.log(np.maximum(above, 1e-30)))
        box = data[top : bottom + 1, x0 : x1 + 1]
        keep = box == fill if fill is not None else np.zeros(box.shape, bool)
        box[~keep] = (patch if data.dtype.kind == "f" else np.rint(patch)).astype(data.dtype)[~keep]
    dropped = ("HISTORY", "COMMENT", "BLANK", "BSCALE", "BZERO")  # the data are written as they are
    header = fits.Header([card for card in header.cards if card.keyword not in dropped])
    fits.PrimaryHDU(data, header).writeto(out, overwrite=True, output_verify="silentfix")
    return out
