"""The embedded archive over real HTTP on 127.0.0.1, through the unmodified drms client and plain urllib."""

import io
import json
import re
import urllib.error
import urllib.request
import warnings

import drms
import numpy as np
import pandas as pd
import pytest
import sunpy.map
from astropy.io import fits

from heliocube.archive import ArchiveServer, FaultConfig, SyntheticMission


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("archive") / "access.jsonl"
    with ArchiveServer(SyntheticMission(seed=5, frame_size=64), access_log_path=log) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return drms.Client(
        server=drms.ServerConfig(
            name="heliocube-embedded",
            cgi_baseurl=server.url + "cgi-bin/ajax/",
            cgi_show_series="show_series",
            cgi_jsoc_info="jsoc_info",
            cgi_jsoc_fetch="jsoc_fetch",
            cgi_check_address="checkAddress.sh",
            http_download_baseurl=server.url,
        ),
        email="someone@example.org",
    )


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def _status(url):
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as err:
        return err.code


def test_series_struct_and_pkeys(client):
    assert client.pkeys("aia.lev1_euv_12s") == ["T_REC", "WAVELNTH"]
    assert client.pkeys("hmi.M_720s") == ["T_REC"]
    info = client.info("mdi.fd_M_96m_lev182")
    assert "QUALITY" in info.keywords.index and info.keywords.loc["T_REC", "type"] == "time"
    assert "aia.lev1_uv_24s" in client.series()


def test_query_keys_quality_wavelength_step(client, server):
    ds = "aia.lev1_euv_12s[2011-02-15T00:00:00Z/1h@10m][171,193]"
    keys = client.query(ds, key="T_REC,T_OBS,WAVELNTH,QUALITY,EXPTIME")
    assert len(keys) == 12 and set(keys["WAVELNTH"]) == {171, 193}
    assert keys["T_REC"].iloc[:2].tolist() == ["2011-02-15T00:00:00Z"] * 2
    assert keys["T_REC"].iloc[-1] == "2011-02-15T00:50:00Z"
    # drms 0.9 + pandas 3: hex QUALITY strings become NaN; skip_conversion keeps the hex text to convert
    assert keys["QUALITY"].isna().all()
    raw = client.query(ds, key="T_REC,WAVELNTH,QUALITY", skip_conversion=["QUALITY"])
    assert raw["QUALITY"].str.match(r"^0x[0-9a-f]{8}$").all()
    quality = raw["QUALITY"].map(lambda text: int(text, 16))
    truth = pd.concat([server.mission.records(f"AIA{w}", "2011-02-14T23:59", "2011-02-15T01:01") for w in (171, 193)])
    truth = truth.set_index("record_id")["quality"]
    ids = [f"aia.lev1_euv_12s[{t}][{w}]" for t, w in zip(raw["T_REC"], raw["WAVELNTH"], strict=True)]
    assert quality.tolist() == truth.loc[ids].tolist()


def test_query_n_tai_utc_and_comma_joined(client):
    tai = client.query("hmi.M_720s[2010.10.15_00:00:00_TAI-2010.10.15_01:00:00_TAI]", key="T_REC")
    assert len(tai) == 6  # inclusive range on the 720 s grid
    utc = client.query("hmi.M_720s[2010.10.15_00:00:00_UTC/1h]", key="T_REC")
    assert utc["T_REC"].iloc[0] == "2010.10.15_00:00:36_TAI" or utc["T_REC"].iloc[0].endswith("00:12:00_TAI")
    assert len(utc) == 5
    first = client.query("aia.lev1_euv_12s[2011-02-15T00:00:00Z/1h][171]", key="T_REC", n=3)
    assert first["T_REC"].tolist() == ["2011-02-15T00:00:00Z", "2011-02-15T00:00:12Z", "2011-02-15T00:00:24Z"]
    last = client.query("aia.lev1_euv_12s[2011-02-15T00:00:00Z/1h][171]", key="T_REC", n=-1)
    assert last["T_REC"].tolist() == ["2011-02-15T00:59:48Z"]
    joined = client.query(
        "mdi.fd_M_96m_lev182[2010.10.15_19:12:00_TAI],hmi.M_720s[2010.10.15_00:12:00_TAI]", key="T_REC,T_OBS"
    )
    assert joined["T_REC"].tolist() == ["2010.10.15_19:12:00_TAI", "2010.10.15_00:12:00_TAI"]
    keys, segs = client.query("mdi.fd_M_96m_lev182[2010.10.15/6h]", key="**ALL**", seg="data")
    assert len(keys) == len(segs) > 0 and segs["data"].str.match(r"^/SUM\d+/D\d+/S00000/data\.fits$").all()
    with pytest.raises(drms.DrmsQueryError):
        client.query("aia.lev1_euv_12s[][171]", key="T_REC")


