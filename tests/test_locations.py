"""Archive-relative locations: bad manifest rows become ledger rows, and a moved archive fetches the same files."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from heliocube.archive.server import ArchiveServer
from heliocube.fetch import fetch_days
from heliocube.locations import ForeignLocation, UnsafeLocation, archive_location, archive_url
from heliocube.manifest import read_manifest, write_manifest
from heliocube.paths import manifest_path
from heliocube.query import write_day_manifests

from .conftest import make_context

DAY = dt.date(2010, 10, 15)
GRID = {"cadence": dt.timedelta(hours=6), "tolerance": dt.timedelta(hours=3), "anchor": DAY}
LISTED = [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]


def query(name, server, root):
    _, context = make_context(server, root, products=[name])
    write_day_manifests(name, LISTED, context, root, Path(root) / f"{name}.index.csv")
    return context


def fetch(name, server, root):
    _, context = make_context(server, root, products=[name])
    return fetch_days(name, [DAY], context, root, **GRID)


BASE = "http://127.0.0.1:8769/sdac/"


@pytest.mark.parametrize(("url", "location"), [
    ("eit/lz/2010/10/efz20101015.000012", "eit/lz/2010/10/efz20101015.000012"),
    ("http://127.0.0.1:8769/sdac/eit/lz/x", "eit/lz/x"),  # a manifest of an earlier version
    ("HTTP://127.0.0.1:8769/sdac/SUM1/D5/S00000/image.fits", "SUM1/D5/S00000/image.fits"),
])
def test_locations_are_relative_to_the_base(url, location):
    assert archive_location(url, BASE) == location
    assert archive_url(location, "http://mirror.example:81/pub/") == "http://mirror.example:81/pub/" + location


@pytest.mark.parametrize("url", ["eit/lz/2010/10/..", "../etc/passwd", "eit/../../etc/passwd", "/etc/passwd",
                                 "eit//x", "eit/%2e%2e/x", "eit\\..\\x", "eit/x?y=1", "eit/x\n", "",
                                 "http://127.0.0.1:8769/sdac/../../etc/passwd", "http://127.0.0.1:8769/etc/passwd",
                                 "http://127.0.0.1:8769/sdac/eit/x#frag"])
def test_locations_that_leave_the_base_are_refused(url):
    with pytest.raises(UnsafeLocation):
        archive_url(url, BASE)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8770/sdac/eit/x", "https://127.0.0.1:8769/sdac/eit/x",
                                 "//evil.example/sdac/eit/x", "http://evil.example/sdac/eit/x"])
def test_absolute_urls_on_another_host_are_foreign(url):
    with pytest.raises(ForeignLocation):
        archive_location(url, BASE)


def add_row(root, name, **values):
    """Append a copy of the day's first row with ``values`` to its manifest, placed nearest the 06:00 slot."""
    path = manifest_path(root, name, DAY)
    manifest = read_manifest(path)
    row = manifest.iloc[[0]].copy()
    row["time_utc"] = pd.Timestamp(f"{DAY}T06:00:00", tz="UTC")
    for key, value in values.items():
        row[key] = value
    path.unlink()
    write_manifest(pd.concat([manifest, row], ignore_index=True), path)


def test_a_record_id_that_names_no_file_is_one_ledger_row(clean_archive, tmp_path):
    """A ``record_id`` ending in ``/..`` once crashed the whole month's fetch job; it is now one ledger row and its
    slot falls back to the next candidate."""
    root = tmp_path / "out"
    query("EIT195", clean_archive, root)
    add_row(root, "EIT195", record_id="eit/lz/2010/10/..", url="eit/lz/2010/10/..")
    slots, ledger = fetch("EIT195", clean_archive, root)
    assert (slots["status"] == "ok").all()
    assert list(ledger["record_id"]) == ["eit/lz/2010/10/.."] and list(ledger["reason"]) == ["unsafe_record"]


