"""heliocube.frameio.read_frame: every fast path returns what astropy returns, and broken files raise ValueError."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.hdu.compressed.header import _bintable_header_to_image_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliocube.frameio import _image_header, _read_plain, _read_rice, blank_to_nan, read_frame
from heliocube.framewrite import write_frames


def _astropy(path: Path) -> tuple[np.ndarray, fits.Header]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            hdu = next(h for h in hdul if h.data is not None)
            return np.asarray(hdu.data), hdu.header


def _write_compressed(path: Path, image: np.ndarray, header: fits.Header | None = None, **options) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, header=header, **options)])
        hdul.writeto(path, overwrite=True)
    return path


def _assert_same_as_astropy(path: Path) -> np.ndarray:
    """read_frame's array, once BLANK is applied as astropy applies it, is astropy's; the headers are equal."""
    data, header = read_frame(path)
    assert data.dtype.isnative and data.flags.writeable
    expected, expected_header = _astropy(path)
    scaled = blank_to_nan(data, header)
    assert scaled.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(scaled, expected)  # NaN == NaN here
    assert list(header.items()) == list(expected_header.items())
    return data


def _aia_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """int16 like aia.lev1: a noisy disk with BLANK (-32768) pixels."""
    yy, xx = np.mgrid[:size, :size]
    disk = np.hypot(yy - size / 2, xx - size / 2) < size / 2.5
    image = np.where(disk, 800, 20) + rng.normal(0, 30, (size, size))
    image = np.clip(np.rint(image), -32767, 32767).astype(np.int16)
    image[rng.random((size, size)) < 0.01] = -32768
    return image


def test_jsoc_row_tiles_with_blank_decode_like_astropy(tmp_path):
    """JSOC's layout (RICE_1, one-row tiles, int16, BLANK) takes the fast path: the stored integers, which
    blank_to_nan turns into astropy's float32 with NaN."""
    image = _aia_like(np.random.default_rng(1), 256)
    header = fits.Header({"BLANK": -32768, "TELESCOP": "SDO/AIA", "WAVELNTH": 171, "CDELT1": 0.6})
    path = _write_compressed(tmp_path / "aia.fits", image, header, compression_type="RICE_1", tile_shape=(1, 256))
    assert _read_rice(path.read_bytes()) is not None  # the fast path handles it (not astropy's fallback)
    data = _assert_same_as_astropy(path)
    np.testing.assert_array_equal(data, image)  # integers as stored, BLANK included
    scaled = blank_to_nan(data, fits.getheader(path, 1))
    assert scaled.dtype == np.float32 and np.isnan(scaled).sum() == (image == -32768).sum() > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(st.integers(1, 70), st.integers(1, 90)),
    tile=st.tuples(st.integers(1, 40), st.integers(1, 100)),
    dtype=st.sampled_from([np.uint8, np.int16, np.int32]),
    spread=st.sampled_from([0, 3, 300, 70000]),
    seed=st.integers(0, 2**16),
)
def test_any_rice_tiling_decodes_like_astropy(tmp_path, shape, tile, dtype, spread, seed):
    """Any image shape, tile shape (edge tiles included), integer width and noise level."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(0, spread, shape) + (info.min + info.max) // 2, info.min, info.max).astype(dtype)
    path = tmp_path / f"rice_{seed}_{np.dtype(dtype).name}_{shape}_{tile}.fits"
    _write_compressed(path, image, compression_type="RICE_1", tile_shape=tile)
    assert _read_rice(path.read_bytes()) is not None
    np.testing.assert_array_equal(_assert_same_as_astropy(path), image)


def _table_header(path: Path) -> fits.Header:
    """The compressed image's table header as stored (what _read_rice parses)."""
    with fits.open(path, disable_image_compression=True) as hdul:
        return hdul[1].header.copy()


def _jsoc_header() -> fits.Header:
    header = fits.Header()
    header["BLANK"] = -32768
    for index in range(40):
        header[f"KEY{index}"] = (index * 1.5, f"comment {index}")
    header["DATE-OBS"] = "2012-01-01T00:00:00.34Z"
    header.add_history("level-1 processing")
    header.add_comment("JSOC export")
    header.add_history("second history line")
    return header


