"""heliocube.rice: the compiled Rice decoder gives cfitsio's pixels (astropy's copy of ricecomp.c) on every stream
cfitsio writes, and raises on streams that end too early."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io.fits.hdu.compressed._codecs import Rice1  # astropy's binding of cfitsio's ricecomp.c
from astropy.io.fits.hdu.compressed._compression import decompress_rice_1_c
from hypothesis import given, settings
from hypothesis import strategies as st

from heliocube.rice import decode_tiles

DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


def _heap(streams: list[bytes], pad: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One buffer holding the streams back to back after ``pad`` bytes, and their lengths and offsets."""
    lengths = np.array([len(s) for s in streams], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.frombuffer(b"\xaa" * pad + b"".join(streams) + b"\xaa" * 16, dtype=np.uint8), lengths, offsets


def _roundtrip(image: np.ndarray, tile: tuple[int, int], blocksize: int = 32) -> np.ndarray:
    """Encode ``image`` tile by tile with cfitsio's encoder, decode with :func:`decode_tiles`; the decoded image."""
    bytepix = image.dtype.itemsize
    ny, nx = image.shape
    streams = []
    for y0 in range(0, ny, tile[0]):
        for x0 in range(0, nx, tile[1]):
            part = np.ascontiguousarray(image[y0 : y0 + tile[0], x0 : x0 + tile[1]])
            codec = Rice1(blocksize=blocksize, bytepix=bytepix, tilesize=part.size)
            stream = codec.encode(part.view(f"i{bytepix}"))
            reference = codec.decode(np.frombuffer(stream, np.uint8)).view(image.dtype).reshape(part.shape)
            np.testing.assert_array_equal(reference, part)  # cfitsio round-trips it
            streams.append(stream)
    buf, lengths, offsets = _heap(streams, pad=7)
    out = np.empty_like(image)
    decode_tiles(buf, 7, lengths, offsets, out, tile, blocksize)
    return out


@pytest.mark.parametrize("bytepix", [1, 2, 4])
@pytest.mark.parametrize(
    "kind", ["constant", "full-range noise", "sparse spikes", "wrapping steps", "smooth ramp", "mixed blocks"]
)
def test_every_kind_of_block_decodes_like_cfitsio(bytepix, kind):
    """Zero blocks (constant), raw blocks (full-range noise), long runs of zeros (rare large differences in quiet
    blocks), differences that wrap the pixel width, and the ordinary coded blocks."""
    dtype = DTYPES[bytepix]
    info = np.iinfo(dtype)
    rng = np.random.default_rng(bytepix)
    shape = (24, 300)
    if kind == "constant":
        image = np.full(shape, info.max // 3, dtype=dtype)
    elif kind == "full-range noise":
        image = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
    elif kind == "sparse spikes":  # a quiet block with one big difference: a run of zeros of hundreds of bits
        image = np.full(shape, 5, dtype=dtype)
        image.flat[rng.choice(image.size, 40, replace=False)] = info.max - 3
        image.flat[rng.choice(image.size, 40, replace=False)] = max(info.min, -1000)
    elif kind == "wrapping steps":
        image = np.where(np.indices(shape).sum(axis=0) % 2, info.min, info.max).astype(dtype)
    elif kind == "smooth ramp":
        image = (np.arange(np.prod(shape)) % 97 + info.max // 2 - 50).astype(dtype).reshape(shape)
    else:
        image = np.clip(rng.normal(100, rng.choice([0, 2, 50, 3000], size=shape), shape), info.min, info.max)
        image = image.astype(dtype)
    for tile in ((1, shape[1]), (5, 37), shape):
        np.testing.assert_array_equal(_roundtrip(image, tile), image, err_msg=str(tile))


@settings(max_examples=60, deadline=None)
@given(
    bytepix=st.sampled_from([1, 2, 4]),
    blocksize=st.sampled_from([16, 32]),
    n=st.integers(1, 700),
    spread=st.sampled_from([0, 1, 4, 300, 70000, 2**31]),
    spikes=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_any_stream_decodes_like_cfitsio(bytepix, blocksize, n, spread, spikes, seed):
    dtype = DTYPES[bytepix]
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    line = np.clip(rng.normal(0, spread, n) + (int(info.min) + int(info.max)) // 2, info.min, info.max)
    line = line.astype(dtype)
    line[rng.integers(0, n, spikes)] = info.max
    image = line.reshape(1, n)
    np.testing.assert_array_equal(_roundtrip(image, (1, n), blocksize), image)


@pytest.mark.parametrize("bytepix", [1, 2, 4])
def test_streams_that_end_too_early_raise(bytepix):
    dtype = DTYPES[bytepix]
    image = np.random.default_rng(0).integers(0, 100, (1, 500)).astype(dtype)
    stream = Rice1(blocksize=32, bytepix=bytepix, tilesize=500).encode(image.view(f"i{bytepix}"))
    for cut in (0, bytepix - 1, len(stream) // 2):
        buf, lengths, offsets = _heap([stream[:cut] if cut else b""])
        lengths[:] = max(cut, 0)
        with pytest.raises(ValueError, match="Rice tile 0"):
            decode_tiles(buf, 0, lengths, offsets, np.empty_like(image), (1, 500), 32)


@settings(max_examples=300, deadline=None)
@given(
    junk=st.binary(min_size=1, max_size=200),
    n=st.integers(1, 300),
    bytepix=st.sampled_from([1, 2, 4]),
    blocksize=st.sampled_from([16, 32]),
)
def test_any_bytes_decode_or_fail_as_cfitsio_does(junk, n, bytepix, blocksize):
    """Random bytes as a tile: where cfitsio (astropy's binding) decodes them, the same pixels; where it fails
    (stream too short, unused bytes left), a ValueError. One deliberate difference: a 32-bit block whose fs field
    says 26-30 (no encoder writes one; cfitsio decodes garbage) is refused."""
    try:
        reference = np.frombuffer(decompress_rice_1_c(junk, blocksize, bytepix, n), dtype=f"i{bytepix}")
    except Exception:  # astropy raises what cfitsio reports
        reference = None
    buf, lengths, offsets = _heap([junk])
    out = np.empty((1, n), dtype=DTYPES[bytepix])
    try:
        decode_tiles(buf, 0, lengths, offsets, out, (1, n), blocksize)
    except ValueError as exc:
        assert reference is None or "fs is above" in str(exc), exc
        return
    assert reference is not None
    np.testing.assert_array_equal(out.reshape(-1), reference.view(out.dtype))


def test_streams_cfitsio_refuses_are_refused():
    image = np.arange(200, dtype=np.int16).reshape(1, 200) * 7
    stream = Rice1(blocksize=32, bytepix=2, tilesize=200).encode(image)
    buf, lengths, offsets = _heap([stream + b"\x00\x01"])  # two bytes the pixels do not use
    with pytest.raises(ValueError, match="unused bytes"):
        decode_tiles(buf, 0, lengths, offsets, np.empty_like(image), (1, 200), 32)
    fs30 = bytes([0, 0, 0, 0, 0b11111111, 0xFF, 0xFF, 0xFF, 0xFF])  # 32-bit first pixel, then fs + 1 = 31
    buf, lengths, offsets = _heap([fs30])
    with pytest.raises(ValueError, match="fs is above"):
        decode_tiles(buf, 0, lengths, offsets, np.empty((1, 1), dtype=np.int32), (1, 1), 32)


def test_a_tile_larger_than_the_image_decodes_without_allocating_the_tile():
    image = np.random.default_rng(1).integers(0, 500, (4, 10)).astype(np.int16)
    stream = Rice1(blocksize=32, bytepix=2, tilesize=40).encode(image)
    buf, lengths, offsets = _heap([stream])
    out = np.empty_like(image)
    decode_tiles(buf, 0, lengths, offsets, out, (10**5, 10**5), 32)  # 10**10 pixels if the tile were allocated
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"heap": 10_000}, "outside the buffer"),
        ({"offsets": np.array([0, 4, 8, -4])}, "outside the buffer"),
        ({"offsets": np.array([0, 4, 8, 2**63 - 100])}, "outside the buffer"),  # offset + length overflows
        ({"lengths": np.array([4, 4, 4]), "offsets": np.array([0, 4, 8])}, "3 Rice tiles"),
        ({"blocksize": 0}, "must be positive"),  # would loop for ever
        ({"tile": (0, 10)}, "must be positive"),
        ({"out": np.zeros((4, 10), dtype=np.float32)}, "must be integer"),
        ({"out": np.zeros((10, 4), dtype=np.int16).T}, "C-contiguous"),
    ],
    ids=["heap", "negative-offset", "overflowing-offset", "tile-count", "blocksize", "tile", "dtype", "layout"],
)
def test_arguments_a_broken_header_could_get_wrong_are_refused(change, match):
    """The compiled loop has no bounds checks: tiles outside the buffer, a tile count that does not match the
    image, a zero block size or tile edge, a non-integer or non-contiguous output are refused before it runs."""
    image = np.zeros((4, 10), dtype=np.int16)
    stream = Rice1(blocksize=32, bytepix=2, tilesize=10).encode(image[0])
    buf, lengths, offsets = _heap([stream] * 4)
    args = {"heap": 0, "lengths": lengths, "offsets": offsets, "out": image.copy(), "tile": (1, 10), "blocksize": 32}
    decode_tiles(buf, *args.values())  # the valid call
    args |= change
    with pytest.raises(ValueError, match=match):
        decode_tiles(buf, *args.values())
