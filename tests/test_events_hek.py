"""The embedded archive's HEK endpoint, asked through sunpy's own HEKClient, and heliocube.events.hek on top of it."""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.error
import urllib.request

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from sunpy.net import attrs as a
from sunpy.net.hek import HEKClient

from heliocube.archive.hek import DEFAULT_PAGE_SIZE, flares_of_day
from heliocube.events.hek import query_hek

RANGE = (Time("2010-10-15T00:00:00"), Time("2010-10-18T00:00:00"))


def hek_requests(server) -> list[dict]:
    return [entry for entry in server.access_log if entry["path"] == "/hek/her"]


def expected(seed: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The flares of the list that overlap [start, end], in start order."""
    days = [start.date() + dt.timedelta(days=k) for k in range(-1, (end.date() - start.date()).days + 1)]
    found = [e for day in days for e in flares_of_day(seed, day)
             if e["event_starttime"] <= end.isoformat() and e["event_endtime"] >= start.isoformat()]
    return sorted(found, key=lambda e: (e["event_starttime"], e["kb_archivid"]))


def test_hek_client_pages_through_the_whole_flare_list(archive):
    """sunpy's HEKClient asks page 1, 2, ... while the answer says overmax: the table holds every flare of the
    range once, parsed by sunpy (times, coordinates), and the pages number what the page size makes of them."""
    client = HEKClient(url=archive.url + "hek/her?")
    table = client.search(a.Time(*RANGE), a.hek.FL)
    want = expected(0, RANGE[0].datetime, RANGE[1].datetime)
    assert len(want) > 2 * DEFAULT_PAGE_SIZE  # several pages
    assert list(table["kb_archivid"]) == [e["kb_archivid"] for e in want]
    pages = hek_requests(archive)
    assert len(pages) == math.ceil(len(want) / DEFAULT_PAGE_SIZE)
    assert [q["query"].rsplit("page=", 1)[1] for q in pages] == [str(i + 1) for i in range(len(pages))]
    assert all("cmd=search" in q["query"] and "event_type=fl" in q["query"] for q in pages)
    assert isinstance(table["event_starttime"][0], Time) and isinstance(table["event_coord"][0], SkyCoord)
    first = table[0]
    assert first["event_coord"].Tx.to_value(u.arcsec) == pytest.approx(want[0]["hpc_x"])
    assert all(str(c)[0] in "ABCMX" for c in table["fl_goescls"])
    assert all(t0 < t1 for t0, t1 in zip(table["event_starttime"], table["event_endtime"], strict=True))


def test_hek_filters_method_box_and_type(archive):
    client = HEKClient(url=archive.url + "hek/her?")
    everything = client.search(a.Time(*RANGE), a.hek.FL)
    swpc = client.search(a.Time(*RANGE), a.hek.FL, a.hek.FRM.Name == "SWPC")
    assert set(swpc["frm_name"]) == {"SWPC"} and 0 < len(swpc) < len(everything)
    west = client.search(a.Time(*RANGE), a.hek.FL, a.hek.SpatialRegion(x1=0, y1=-1200, x2=1200, y2=1200))
    assert len(west) and all(x >= 0 for x in west.raw["hpc_x"])
    assert len(client.search(a.Time(*RANGE), a.hek.CE)) == 0
    url = archive.url + "hek/her?cmd=search&event_starttime=soon&event_endtime=2010-10-16T00:00:00"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 400 and "event_starttime" in json.loads(err.value.read())["error"]


def test_the_flare_list_is_a_function_of_the_seed():
    day = dt.date(2010, 10, 16)
    assert flares_of_day(0, day) == flares_of_day(0, day) and flares_of_day(0, day) != flares_of_day(1, day)


def test_query_hek_gives_candidates_with_ids_and_fluxes(archive):
    candidates = query_hek(archive.url + "hek/her?", *RANGE, frm_name="SWPC")
    want = [e for e in expected(0, RANGE[0].datetime, RANGE[1].datetime) if e["frm_name"] == "SWPC"]
    assert len(candidates) == len(want)
    assert candidates["event_id"].is_unique and candidates["event_id"].str.match(r"^FL\d{8}T\d{6}").all()
    assert str(candidates["start"].dt.tz) == "UTC"
    first = candidates.iloc[0]
    assert first["goes_class"] == want[0]["fl_goescls"] and first["active_region"] == want[0]["ar_noaanum"]
    letter, number = want[0]["fl_goescls"][0], float(want[0]["fl_goescls"][1:])
    assert first["goes_flux"] == pytest.approx(number * {"A": 1e-8, "B": 1e-7, "C": 1e-6, "M": 1e-5, "X": 1e-4}[letter])
