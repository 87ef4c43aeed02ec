"""The header layouts checked against sunpy, remembered across processes (heliocube.qc.layouts).

A fetch job checks the closed-form disk geometry against a sunpy map on the first header of each layout; with a
:class:`LayoutStore` a later process of the same installation trusts that check and imports no sunpy for the layout
(importing sunpy.map costs ~1.6-1.9 s CPU: bench/bench_aia_year.py). A store entry of another installation, or one
that does not read back whole, is checked again; a store that cannot be written fails nothing.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive.mission import SyntheticMission
from heliocube.qc import closed_form, geometry, layouts
from heliocube.qc.gate import qc_code_digest
from heliocube.qc.layouts import UNKNOWN, LayoutStore, card_images, header_layout

REPO = Path(__file__).resolve().parent.parent
SIZE = 64
LASCO_REAL = REPO / "tests" / "data" / "lasco" / "planet_22321894.fts.gz"
#: one process: the geometry of a file's header with a store, and which sunpy modules that imported
PROBE = """import json, sys
from astropy.io import fits
from heliocube.qc.geometry import disk_geometry
from heliocube.qc.layouts import LayoutStore
header = fits.getheader(sys.argv[1])
geo = disk_geometry(header, (header["NAXIS2"], header["NAXIS1"]), LayoutStore(sys.argv[2]))
print(json.dumps({"geo": [geo.cx, geo.cy, geo.rsun_px, geo.source],
                  "sunpy": sorted(m for m in sys.modules if m.partition(".")[0] == "sunpy")}))
"""


def _frame(tmp_path: Path, product: str, level: str, day: str = "2012-01-01") -> Path:
    mission = SyntheticMission(seed=0, frame_size=SIZE)
    record = mission.records(product, day, pd.Timestamp(day) + pd.Timedelta(hours=6), level=level)["record_id"][0]
    path = tmp_path / f"{product}-{level}.fits"
    path.write_bytes(mission.render_fits(product, record, level=level))
    return path


def _probe(path: Path, store: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, str(path), str(store)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def fresh(monkeypatch):
    """This process as if it had checked no layout and computed no geometry yet; the list counts the headers the
    real sunpy check (geometry._sunpy_geometry) is run on."""
    monkeypatch.setattr(layouts, "_LAYOUTS", {})
    monkeypatch.setattr(geometry, "_CACHE", collections.OrderedDict())
    checks: list[str] = []
    check = geometry._sunpy_geometry

    def counted(header):
        checks.append(header.get("INSTRUME", ""))
        return check(header)

    monkeypatch.setattr(geometry, "_sunpy_geometry", counted)
    return checks


def _geometry(path: Path, store: LayoutStore | None):
    header = fits.getheader(path)
    return geometry.disk_geometry(header, (header["NAXIS2"], header["NAXIS1"]), store)


@pytest.mark.parametrize(
    ("frame", "unloaded"), [("synthetic AIA171", "sunpy"), ("real LASCO C2 level 0.5", "sunpy.map")]
)
def test_a_second_process_trusts_the_stored_check_and_imports_no_sunpy(tmp_path, frame, unloaded):
    """The first process checks the layout with a sunpy map; the second, with the same store, imports no sunpy (a
    level-0.5 LASCO header, whose radius sunpy takes from the Earth's distance at its date, still needs
    sunpy.coordinates for that distance, not sunpy.map) and gets the closed form's answer, the one every later
    header of the layout gets in the first process, within 1e-6 px of sunpy's."""
    path = LASCO_REAL if frame.startswith("real") else _frame(tmp_path, "AIA171", "1")
    store = tmp_path / "store"
    first, second = _probe(path, store), _probe(path, store)
    assert "sunpy.map" in first["sunpy"]  # checked with a sunpy map
    assert first["geo"] == second["geo"]  # the checked header gets the closed form's numbers too
    assert len(list(store.glob("*.json"))) == 1
    assert second["geo"][3] == "wcs"
    assert not [m for m in second["sunpy"] if m == unloaded or m.startswith(unloaded + ".")]
    header = fits.getheader(path)
    rule = json.loads(next(store.glob("*.json")).read_text())["rule"]
    assert tuple(second["geo"][:3]) == closed_form.wcs_disk(header, rule)  # the same numbers as the closed form's
    assert second["geo"][:3] == pytest.approx(first["geo"][:3], abs=1e-6)


