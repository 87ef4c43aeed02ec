"""The cube job on cleaned frames: the header text astropy would give, without importing astropy or pandas; a day
file cut short or a full disk ends it with one message naming the file and the cause, and leaves no cube."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
from astropy.io import fits

from heliocube.assemble import build_year_cube
from heliocube.clean import clean_days, day_frames_path
from heliocube.dayframes import DayFrames
from heliocube.framewrite import write_frames

from .test_clean import DAY, MEAN_32, fetched  # noqa: F401 - fetched is a fixture
from .test_job_log import tiny_disk  # noqa: F401 - a fixture

OPTIONS = {"compression": "gzip", "compression_level": 4, "shuffle": True}


@pytest.fixture
def cleaned(fetched, tmp_path):  # noqa: F811 - the fixture imported above
    """A day of EIT195 cleaned frames and its index CSV."""
    config, slots = fetched
    root = config["output_root"]
    index, _ = clean_days("EIT195", MEAN_32, [DAY], slots["EIT195"], root, anchor=DAY)
    index_path = tmp_path / "2010-10.index.csv"
    index.to_csv(index_path, index=False)
    return root, index_path, day_frames_path(root, MEAN_32.name, "EIT195", DAY)


def _astropy_headers(path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False) as hdul:
            return [hdu.header.tostring(sep="\n", endcard=False, padding=False) for hdu in hdul[1:]]


def test_the_cube_job_imports_neither_pandas_nor_astropy_and_stores_astropys_header_text(cleaned, tmp_path):
    root, index_path, day_file = cleaned
    cube = tmp_path / "2010.h5"
    code = (f"import json, sys\nfrom heliocube.assemble import build_year_cube\n"
            f"n = build_year_cube([{str(index_path)!r}], {str(root)!r}, {str(cube)!r}, frame_size=32, units='DN', "
            f"attrs={{}}, compression={OPTIONS!r})\n"
            "print(json.dumps([n, sorted(m for m in ('pandas', 'astropy', 'astropy.io.fits', 'sunpy', 'scipy') "
            "if m in sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    n, heavy = json.loads(result.stdout.splitlines()[-1])
    assert n == 4 and heavy == []
    with h5py.File(cube, "r") as f, fits.open(day_file) as hdul:
        assert f["headers"].asstr()[()].tolist() == _astropy_headers(day_file)
        for i in range(n):
            np.testing.assert_array_equal(f["data"][i], hdul[i + 1].data)
        assert f.attrs["units"] == hdul[1].header.get("BUNIT", "DN")


def test_day_frames_give_astropys_header_text_for_cards_astropy_rewrites(tmp_path):
    """Cards astropy's verification rewrites (lowercase keyword, lowercase exponent, no blank after '=', long
    strings) go through astropy; plain ones are read as they are; both give astropy's text."""
    raw = ["bunit   = 'DN/s'   / lower case", "EXPTIME =              2.5e+00 / lower-case e",
           "WAVELNTH=                  171", "HIERARCH N_MISSING  =         1.5e3 / lower-case e again"]
    headers = [[("BUNIT", "O'Brien  ", "unit"), ("COMMENT", "a comment"), ("HISTORY", "hist"), ("", "blank")],
               [("LONGSTR", "x" * 100)], [("NEG", -1.5e-300), ("I", 12345678901234), ("T", True), ("E", "")],
               [fits.Card.fromstring("HIERARCH N_MISSING_BLOCKS = 0 / missing 32x32 telemetry blocks")],
               *[[fits.Card.fromstring(card)] for card in raw]]
    rng = np.random.default_rng(0)
    frames = [(rng.random((8, 8), dtype=np.float32), fits.Header(cards)) for cards in headers]
    path = tmp_path / "day.fits"
    write_frames(path, fits.Header([("NFRAMES", len(frames))]), frames)
    expected = _astropy_headers(path)
    with DayFrames(path) as day, fits.open(path) as hdul:
        assert len(day) == len(frames)
        for i in range(1, len(frames) + 1):
            data, text, bunit = day.frame(i)
            assert text == expected[i - 1]
            np.testing.assert_array_equal(data, hdul[i].data)
            assert bunit == hdul[i].header.get("BUNIT")


@pytest.mark.parametrize("cut", ["inside a frame", "between frames"])
def test_a_day_file_cut_short_stops_the_cube_naming_the_file(cleaned, tmp_path, cut):
    root, index_path, day_file = cleaned
    with fits.open(day_file) as hdul:  # where the last frame's header and data start
        last = hdul.fileinfo(len(hdul) - 1)
    with open(day_file, "r+b") as stream:
        stream.truncate(last["datLoc"] + 100 if cut == "inside a frame" else last["hdrLoc"])
    cube = tmp_path / "cubes" / "2010.h5"
    with pytest.raises(ValueError, match="cut short") as failure:
        build_year_cube([index_path], root, cube, frame_size=32, units="DN", attrs={}, compression=OPTIONS)
    message = str(failure.value)
    assert str(day_file) in message and f"heliocube verify {root} --repair" in message
    assert not cube.exists() and list(cube.parent.iterdir()) == []


def test_a_full_disk_stops_the_cube_writer_with_one_message_and_no_partial_file(tiny_disk):  # noqa: F811
    cube = tiny_disk / "cubes" / "2010.h5"
    code = ("import numpy as np\nfrom heliocube.cube import CubeWriter\n"
            f"with CubeWriter({str(cube)!r}, (64, 64), compression=None) as writer:\n"
            "    for i in range(400):\n"
            "        writer.append(np.full((64, 64), i, np.float32), {'slot_time': str(i), 'x': 1.0}, 'H' * 800)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr[-2000:]  # an exception, not a crash
    assert result.stderr.count("Traceback") == 1  # not h5py's hundred cleanup tracebacks
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("OSError: [Errno 28] No space left on device while writing the cube") and str(cube) in last
    assert os.listdir(cube.parent) == []  # neither the cube, nor its partial file, nor a times CSV