@pytest.mark.parametrize(
    "case",
    ["jsoc", "checksum", "checksum-after-default-extname", "stray-axes", "extname", "blank-card", "repeated-keyword",
     "primary-origin"],
)
def test_image_header_is_astropys(tmp_path, case):
    """The image header built from the table header equals astropy's conversion, card by card with comments,
    on JSOC-like headers and on the cases handed to astropy's conversion."""
    header = _jsoc_header()
    options = {"compression_type": "RICE_1", "tile_shape": (1, 32)}
    if case == "extname":
        options["name"] = "AIA_IMAGE"
    if case == "blank-card":
        header.append(fits.Card(), bottom=True)
        header["AFTER"] = 1
    if case == "repeated-keyword":
        header.append(fits.Card("KEY3", 9.0), useblanks=False, bottom=True)
    image = _aia_like(np.random.default_rng(3), 32)
    path = tmp_path / f"{case}.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu = fits.CompImageHDU(image, header=header, **options)
        if case == "primary-origin":  # a compressed primary image keeps ZSIMPLE
            hdu = fits.CompImageHDU(image, header=fits.PrimaryHDU(image, header=header).header, **options)
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, checksum=case == "checksum")
    table = _table_header(path)
    expected = _astropy(path)[1]
    if case == "checksum":  # cfitsio keeps the image's checksums in ZHECKSUM/ZDATASUM (astropy writes none)
        table["ZHECKSUM"] = ("9aQBAZQ99aQBAZQ9", "image HDU checksum")
        table["ZDATASUM"] = ("2738110474", "image data unit checksum")
        expected = _bintable_header_to_image_header(table.copy())
        assert expected["CHECKSUM"] == "9aQBAZQ99aQBAZQ9"
    if case == "checksum-after-default-extname":  # DATASUM goes where EXTNAME was the last keyword card
        del table["EXTNAME"]
        table.append(fits.Card("EXTNAME", "COMPRESSED_IMAGE"), bottom=True)
        table["ZDATASUM"] = ("12345", "image data unit checksum")
        expected = _bintable_header_to_image_header(table.copy())
    if case == "stray-axes":  # axis keywords the image does not have go, odd spellings stay (as in astropy)
        for key in ("NAXIS0", "NAXIS01", "NAXIS3"):
            table[key] = 5
        expected = _bintable_header_to_image_header(table.copy())
        assert "NAXIS3" not in expected and "NAXIS0" in expected
    built = _image_header(table)
    assert [(c.keyword, c.value, c.comment) for c in built.cards] == [
        (c.keyword, c.value, c.comment) for c in expected.cards
    ]
    assert _read_rice(path.read_bytes()) is not None
    _assert_same_as_astropy(path)


@pytest.mark.parametrize(
    ("image", "options"),
    [
        (np.arange(48 * 40, dtype=np.int16).reshape(48, 40), {"compression_type": "GZIP_1"}),
        (np.arange(48 * 40, dtype=np.int16).reshape(48, 40), {"compression_type": "HCOMPRESS_1"}),
        (np.linspace(0, 1, 48 * 40, dtype=np.float32).reshape(48, 40), {"compression_type": "RICE_1"}),  # quantised
    ],
    ids=["gzip", "hcompress", "quantised-float"],
)
def test_other_compressions_go_through_astropy(tmp_path, image, options):
    path = _write_compressed(tmp_path / "other.fits", image, **options)
    assert _read_rice(path.read_bytes()) is None
    _assert_same_as_astropy(path)


def test_scaled_rice_goes_through_astropy(tmp_path):
    """BZERO on a compressed image (unsigned 16-bit) is astropy's business."""
    image = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16
    path = _write_compressed(tmp_path / "uint16.fits", image, compression_type="RICE_1")
    assert _read_rice(path.read_bytes()) is None
    np.testing.assert_array_equal(_assert_same_as_astropy(path), image)


