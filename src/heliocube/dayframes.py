"""Reading the clean stage's day files (``frames/{variant}/{product}/{YYYY}/{YYYY-MM-DD}.fits``) without astropy.

A day file is what :func:`heliocube.framewrite.write_frames` writes: an empty primary HDU whose ``NFRAMES`` card
counts the image HDUs that follow, then one float32 image HDU per slot. The cube job copies every frame with its
header text, so it needs each HDU's data and cards, not a FITS library: :class:`DayFrames` walks the HDUs by their
sizes and reads one frame at a time, and :meth:`DayFrames.frame` gives the frame, the header text the cube stores
(astropy's ``Header.tostring(sep="\\n", endcard=False, padding=False)``) and the ``BUNIT`` value. Cards astropy
would rewrite when it verifies them (lowercase keywords, non-standard values, ``CONTINUE`` strings)
and images other than unscaled float32 go through astropy, imported then; the tests compare both on such headers.

A file shorter than its headers say (cut short on disk) raises :class:`TruncatedFramesFile`, naming the file, the
HDU and the byte counts, where astropy would drop the HDUs it cannot read and leave the caller an ``IndexError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

__all__ = ["DayFrames", "TruncatedFramesFile"]

_BLOCK = 2880
_CARD = 80
_END = "END" + " " * 77
_COMMENTARY = ("", "COMMENT", "HISTORY")
#: a value card astropy leaves as it is when it verifies it: an upper-case keyword, "= " in columns 9-10, a
#: string, logical, integer or real value in the standard's fixed or free format, an optional comment
_PLAIN_VALUE = re.compile(r" *(?:'(?:[ -&(-~]|'')*'|[TF]|[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?) *(?:/[ -~]*)?")
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8} *")
_PRINTABLE = re.compile(r"[ -~]*")


class TruncatedFramesFile(ValueError):
    """A day file is shorter than its own headers say: it was cut short after the clean stage wrote it."""


def _keyword(record: str) -> str:
    return record[:8].rstrip()


def _is_plain(record: str) -> bool:
    """Whether astropy keeps ``record`` verbatim: its verification would change nothing."""
    keyword = _keyword(record)
    if keyword in _COMMENTARY:
        return bool(_PRINTABLE.fullmatch(record))
    if keyword == "HIERARCH":  # ESO's long keywords: astropy checks their value only
        name, _, value = record[9:].partition("=")
        return bool(_PRINTABLE.fullmatch(name)) and bool(_PLAIN_VALUE.fullmatch(value))
    return (bool(_KEYWORD.fullmatch(record[:8])) and record[8:10] == "= "
            and bool(_PLAIN_VALUE.fullmatch(record[10:])))


def _string_value(record: str) -> str | None:
    """The text of a plain card's string value (quotes doubled inside, trailing blanks dropped as astropy does)."""
    value = record[10:].lstrip()
    if not value.startswith("'"):
        return None
    end = 1
    while True:
        end = value.index("'", end)
        if value.startswith("''", end):
            end += 2
            continue
        return value[1:end].replace("''", "'").rstrip()


class _Hdu:
    """One HDU's place in the file and its cards."""

    __slots__ = ("cards", "data_bytes", "data_start", "index")

    def __init__(self, index: int, cards: list[str], data_start: int):
        self.index = index
        self.cards = cards
        self.data_start = data_start
        values = {_keyword(card): card[10:] for card in cards if card[8:10] == "= "}
        naxis = int(values.get("NAXIS", "0").split("/")[0])
        count = 0
        if naxis:
            count = 1
            for axis in range(1, naxis + 1):
                count *= int(values[f"NAXIS{axis}"].split("/")[0])
            extra, groups = (int(values.get(key, default).split("/")[0]) for key, default in (("PCOUNT", "0"),
                                                                                             ("GCOUNT", "1")))
            count = (count + extra) * groups
        self.data_bytes = abs(int(values["BITPIX"].split("/")[0])) // 8 * count

    def value(self, keyword: str) -> str | None:
        for card in self.cards:
            if _keyword(card) == keyword and card[8:10] == "= ":
                return card[10:].split("/")[0].strip()
        return None