@pytest.mark.parametrize("url", ["{base}../../etc/passwd", "eit/lz/../../../etc/passwd"])
def test_a_location_outside_the_archive_is_refused_before_any_request(url, clean_archive, tmp_path):
    """A URL on the archive's host whose path climbs out of the archive base was sent (``GET /etc/passwd``) and
    ledgered as ``missing``: it is refused before any request, as ``unsafe_location``."""
    root = tmp_path / "out"
    query("EIT195", clean_archive, root)
    add_row(root, "EIT195", record_id="eit/lz/2010/10/efz20101015.060000",
            url=url.format(base=clean_archive.sdac_url))
    slots, ledger = fetch("EIT195", clean_archive, root)
    assert (slots["status"] == "ok").all()
    assert list(ledger["reason"]) == ["unsafe_location"] and "not a plain path" in ledger["detail"].iloc[0]
    assert not [e for e in clean_archive.access_log if "passwd" in e["path"] or "etc" in e["path"]]


@pytest.mark.parametrize("name", ["EIT195", "LASCO_C2", "HMI_720s"])
def test_a_moved_archive_fetches_the_same_files(name, clean_mission, tmp_path):
    """Manifests and receipts keep archive-relative locations, so a query on one archive base and a fetch on
    another (a mirror; here a second server of the same mission on another port) give the same slot table, and a
    rerun after the raw files are gone fetches them again from the new base."""
    with ArchiveServer(clean_mission) as first, ArchiveServer(clean_mission) as moved:
        assert first.url != moved.url
        query(name, first, tmp_path / "here")
        reference, reference_ledger = fetch(name, first, tmp_path / "here")
        query(name, first, tmp_path / "there")
        slots, ledger = fetch(name, moved, tmp_path / "there")
        manifest = read_manifest(manifest_path(tmp_path / "there", name, DAY))
        assert not [u for u in manifest["url"] if "://" in str(u)]
        for raw in (tmp_path / "there" / "raw").rglob("*"):  # the receipts stay: their locations are used
            if raw.is_file() and "receipt" not in raw.name and raw.suffix != ".csv":
                raw.unlink()
        moved.access_log.clear()
        again, again_ledger = fetch(name, moved, tmp_path / "there")
    assert (reference["status"] == "ok").all() and reference_ledger.empty
    pd.testing.assert_frame_equal(slots, reference)
    pd.testing.assert_frame_equal(again, reference)
    assert ledger.empty and again_ledger.empty  # in particular no foreign_host row
    assert not [u for u in slots["url"] if "://" in u]
    assert len([e for e in moved.access_log if e["status"] in (200, 206) and not e["path"].startswith("/cgi")]) \
        == len(slots)


def test_a_manifest_of_an_earlier_version_with_absolute_urls(clean_archive, tmp_path, clean_mission):
    """Absolute URLs on the configured archive are read as their locations; on another host they are refused
    with a hint to query again, and nothing is requested from that host."""
    root = tmp_path / "out"
    query("LASCO_C2", clean_archive, root)
    path = manifest_path(root, "LASCO_C2", DAY)
    manifest = read_manifest(path)
    manifest["url"] = [clean_archive.sdac_url + location for location in manifest["url"]]
    path.unlink()
    write_manifest(manifest, path)
    slots, ledger = fetch("LASCO_C2", clean_archive, root)
    assert (slots["status"] == "ok").all() and ledger.empty
    assert not [u for u in slots["url"] if "://" in u]
    elsewhere = tmp_path / "elsewhere"
    write_manifest(manifest, manifest_path(elsewhere, "LASCO_C2", DAY))
    clean_archive.access_log.clear()
    with ArchiveServer(clean_mission) as moved:
        slots, ledger = fetch("LASCO_C2", moved, elsewhere)
    assert (slots["status"] == "failed").all() and set(ledger["reason"]) == {"foreign_host"}
    assert all("delete the product's manifests" in detail for detail in ledger["detail"])
    assert clean_archive.access_log == [] and not [e for e in moved.access_log if not e["path"].endswith("/")]