def test_plain_images_read_like_astropy(tmp_path):
    for dtype in (np.uint8, np.int16, np.int32, np.float32, np.float64):
        path = tmp_path / f"plain_{np.dtype(dtype).name}.fits"
        hdu = fits.PrimaryHDU(np.arange(30 * 20).reshape(30, 20).astype(dtype))
        if dtype in (np.int16, np.int32):
            hdu.header["BLANK"] = 7  # one pixel holds it
        hdu.writeto(path)
        assert _read_plain(path.read_bytes()) is not None
        data = _assert_same_as_astropy(path)
        assert data.dtype == dtype


def test_truncated_or_corrupt_rice_files_raise(tmp_path):
    image = _aia_like(np.random.default_rng(2), 128)
    path = _write_compressed(tmp_path / "aia.fits", image, compression_type="RICE_1", tile_shape=(1, 128))
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="unreadable FITS"):
        read_frame(truncated)
    corrupt = tmp_path / "corrupt.fits"  # the tile heap overwritten with ones: the Rice stream runs out
    info_offset = len(raw) - 2880
    corrupt.write_bytes(raw[:info_offset] + b"\xff" * 2880)
    with pytest.raises(ValueError, match="unreadable FITS"):
        read_frame(corrupt)
    empty = tmp_path / "empty.fits"
    fits.PrimaryHDU().writeto(empty)
    with pytest.raises(ValueError, match="no HDU holds image data"):
        read_frame(empty)