class DayFrames:
    """The image HDUs of one day file, read one at a time; use as a context manager.

    Parameters
    ----------
    path : path-like
        A day file written by the clean stage.

    Raises
    ------
    TruncatedFramesFile
        When the file ends inside a header or an image, or holds fewer image HDUs than its primary's ``NFRAMES``.
    ValueError
        When it is no FITS file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close() / the with statement
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._hdus = self._scan()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> DayFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        """The number of image HDUs (the primary HDU not counted)."""
        return len(self._hdus) - 1

    def _truncated(self, what: str) -> TruncatedFramesFile:
        return TruncatedFramesFile(f"{self.path}: the cleaned frames file is cut short ({self._size} bytes): {what}")

    def _scan(self) -> list[_Hdu]:
        hdus: list[_Hdu] = []
        offset = 0
        while offset < self._size:
            cards = self._header_at(offset, len(hdus))
            data_start = offset + _BLOCK * -(-len(cards) * _CARD // _BLOCK)
            try:
                hdu = _Hdu(len(hdus), cards[:-1], data_start)
            except (KeyError, ValueError) as exc:  # no BITPIX, an axis that is no integer: not what clean writes
                raise ValueError(f"{self.path}: HDU {len(hdus)}'s header is unreadable ({exc!r})") from exc
            if data_start + hdu.data_bytes > self._size:
                raise self._truncated(f"HDU {hdu.index}'s image needs bytes {data_start} to "
                                      f"{data_start + hdu.data_bytes}")
            hdus.append(hdu)
            offset = data_start + _BLOCK * -(-hdu.data_bytes // _BLOCK)
        if not hdus:
            raise ValueError(f"{self.path}: empty file, no FITS HDU")
        expected = hdus[0].value("NFRAMES")
        if expected is not None and int(expected) > len(hdus) - 1:
            raise self._truncated(f"its primary HDU announces {int(expected)} frames (NFRAMES), it holds "
                                  f"{len(hdus) - 1}")
        return hdus

    def _header_at(self, offset: int, index: int) -> list[str]:
        """The 80-character records of the header starting at ``offset``, its END record last."""
        self._file.seek(offset)
        cards: list[str] = []
        while True:
            block = self._file.read(_BLOCK)
            if len(block) < _BLOCK:
                raise self._truncated(f"HDU {index}'s header from byte {offset} has no END card")
            if index == 0 and not cards and not block.startswith(b"SIMPLE  ="):
                raise ValueError(f"{self.path}: not a FITS file")
            text = block.decode("latin-1")
            for start in range(0, _BLOCK, _CARD):
                cards.append(text[start:start + _CARD])
                if cards[-1] == _END:
                    return cards

    def frame(self, hdu: int) -> tuple[np.ndarray, str, str | None]:
        """Image HDU ``hdu`` (1 for the first frame) as ``(float32 array, header text, BUNIT or None)``.

        Raises
        ------
        IndexError
            When the file holds no such HDU (:class:`TruncatedFramesFile` when ``NFRAMES`` says it should).
        """
        if not 1 <= hdu < len(self._hdus):
            raise IndexError(f"{self.path} has no image HDU {hdu} (it holds {len(self)})")
        entry = self._hdus[hdu]
        plain = all(_is_plain(card) for card in entry.cards) and not any(
            _keyword(card) == "CONTINUE" for card in entry.cards)
        self._file.seek(entry.data_start)
        raw = self._file.read(entry.data_bytes)
        if len(raw) < entry.data_bytes:  # shortened since it was opened
            raise self._truncated(f"HDU {hdu}'s image needs {entry.data_bytes} bytes from byte {entry.data_start}")
        if not plain:
            return self._astropy_frame(entry)
        if (entry.value("BITPIX") != "-32" or entry.value("NAXIS") != "2"
                or any(entry.value(key) is not None for key in ("BSCALE", "BZERO"))):
            return self._astropy_frame(entry)
        shape = (int(entry.value("NAXIS2")), int(entry.value("NAXIS1")))
        data = np.frombuffer(raw, dtype=">f4").reshape(shape).astype(np.float32)
        bunit = next((_string_value(card) for card in entry.cards if _keyword(card) == "BUNIT"), None)
        return data, "\n".join(entry.cards), bunit

    def _astropy_frame(self, entry: _Hdu) -> tuple[np.ndarray, str, str | None]:
        """The frame as astropy reads it: for cards it would rewrite, or images that are not plain float32."""
        import warnings

        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            with fits.open(self.path, memmap=False) as hdul:
                image = hdul[entry.index]
                data = np.asarray(image.data, dtype=np.float32)
                text = image.header.tostring(sep="\n", endcard=False, padding=False)
                bunit = image.header.get("BUNIT")
        return data, text, None if bunit is None else str(bunit)