def test_the_key_holds_the_installation(tmp_path, fresh):
    """An entry is keyed by the sunpy and astropy versions and the QC's code digest: another value of any of
    them checks the layout with sunpy again."""
    assert LayoutStore(tmp_path).installation == {"sunpy": importlib.metadata.version("sunpy"),
                                                  "astropy": importlib.metadata.version("astropy"),
                                                  "code": qc_code_digest()}  # fmt: skip
    path = _frame(tmp_path, "AIA171", "1")
    layout = header_layout(card_images(fits.getheader(path)))
    base = {"sunpy": "7.0.0", "astropy": "8.0.0", "code": "a" * 64}
    assert _geometry(path, LayoutStore(tmp_path / "s", base)).source == "wcs" and len(fresh) == 1
    assert LayoutStore(tmp_path / "s", base).get(layout) == "RSUN_OBS"
    for changed in ({"sunpy": "7.0.1"}, {"astropy": "8.0.1"}, {"code": "b" * 64}):
        other = LayoutStore(tmp_path / "s", {**base, **changed})
        assert other.get(layout) is UNKNOWN
        layouts._LAYOUTS.clear()
        geometry._CACHE.clear()
        checks = len(fresh)
        assert _geometry(path, other).source == "wcs" and len(fresh) == checks + 1  # checked again
        layouts._LAYOUTS.clear()
        geometry._CACHE.clear()
        assert _geometry(path, other).source == "wcs" and len(fresh) == checks + 1  # now checked for it too


@pytest.mark.parametrize("damage", ["truncated", "not json", "not utf-8", "another rule", "another layout",
                                    "a list", "a directory"])  # fmt: skip
def test_a_damaged_entry_is_checked_again(tmp_path, fresh, damage):
    path = _frame(tmp_path, "AIA171", "1")
    store = LayoutStore(tmp_path / "store")
    layout = header_layout(card_images(fits.getheader(path)))
    assert _geometry(path, store).source == "wcs" and len(fresh) == 1
    (entry,) = (tmp_path / "store").glob("*.json")
    good = entry.read_text()
    stored = json.loads(good)
    if damage == "a directory":
        entry.unlink()
        entry.mkdir()
    else:
        entry.write_bytes({
            "truncated": good[: len(good) // 2].encode(),
            "not json": b"RSUN_OBS",
            "not utf-8": b"\xff\xfe{}",
            "another rule": json.dumps({**stored, "rule": "CDELT1"}).encode(),
            "another layout": json.dumps({**stored, "key": {**stored["key"], "layout": [[], [], []]}}).encode(),
            "a list": json.dumps([stored]).encode(),
        }[damage])  # fmt: skip
    assert store.get(layout) is UNKNOWN
    layouts._LAYOUTS.clear()
    geometry._CACHE.clear()
    assert _geometry(path, store).source == "wcs" and len(fresh) == 2  # checked with sunpy again
    if damage != "a directory":  # rewritten whole by the new check
        assert entry.read_text() == good


@pytest.mark.parametrize("how", ["a file in the way", "a read-only directory"])
def test_a_store_that_cannot_be_written_fails_nothing(tmp_path, fresh, caplog, request, how):
    path = _frame(tmp_path, "AIA171", "1")
    if how == "a file in the way":
        (tmp_path / "ro").write_text("")
        directory = tmp_path / "ro" / "store"
    else:
        directory = tmp_path / "ro"
        directory.mkdir()
        if os.geteuid() == 0:  # root writes through permissions: a read-only file system, as a cluster may mount
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)],
                                     capture_output=True, text=True, check=False)
            if mounted.returncode:
                (pytest.fail if os.environ.get("HELIOCUBE_REQUIRE_TMPFS") else pytest.skip)(
                    f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
            request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(directory)], check=False))
        else:
            directory.chmod(0o555)
    store = LayoutStore(directory)
    reference = geometry._sunpy_geometry(fits.getheader(path))
    got = _geometry(path, store)
    assert got.source == "wcs" and (got.cx, got.cy) == pytest.approx((reference.cx, reference.cy), abs=1e-6)
    header = fits.getheader(path)
    header["CRPIX1"] += 0.5  # another pointing of the layout: the closed form, as without a store
    assert geometry.disk_geometry(header, (SIZE, SIZE), store).source == "wcs"
    assert not store.put(header_layout(card_images(header)), "RSUN_OBS")
    assert [r.levelname for r in caplog.records if r.name == layouts.__name__] == ["WARNING"]  # once