def test_url_quick_export_downloads_bare_segment_files(client, server, tmp_path):
    """as-is files are JSOC's segment files: the image and its encoding, no record keywords (a fits export has
    them); the archive adds only HC_SCALE, its resampling factor."""
    request = client.export(
        "aia.lev1_euv_12s[2011-02-15T00:00:00Z/1m][171]{image}", method="url_quick", protocol="as-is"
    )
    assert request.id is None and len(request.data) == 5
    result = request.download(tmp_path)
    truth = server.mission.records("AIA171", "2011-02-14T23:59", "2011-02-15T00:01").set_index("record_id")
    opened = 0
    for record, path in zip(result["record"], result["download"], strict=True):
        rid = record.split("{")[0]
        if truth.loc[rid, "truncated"]:
            assert path is None or (tmp_path / path).stat().st_size < truth.loc[rid, "size"]
            continue
        if truth.loc[rid, "corrupt"]:
            continue
        with fits.open(path) as hdul:
            header, shape = hdul[0].header, hdul[0].data.shape
        assert shape == (64, 64) and "WAVELNTH" not in header and "CDELT1" not in header and "DATE-OBS" not in header
        assert set(header) <= {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BSCALE", "BZERO", "BLANK",
                               "HC_SCALE"}  # fmt: skip
        opened += 1
    assert opened >= 3


def test_url_fits_export_with_polling(client, tmp_path):
    request = client.export("hmi.M_720s[2010.10.15_00:00:00_TAI/1h@24m]{magnetogram}", method="url", protocol="fits")
    assert request.id.startswith("JSOC_") and request.status == 2
    assert request.wait(sleep=0)
    assert request.status == 0 and len(request.data) == 3
    result = request.download(tmp_path)
    for path in result["download"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(path)
        assert header["T_REC"].endswith("_TAI") and header["TELESCOP"] == "SDO/HMI" and "QUALITY" in header


def _listing(url):
    text = _get(url)[2].decode()
    pattern = re.compile(r'<a href="([^"]+)">[^<]+</a>\s+(\d\d-\w{3}-\d{4} \d\d:\d\d)\s+(\d+|-)')
    return [(m.group(1), m.group(2), m.group(3)) for m in pattern.finditer(text)]


def test_sdac_listings_match_records(server):
    entries = _listing(server.url + "sdac/eit/lz/2004/03/")
    mission = server.mission
    truth = pd.concat([mission.records(f"EIT{w}", "2004-03-01", "2004-04-01") for w in (171, 195, 284, 304)])
    assert sorted(name for name, _, _ in entries) == sorted(truth["filename"])
    sizes = dict(zip(truth["filename"], truth["size"], strict=True))
    assert all(int(size) == sizes[name] for name, _, size in entries)
    assert ("03/", "01-Mar-2004 00:00", "-") in _listing(server.url + "sdac/eit/lz/2004/")
    assert ("c3/", "01-Mar-2004 00:00", "-") in _listing(server.url + "sdac/lasco_level05/040301/")
    lasco = _listing(server.url + "sdac/lasco_level05/040301/c2/")
    c2 = mission.records("LASCO_C2", "2004-03-01", "2004-03-02")
    assert [n for n, _, _ in lasco if n != "img_hdr.txt"] == c2["filename"].tolist()
    index = _get(server.url + "sdac/lasco_level05/040301/c2/img_hdr.txt")[2].decode().splitlines()
    assert len(index) == len(c2)
    columns = index[0].split()
    assert columns[0] == c2["filename"].iloc[0] and columns[3] == "C2" and columns[5] == "64"
    stamp = pd.Timestamp(f"{columns[1].replace('/', '-')}T{columns[2]}", tz="UTC")
    assert abs((stamp - c2["time_utc"].iloc[0]).total_seconds()) < 0.001
    assert dict((n, int(s)) for n, _, s in lasco)["img_hdr.txt"] == len("\n".join(index)) + 1


def test_range_reads_give_the_header(server):
    row = server.mission.records("EIT284", "2004-03-01", "2004-03-02").query("~corrupt").iloc[0]
    status, headers, body = _get(server.url + "sdac/" + row.record_id, {"Range": "bytes=0-5759"})
    assert status == 206 and len(body) == 5760
    assert headers["Content-Range"] == f"bytes 0-5759/{row['size']}"
    header = fits.Header.fromstring(body[: body.index(b"END     ") + 80].decode())
    assert header["WAVELNTH"] == 284
    full = _get(server.url + "sdac/" + row.record_id)[2] if not row.truncated else None
    if full is not None:
        assert full[:5760] == body and len(full) == row["size"]


def test_determinism_over_http(server):
    row = server.mission.records("LASCO_C3", "2004-03-01", "2004-03-02").query("~corrupt & ~truncated").iloc[0]
    url = server.url + "sdac/" + row.record_id
    assert _get(url)[2] == _get(url)[2]
    other = ArchiveServer(SyntheticMission(seed=5, frame_size=64)).start()
    try:
        assert _get(other.url + "sdac/" + row.record_id)[2] == _get(url)[2]
        assert _listing(other.url + "sdac/eit/lz/2004/03/") == _listing(server.url + "sdac/eit/lz/2004/03/")
    finally:
        other.stop()


def test_permanent_truncation_and_corruption(server):
    truth = server.mission.records("AIA171", "2011-02-15", "2011-02-16")
    row = truth[truth["truncated"]].iloc[0]
    from heliocube.archive.jsoc import sums_path

    url = server.url.rstrip("/") + sums_path(server.mission, row)
    for _ in range(2):
        with pytest.raises(Exception):  # noqa: B017 - IncompleteRead
            _get(url)
    bad = truth[truth["corrupt"]].iloc[0]
    body = _get(server.url.rstrip("/") + sums_path(server.mission, bad))[2]
    assert len(body) == bad["size"]
    with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017 - any reader error
        warnings.simplefilter("ignore")
        sunpy.map.Map(fits.getdata(io.BytesIO(body)), fits.getheader(io.BytesIO(body)))


def test_faults_then_recovery(server):
    good = server.mission.records("EIT195", "2004-03-01", "2004-03-02").query("~corrupt & ~truncated")
    url = server.url + "sdac/" + good.iloc[0].record_id
    expected = _get(url)[2]
    try:
        server.faults = FaultConfig(rate=1.0, kinds=("http500",))
        assert _status(url) == 500
        server.faults = FaultConfig(rate=1.0, kinds=("http429",), retry_after=7)
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url)
        assert err.value.code == 429 and err.value.headers["Retry-After"] == "7"
        server.faults = FaultConfig(rate=1.0, kinds=("truncate",))
        with pytest.raises(Exception):  # noqa: B017 - IncompleteRead
            _get(url)
        server.faults = FaultConfig(rate=1.0, kinds=("corrupt",))
        body = _get(url)[2]
        assert len(body) == len(expected) and body != expected
        server.faults = FaultConfig(rate=1.0, kinds=("slow",), slow_seconds=0.3)
        assert _get(url)[2] == expected
        assert server.access_log[-1]["duration_s"] >= 0.3
        server.faults = FaultConfig(rate=0.5, kinds=("http500",), seed=1)
        codes = [_status(url) for _ in range(20)]
        assert 500 in codes and 200 in codes  # a retry of the same request can succeed
    finally:
        server.faults = FaultConfig(rate=0.0)
    assert _get(url)[2] == expected


