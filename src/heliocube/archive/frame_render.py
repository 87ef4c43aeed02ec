"""The synthetic mission's frames: pixels drawn from real images or models with each record's defects, and the
FITS bytes served (full header, an as-is segment file, or a corrupt file cut short).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.io import fits

from ..header import SCALE_KEYWORD
from .templates import level_value, load_template_image
from .timefmt import format_iso_z, format_tai

__all__ = ["RenderMixin"]

#: The cards of an as-is JSOC segment file: its structure and encoding (and the archive's resampling factor).
_SEGMENT_FILE_CARDS = frozenset({"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BSCALE", "BZERO",
                                 "BLANK", SCALE_KEYWORD})


class RenderMixin:
    """Rendering of :class:`heliocube.archive.mission.SyntheticMission`: file sizes, FITS bytes (cached, LRU).

    Uses the mission's ``seed``, ``frame_size``, ``params``, ``_pid``, ``_series``, ``_cache``, ``_cache_size``,
    ``_lock``, ``lookup`` and the header, geometry and defect methods (:mod:`.frame_header`, :mod:`.defects`).
    """

    def file_sizes(self, name: str, level: str | None = None) -> tuple[int, int]:
        """Bytes of a served file of ``name`` (all records have the same size) and of a corrupt one.

        For a JSOC product, the archive's own (as-is) segment file; a ``fits`` export's header is longer.
        """
        product = self.product(name)
        level = self._level(product, level)

        def build():
            row = {
                "grid_index": 0,
                "time_utc": pd.Timestamp("2000-01-01", tz="UTC"),
                "t_rec": "x",
                "t_obs": "x",
                "quality": 0,
                "exptime": 1.0,
                "missing_blocks": 0,
                "hole_fraction": 0.0,
                "hole_side": 0,
                "streak": False,
                "cosmic_rays": 0,
                "corrupt": False,
                "record_id": "x/x",
            }
            if product.is_jsoc:
                entry = self._series[product.series_for(level)]
                row["t_rec"] = format_tai([0])[0] if entry["scale"] == "tai" else format_iso_z([0])[0]
                row["t_obs"] = format_tai([0], 2)[0] if entry["scale"] == "tai" else format_iso_z([0], 2)[0]
            blob = self._encode(name, level, row, minimal_header=product.is_jsoc)  # JSOC: its as-is segment file
            return len(blob), len(self._break(blob))

        return self._memoize(("sizes", name, level), build)

    def render_fits(self, product: str, record_id: str, level: str | None = None, *,
                    minimal_header: bool = False) -> bytes:
        """The FITS bytes served for a record (deterministic; corrupt records give a broken file).

        ``minimal_header`` gives what JSOC's ``as-is`` export serves, the archive's own segment file: the FITS
        structure and nothing of the record (its keywords are in the record, see :mod:`.jsoc`), except
        ``HC_SCALE``, which tells a reader that the file was resampled from the native grid (a real JSOC file is
        native and has no such card).

        Raises
        ------
        KeyError
            When the record does not exist.
        """
        key = (product, level, record_id, minimal_header)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        row = self.lookup(record_id, product=product, level=level)
        blob = self._encode(row["product"], row["level"], row, minimal_header)
        if row["corrupt"]:
            blob = self._break(blob)
        with self._lock:
            self._cache[key] = blob
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return blob

    @staticmethod
    def _break(blob: bytes) -> bytes:
        """A corrupt file: the header intact, then only half of the data (so the data cannot be read)."""
        end = 0
        while end < len(blob):
            if blob[end : end + 8] == b"END     ":
                break
            end += 80
        header_len = -(-(end + 80) // 2880) * 2880
        return blob[: header_len + (len(blob) - header_len) // 2]

    def _base_image(self, name: str, level: str) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free image of a product at frame_size and its noise amplitude (both read-only)."""

        def build():
            prm, geo = self.params[name], self.geometry(name, level)
            r = self.radius_map(name, level)
            n = self.frame_size
            model = prm["model"]
            if model == "euv":
                from scipy import ndimage

                src = load_template_image(prm["image"])
                img = ndimage.zoom(src, n / src.shape[0], order=1, grid_mode=True, mode="nearest")[:n, :n]
                img = np.maximum(img * float(prm.get("image_gain", 1.0)), 0) + 2.0
                noise = 0.3 * np.sqrt(img)
            elif model == "magnetogram":
                rng = np.random.default_rng([self.seed, self._pid[name], 777])
                y, x = np.mgrid[0:n, 0:n].astype(np.float32)
                img = np.zeros((n, n), dtype=np.float32)
                for _ in range(8):
                    rr, th = rng.uniform(0, 0.85), rng.uniform(0, 2 * np.pi)
                    px, py = geo.cx + rr * geo.rsun_px * np.cos(th), geo.cy + rr * geo.rsun_px * np.sin(th)
                    sep, width, amp = rng.uniform(0.03, 0.08), rng.uniform(0.015, 0.04), rng.uniform(300, 1500)
                    for sign in (1, -1):
                        dx = x - (px + sign * sep * geo.rsun_px)
                        img += sign * amp * np.exp(-((dx**2 + (y - py) ** 2) / (width * geo.rsun_px) ** 2))
                img[r > self._offdisk_radius(name, level)] = np.nan
                noise = np.full((n, n), 8.0, dtype=np.float32)
            elif model == "coronagraph":
                theta = np.arctan2(
                    *np.mgrid[0:n, 0:n][::-1].astype(np.float32) - np.array([geo.cx, geo.cy])[:, None, None]
                )
                rs = np.maximum(r, geo.inner * 0.5)
                bright = float(prm.get("streamer_brightness", 2000))
                img = (
                    bright
                    * (rs / geo.inner) ** -2.5
                    * (0.4 + 0.6 * np.cos(theta - 0.3) ** 8 + 0.4 * np.cos(2 * theta + 1.0) ** 16)
                    + 400.0
                )
                img[r < geo.inner * 0.95] = 200.0
                img[r > geo.outer * 1.03] = 0.0
                noise = np.sqrt(img)
            else:
                raise ValueError(f"unknown image model {model!r} for {name}")
            img, noise = img.astype(np.float32), noise.astype(np.float32)
            img.setflags(write=False)
            noise.setflags(write=False)
            return img, noise

        return self._memoize(("image", name, level), build)

    def _render_data(self, name: str, level: str, row: dict) -> np.ndarray:
        prm, geo = self.params[name], self.geometry(name, level)
        k = int(row["grid_index"])
        base, noise = self._base_image(name, level)
        rng = self._rng(name, k, 1)
        data = base + noise * rng.standard_normal(base.shape, dtype=np.float32)
        data *= np.float32(1 + 0.05 * np.sin(k * 0.37))
        place = self._placement(name, level)
        mask = self.valid_mask(name, level)
        bright = float(np.nanmax(base)) * 3.0
        if row["streak"]:
            srng = self._rng(name, k, 2)
            radius = geo.outer * geo.rsun_px
            a = srng.uniform(0, 2 * np.pi)
            b = a + np.pi + srng.uniform(-0.6, 0.6)
            x0, y0 = geo.cx + radius * np.cos(a), geo.cy + radius * np.sin(a)
            x1, y1 = geo.cx + radius * np.cos(b), geo.cy + radius * np.sin(b)
            steps = int(np.hypot(x1 - x0, y1 - y0) * 2) + 2
            xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
            ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
            inside = (xs >= 0) & (xs < geo.size) & (ys >= 0) & (ys < geo.size)
            xs, ys = xs[inside], ys[inside]
            on = mask[ys, xs]
            data[ys[on], xs[on]] = bright
        if row["cosmic_rays"]:
            crng = self._rng(name, k, 3)
            idx = crng.choice(place["valid_index"], size=int(row["cosmic_rays"]), replace=False)
            ys, xs = np.unravel_index(idx, data.shape)
            data[ys, xs] = bright
            big = crng.random(idx.size) < 0.5
            xs2 = np.minimum(xs[big] + 1, geo.size - 1)
            data[ys[big], xs2] = np.where(mask[ys[big], xs2], bright, data[ys[big], xs2])
        hole_value = level_value(prm["hole_value"], level)
        holes = np.zeros(data.shape, dtype=bool)
        if row.get("hole_side"):
            side = int(row["hole_side"])
            hrng = self._rng(name, k, 4)
            ok = np.argwhere(place["fits_side"](side))
            y0, x0 = ok[hrng.integers(len(ok))]
            holes[y0 : y0 + side, x0 : x0 + side] = True
        if row["missing_blocks"]:
            brng = self._rng(name, k, 5)
            cells = place["cells"][brng.choice(len(place["cells"]), int(row["missing_blocks"]), replace=False)]
            b = place["block"]
            for y0, x0 in cells:
                holes[y0 : y0 + b, x0 : x0 + b] = True
        bitpix = int(level_value(prm["bitpix"], level))
        if bitpix > 0:
            out = np.clip(np.rint(data), 1, 32000)
            out[base == 0] = 0
            out = out.astype(np.int16)
            out[holes] = 0
            return out
        if prm["model"] == "coronagraph":
            data = np.maximum(data, 1.0) * np.float32(1e-12)
            data[base == 0] = 0
        data = data.astype(np.float32)
        data[holes] = np.nan if hole_value == "nan" else 0.0
        return data

    def _encode(self, name: str, level: str, row: dict, minimal_header: bool = False) -> bytes:
        header = self._record_header(name, level, row)
        data = self._render_data(name, level, row)
        if minimal_header:
            header = fits.Header([card for card in header.cards if card.keyword in _SEGMENT_FILE_CARDS])
        hdu = fits.PrimaryHDU(data=data, header=header)
        # written by hand: astropy's writeto verifies every card (~75 % of the render time); the header was
        # verified once when the template was cleaned and only well-formed keywords are set per record
        head = hdu.header.tostring(endcard=True, padding=True).encode("ascii")
        raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder(">")).tobytes()
        return head + raw + b"\0" * (-len(raw) % 2880)

