"""The seed's XML formats (GSU image-parameter API), written by the server and read by the client.

The seed's client reads these positionally, so the order of children is the format:

- one frame: a root whose children are cells, each ``<cell><x/><y/>`` followed by the ten parameters in
  :data:`heliocube.params.PARAMETER_NAMES` order (``x`` the grid column, ``y`` the grid row, from 0);
- a range: a root whose children are ``<paramframe>``, each a ``<time>`` then the frame's cells;
- header information: a root whose first six children are X0, Y0, DSUN, R_SUN, CDELT, QUALITY.

As in the seed, :func:`convert_param_xml_to_ndarray` returns an array indexed ``[x][y][parameter]``; its
``transpose(1, 0, 2)`` is the parameter file's ``[row][column][parameter]``. NaN (a cell off the data) is ``NaN``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

import numpy as np
import orjson

__all__ = [
    "HEADER_KEYS",
    "convert_header_xml_to_dict",
    "convert_param_bulk_xml_to_ndarray",
    "convert_param_xml_to_ndarray",
    "header_xml",
    "params_range_xml",
    "params_xml",
]

HEADER_KEYS = ("X0", "Y0", "DSUN", "R_SUN", "CDELT", "QUALITY")
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _attrs(attrs: Mapping[str, object]) -> str:
    return "".join(f" {key}={quoteattr(str(value))}" for key, value in attrs.items())


def _number_texts(values: np.ndarray) -> list[str]:
    """Shortest round-trip text of each value (float32 stays short), NaN as ``NaN``: orjson formats in C."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().replace("null", "NaN").split(",")


@functools.lru_cache(maxsize=8)
def _frame_template(rows: int, cols: int, names: tuple[str, ...]) -> str:
    """Every cell of a frame with its x and y written in and a ``{}`` per value: one ``str.format`` per frame."""
    values = "".join(f"<{name}>{{}}</{name}>" for name in names)
    return "".join(f"<cell><x>{x}</x><y>{y}</y>{values}</cell>" for y in range(rows) for x in range(cols))


def _cells(grid: np.ndarray, names: Sequence[str]) -> str:
    """The cells of one (G, G, P) frame, row by row."""
    rows, cols, _ = grid.shape
    return _frame_template(rows, cols, tuple(names)).format(*_number_texts(grid))


def params_xml(grid: np.ndarray, names: Sequence[str], attrs: Mapping[str, object]) -> str:
    """One frame's parameters (G, G, P) as the seed's XML; ``attrs`` become root attributes."""
    return f"{_DECLARATION}<imageparams{_attrs(attrs)}>{_cells(grid, names)}</imageparams>\n"


def params_range_xml(grids: np.ndarray, times: Sequence[str], names: Sequence[str],
                     attrs: Mapping[str, object]) -> str:
    """Frames (N, G, G, P) at ``times`` as the seed's range XML."""
    frames = "".join(f"<paramframe><time>{time}</time>{_cells(grid, names)}</paramframe>"
                     for grid, time in zip(grids, times, strict=True))
    return f"{_DECLARATION}<imageparamsrange{_attrs(attrs)}>{frames}</imageparamsrange>\n"


def header_xml(values: Mapping[str, object], extra: Mapping[str, object]) -> str:
    """Header information: the six seed keys first (in order), then ``extra`` children."""
    def text(value):
        return "" if value is None else str(value)

    children = "".join(f"<{k}>{text(values.get(k))}</{k}>" for k in HEADER_KEYS)
    children += "".join(f"<{k}>{text(v)}</{k}>" for k, v in extra.items())
    return f"{_DECLARATION}<header>{children}</header>\n"


def _root(xml_content) -> ET.Element:
    if isinstance(xml_content, ET.Element):
        return xml_content
    return ET.fromstring(xml_content)


def _fill(cells, out: np.ndarray) -> np.ndarray:
    for cell in cells:
        x, y = int(cell[0].text), int(cell[1].text)
        out[x, y, :] = [float(value.text) for value in cell[2:]]
    return out


def _shape(root: ET.Element, cells) -> tuple[int, int, int]:
    grid = root.get("grid")
    if grid is not None:
        return int(grid), int(grid), len(cells[0]) - 2 if len(cells) else 10
    side = max(max(int(c[0].text), int(c[1].text)) for c in cells) + 1 if len(cells) else 0
    return side, side, len(cells[0]) - 2 if len(cells) else 10


def convert_param_xml_to_ndarray(xml_content) -> np.ndarray:
    """One frame's XML (text, bytes or an Element) as an array ``[x][y][parameter]``, like the seed's function.

    The grid size is read from the XML (64 for the seed's data), not assumed.
    """
    root = _root(xml_content)
    cells = list(root)
    return _fill(cells, np.full(_shape(root, cells), np.nan))


def convert_param_bulk_xml_to_ndarray(xml_content) -> dict[str, np.ndarray]:
    """A range XML as ``{time: [x][y][parameter] array}``, like the seed's function."""
    root = _root(xml_content)
    out = {}
    for frame in root:
        cells = list(frame)[1:]
        out[frame[0].text] = _fill(cells, np.full(_shape(root, cells), np.nan))
    return out


def convert_header_xml_to_dict(xml_content) -> dict[str, str]:
    """Header XML as ``{X0, Y0, DSUN, R_SUN, CDELT, QUALITY: text}`` (the seed's keys and order)."""
    return {key: child.text for key, child in zip(HEADER_KEYS, _root(xml_content), strict=False)}