def test_written_frames_read_back_verified_by_astropy_and_sunpy(tmp_path):
    """write_frames: astropy verifies the file strictly, data and cards come back, sunpy makes one map per frame."""
    import sunpy.map

    rng = np.random.default_rng(3)
    primary = fits.Header({"HC_PROD": "EIT195", "NFRAMES": 2})
    frames = []
    for i in range(2):
        data = rng.normal(100, 10, (32, 32)).astype(np.float32)
        data[0, i] = np.nan
        header = fits.Header({"SIMPLE": True, "BITPIX": 16, "NAXIS": 2, "NAXIS1": 1024, "NAXIS2": 1024,
                              "EXTNAME": f"SLOT_{i}", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec",
                              "CUNIT2": "arcsec", "CDELT1": 2.6, "CDELT2": 2.6, "CRPIX1": 16.5, "CRPIX2": 16.5,
                              "CRVAL1": 0.0, "CRVAL2": 0.0, "DATE-OBS": "2010-10-15T00:00:00",
                              "HC_SHA": "a" * 64})  # fmt: skip
        header["HISTORY"] = "heliocube resize: mean 1024x1024 -> 32x32"
        header["LONGSTR"] = "x" * 100  # a CONTINUE card
        frames.append((data, header))
    path = tmp_path / "day.fits"
    write_frames(path, primary, frames)
    assert path.stat().st_size % 2880 == 0
    with fits.open(path) as hdul:
        hdul.verify("exception")
        assert len(hdul) == 3 and hdul[0].header["NFRAMES"] == 2 and hdul[0].data is None
        for hdu, (data, header) in zip(hdul[1:], frames, strict=True):
            np.testing.assert_array_equal(hdu.data, data)
            assert hdu.header["BITPIX"] == -32 and hdu.header["NAXIS1"] == 32 and hdu.header["XTENSION"] == "IMAGE"
            assert hdu.name == header["EXTNAME"] and hdu.header["LONGSTR"] == "x" * 100
            assert hdu.header["HISTORY"][0] == header["HISTORY"][0] and hdu.header["HC_SHA"] == "a" * 64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = sunpy.map.Map(path)
    assert len(maps) == 2 and maps[1].data.shape == (32, 32)
    with pytest.raises(ValueError, match="2-D array"):
        write_frames(tmp_path / "bad.fits", primary, [(np.zeros((2, 2, 2), np.float32), fits.Header())])


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parent / "data" / "lasco").glob("*.fts.gz")))
def test_real_headers_survive_a_write_card_for_card(tmp_path, name):
    """Real LASCO files: every card of the cleaned header (raw cards verbatim, changed ones re-formatted) reads back
    with the same keyword, value and comment."""
    from heliocube.resize import resize_frame

    data, header = read_frame(Path(__file__).parent / "data" / "lasco" / name)
    frame, header = resize_frame(data, header, data.shape[0] // 4, "mean")
    header["HC_SHA"] = "0" * 64
    path = tmp_path / "out.fits"
    write_frames(path, fits.Header({"NFRAMES": 1}), [(frame, header)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            back = hdul[1].header
            np.testing.assert_array_equal(hdul[1].data, frame)
    skipped = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT"}
    expected = [(c.keyword, c.value, c.comment) for c in header.cards if c.keyword not in skipped]
    got = [(c.keyword, c.value, c.comment) for c in back.cards if c.keyword not in skipped]
    assert got == expected and back["NAXIS1"] == frame.shape[1] and back["BITPIX"] == -32


@pytest.mark.parametrize(
    "dtype, bscale, bzero, blank",
    [
        (np.int16, 9.91821e-14, 3.2501e-09, -32768),  # level-1 LASCO's layout
        (np.int16, 0.5, 0, None),
        (np.int16, 2.0, -7.25, 0),  # a BLANK of 0 is not applied (astropy tests it for truth)
        (np.int32, 1e-3, 12.5, -2147483647),
    ],
)
@pytest.mark.parametrize("shape", [(40, 30), (701, 300)])  # one band of rows, several and a partial one
def test_scaled_integer_images_read_like_astropy(tmp_path, dtype, bscale, bzero, blank, shape):
    """BSCALE != 1 makes astropy return floats: the fast path scales as it does, bit for bit, header included."""
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    stored = rng.integers(info.min // 2, info.max // 2, shape).astype(dtype)
    stored[::7, ::5] = 0
    header = fits.Header()
    header["BSCALE"], header["BZERO"] = bscale, bzero
    if blank is not None:
        header["BLANK"] = blank
        stored[3, 4] = stored[10, 0] = blank
    path = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU(stored, header=header)
    hdu.header["BSCALE"], hdu.header["BZERO"] = bscale, bzero  # astropy's writer would rescale data given floats
    hdu.writeto(path, output_verify="ignore")
    assert _read_plain(path.read_bytes()) is not None
    data = _assert_same_as_astropy(path)
    assert data.dtype == (np.float32 if dtype == np.int16 else np.float64)
    assert np.isnan(data).sum() == (2 if blank else 0)


def test_real_level1_lasco_reads_like_astropy(tmp_path):
    path = tmp_path / "level1.fts"
    path.write_bytes(gzip.decompress((Path(__file__).parent / "data" / "lasco" /
                                      "comet_96p_level1_35082085.fts.gz").read_bytes()))
    assert _read_plain(path.read_bytes()) is not None
    assert _assert_same_as_astropy(path).dtype == np.float32


def test_blank_of_scaled_data_is_astropys_business(tmp_path):
    """BLANK names a stored value: on data astropy scaled (BZERO) it already became NaN, never a second time."""
    stored = np.array([[-1, 0], [5, -32768]], dtype=np.int16)
    path = tmp_path / "unsigned.fits"
    hdu = fits.PrimaryHDU(stored)
    hdu.header["BZERO"], hdu.header["BLANK"] = 32768, 32767
    hdu.writeto(path)
    data, header = read_frame(path)
    assert data.dtype.kind in "iuf" and blank_to_nan(data, header) is data


def test_a_lone_image_is_a_verified_primary_hdu(tmp_path):
    """write_image: the per-frame file of the prior tool's layout, written like a day file's extension."""
    from heliocube.framewrite import write_image

    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    header = fits.Header({"XTENSION": "IMAGE", "EXTNAME": "SLOT_20101015T000000", "CDELT1": 2.5, "HC_SHA": "a" * 64})
    path = tmp_path / "one.fits"
    write_image(path, data, header)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        assert len(hdul) == 1 and hdul[0].header["NAXIS1"] == 4 and hdul[0].header["CDELT1"] == 2.5
        assert "EXTNAME" not in hdul[0].header and "XTENSION" not in hdul[0].header
        np.testing.assert_array_equal(hdul[0].data, data)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int32])
@pytest.mark.parametrize("where", ["type-min", "type-max", "inside"])
def test_blank_to_nan_finds_blank_wherever_it_sits_in_the_range(dtype, where):
    """BLANK at the type's minimum (JSOC's -32768) or maximum is found by one min()/max() pass, any other value by
    comparison; a frame without BLANK pixels comes back as it is."""
    info = np.iinfo(dtype)
    blank = {"type-min": info.min, "type-max": info.max, "inside": 7}[where]
    data = np.arange(40 * 30).reshape(40, 30).astype(dtype) % 100 + 10  # 10..109: no BLANK pixel
    header = fits.Header({"BLANK": int(blank)})
    assert blank_to_nan(data, header) is data
    data[3, 4] = data[20, 1] = blank
    out = blank_to_nan(data, header)
    assert np.isnan(out).sum() == 2 and np.isnan(out[3, 4]) and np.isnan(out[20, 1])
    np.testing.assert_array_equal(out[~np.isnan(out)], data[data != blank])


def test_compression_settings_are_read_as_astropy_reads_them():
    """The first ZNAMEn that names a setting, in any case, gives its ZVALn (later repeats do not count)."""
    from heliocube.frameio import _compression_setting

    table = fits.Header([("ZNAME1", "blocksize"), ("ZVAL1", 16), ("ZNAME2", "BYTEPIX"), ("ZVAL2", 2),
                         ("ZNAME3", "BLOCKSIZE"), ("ZVAL3", 32)])  # fmt: skip
    assert _compression_setting(table, "BLOCKSIZE", 32) == 16
    assert _compression_setting(table, "BYTEPIX", 4) == 2
    assert _compression_setting(fits.Header(), "BLOCKSIZE", 32) == 32


def test_tiles_beyond_the_tables_heap_are_refused(tmp_path):
    """PCOUNT bounds the heap: a tile said to lie past it (here PCOUNT 0) is an error, as in astropy, never
    bytes read from whatever follows."""
    image = _aia_like(np.random.default_rng(4), 64)
    path = _write_compressed(tmp_path / "aia.fits", image, compression_type="RICE_1", tile_shape=(1, 64))
    raw = bytearray(path.read_bytes())
    card = raw.index(b"PCOUNT  =", 2880)
    raw[card : card + 80] = fits.Card("PCOUNT", 0, "number of group parameters").image.encode()
    broken = tmp_path / "pcount0.fits"
    broken.write_bytes(bytes(raw))
    with pytest.raises(Exception):  # noqa: B017 - astropy raises its own kind
        _astropy(broken)
    with pytest.raises(ValueError, match="unreadable FITS"):
        read_frame(broken)


@pytest.mark.parametrize("blank", [1.5, -32768.0, "abc", True])
def test_a_blank_that_is_no_integer_is_ignored(blank):
    """astropy ignores a BLANK that is no integer (with a warning); so does stored_blank, rather than failing or
    rounding 1.5 onto real pixels (bool is an int to astropy too)."""
    from heliocube.frameio import stored_blank

    data = np.array([[1, 2], [-32768, 1]], dtype=np.int16)
    header = fits.Header({"BLANK": blank})
    expected = 1 if blank is True else None
    assert stored_blank(data, header) == expected
    if expected is None:
        assert blank_to_nan(data, header) is data


def test_a_decoded_frame_someone_holds_is_never_decoded_into_again(tmp_path, monkeypatch):
    """Large decodes reuse their thread's last array (no 32 MiB of fresh pages per AIA frame), but only once
    nothing holds it: a frame the caller keeps, or a view of it, stays as decoded."""
    monkeypatch.setattr("heliocube.frameio._REUSED_BYTES", 0)  # every decode large enough, on small files
    rng = np.random.default_rng(3)
    images = [_aia_like(rng, 64) for _ in range(3)]
    paths = [_write_compressed(tmp_path / f"{i}.fits", image, compression_type="RICE_1", tile_shape=(1, 64))
             for i, image in enumerate(images)]
    first, _ = read_frame(paths[0])
    second, _ = read_frame(paths[1])  # the first is held: a new array
    view = second[5:9]
    del second
    third, _ = read_frame(paths[2])  # the second is held through a view: a new array again
    np.testing.assert_array_equal(first, images[0])
    np.testing.assert_array_equal(view, images[1][5:9])
    np.testing.assert_array_equal(third, images[2])
    address = third.__array_interface__["data"][0]
    del third
    again, _ = read_frame(paths[0])  # nothing holds the third: its array is reused
    assert again.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(again, images[0])
