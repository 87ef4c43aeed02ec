"""The report page: sections of blocks (text, figures, thumbnail grids, tables) rendered into one HTML file.

The page is self-contained: images are ``data:image/png;base64`` URIs and the style sheet is inline, so the file can
be mailed, attached to a ticket or opened from a cluster's file system with no server. The Jinja2 template
(``heliocube/data/report/index.html.j2``) escapes every value; tables come from :meth:`pandas.DataFrame.to_html`,
which escapes their cells.
"""

from __future__ import annotations

import base64
import dataclasses

import pandas as pd

__all__ = ["Facts", "Figure", "Section", "Table", "Text", "ThumbnailGrid", "data_uri", "render_page"]


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclasses.dataclass
class Text:
    """A paragraph."""

    text: str
    kind: str = "text"


@dataclasses.dataclass
class Facts:
    """Key figures as label-value pairs (e.g. products, date range, slots filled)."""

    items: list[tuple[str, str]]
    kind: str = "facts"


@dataclasses.dataclass
class Figure:
    """A PNG figure with its alternative text and caption."""

    png: bytes
    alt: str
    caption: str = ""
    kind: str = "figure"

    @property
    def src(self) -> str:
        return data_uri(self.png)


@dataclasses.dataclass
class ThumbnailGrid:
    """One row of thumbnails (PNG bytes, label) under a heading, e.g. one product of one variant."""

    heading: str
    items: list[tuple[bytes, str]]
    note: str = ""
    kind: str = "thumbnails"

    @property
    def images(self) -> list[tuple[str, str]]:
        return [(data_uri(png), label) for png, label in self.items]


@dataclasses.dataclass
class Table:
    """A table, cut to ``max_rows`` rows (the caption then says how many rows the full table has and where)."""

    frame: pd.DataFrame
    caption: str
    max_rows: int = 500
    source: str = ""
    kind: str = "table"

    @property
    def html(self) -> str:
        shown = self.frame.head(self.max_rows)
        return shown.to_html(index=False, border=0, na_rep="", classes="data", float_format=lambda v: f"{v:.6g}")

    @property
    def note(self) -> str:
        if len(self.frame) <= self.max_rows:
            return ""
        where = f" in {self.source}" if self.source else ""
        return f"First {self.max_rows} of {len(self.frame)} rows; all of them{where}."


@dataclasses.dataclass
class Section:
    """A titled part of the page; ``id`` is its anchor."""

    id: str
    title: str
    blocks: list = dataclasses.field(default_factory=list)


def render_page(title: str, sections: list[Section]) -> str:
    """The whole page as HTML text.

    Parameters
    ----------
    title : str
        Page title and heading.
    sections : list of Section
        In page order; the navigation bar links to each.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("heliocube", "data/report"),
                             autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html.j2").render(title=title, sections=sections)