def test_unsafe_names_offered_on_request(server, client):
    try:
        server.faults = FaultConfig(unsafe_names=True)
        names = [n for n, _, _ in _listing(server.url + "sdac/eit/lz/2004/03/")]
        assert "../../etc/x.fits" in names and "/abs/path.fits" in names
        request = client.export("aia.lev1_euv_12s[2011-02-15T00:00:00Z][171]", method="url_quick", protocol="as-is")
        assert {"../../etc/x.fits", "/abs/path.fits"} <= set(request.data["filename"])
    finally:
        server.faults = FaultConfig()


def test_access_log_and_traversal(server):
    assert _status(server.url + "sdac/../../etc/passwd") == 404
    assert _status(server.url + "sdac/eit/lz/%2e%2e/%2e%2e/%2e%2e/etc/passwd") == 404
    assert _status(server.url + "nothing/here") == 404
    assert _status(server.url + "sdac/eit/lz/2004/13/") == 404
    entry = server.access_log[-1]
    assert set(entry) == {"time", "method", "path", "query", "status", "bytes", "duration_s", "open_connections",
                          "range"}
    assert entry["status"] == 404 and entry["open_connections"] >= 1
    with open(server.access_log_path) as stream:
        lines = [json.loads(line) for line in stream]
    assert len(lines) == len(server.access_log) and lines[-1]["path"] == entry["path"]
    assert any(line["path"] == "/cgi-bin/ajax/checkAddress.sh" for line in lines)
    health = json.loads(_get(server.url + "health")[2])
    assert health == {"status": "ok", "seed": 5, "frame_size": 64}
    assert np.all([line["duration_s"] >= 0 for line in lines])
