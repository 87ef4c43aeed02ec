"""The read API (heliocube serve): a real uvicorn server on 127.0.0.1 over a small output tree, asked with requests
and with the package's client; every route, every kind of bad request, and attempts to read outside the root."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import threading
import time
from xml.etree import ElementTree as ET

import h5py
import numpy as np
import pytest
import requests
import uvicorn
from PIL import Image

from heliocube.serve import client
from heliocube.serve.app import create_app

from .serve_tree import (
    PARAMETER_NAMES,
    param_values,
    six_minute_times,
    write_cube,
    write_events,
    write_params,
)
from .workflow_runs import free_port

SECRET = "heliocube-secret-outside-root"
#: 130 frames every 6 minutes across new year: 40 in the 2010 file, 90 in the 2011 file.
TIMES = six_minute_times("2010-12-31T20:00:00", 130)
N2010 = sum(t.startswith("2010") for t in TIMES)
FLARES = [
    {"event_id": "f1", "event_type": "FL", "start": "2010-12-31T20:10:00.000", "peak": "2010-12-31T20:20:00.000",
     "end": "2010-12-31T20:40:00.000", "goes_class": "M1.0", "goes_flux": 1e-5, "hpc_x": -500.0, "hpc_y": 200.0,
     "kept": True, "reason": "kept"},
    {"event_id": "f2", "event_type": "FL", "start": "2011-01-01T02:00:00.000", "peak": "2011-01-01T02:10:00.000",
     "end": "2011-01-01T02:30:00.000", "goes_class": "C3.2", "goes_flux": 3.2e-6, "hpc_x": 300.0, "hpc_y": -100.0,
     "kept": True, "reason": "kept"},
    {"event_id": "f3", "event_type": "FL", "start": "2011-01-01T05:00:00.000", "peak": "2011-01-01T05:05:00.000",
     "end": "2011-01-01T05:20:00.000", "goes_class": "X1.1", "goes_flux": 1.1e-4, "hpc_x": 800.0, "hpc_y": 50.0,
     "kept": True, "reason": "kept"},
]
CMES = [{"event_id": "c1", "event_type": "CE", "start": "2011-01-01T02:05:00.000", "end": "2011-01-01T04:00:00.000",
         "hpc_x": 250.0, "hpc_y": -50.0, "kept": True, "reason": "kept"}]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """An output root: AIA193 at 8 px (two year files, parameters on a 4x4 grid), at 16 px (3 frames, no
    parameters), AIA171 (3 frames, 2x2 grid, names on the dataset), two event tables; outside it, a cube and an event
    table reachable only through symlinks, and a secret file."""
    base = tmp_path_factory.mktemp("serve")
    root, outside = base / "out", base / "outside"
    for year in ("2010", "2011"):
        cube = root / "cubes" / "8px-test-6min" / "AIA193" / f"{year}.h5"
        write_cube(cube, [t for t in TIMES if t.startswith(year)], 8)
        write_params(cube, root, 4, first=0 if year == "2010" else N2010, nan_cell=year == "2010")
    write_cube(root / "cubes" / "16px-test-6min" / "AIA193" / "2011.h5", TIMES[N2010:N2010 + 3], 16, seed=1)
    aia171 = root / "cubes" / "8px-test-6min" / "AIA171" / "2011.h5"
    write_cube(aia171, TIMES[N2010:N2010 + 3], 8, seed=2)
    write_params(aia171, root, 2, names_on="dataset")
    write_events(root, "flares", FLARES)
    write_events(root, "cmes", CMES)
    # outside the root: reachable only by symlinks or by escaping paths
    write_cube(outside / "cubes" / "evil" / "AIA193" / "2011.h5", TIMES[:2], 8)
    write_events(outside, "leak", [{**FLARES[0], "event_id": SECRET}])
    (outside / "secret.txt").write_text(SECRET)
    (root / "cubes" / "evil").symlink_to(outside / "cubes" / "evil")
    (root / "events" / "leak").symlink_to(outside / "events" / "leak")
    return root


@pytest.fixture(scope="module")
def url(tree):
    """The API over ``tree`` served by uvicorn in a thread."""
    config = uvicorn.Config(create_app(tree), host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def get(url, path, **params):
    return requests.get(f"{url}{path}", params=params, timeout=60)


def refused(url, path, status, parameter, **params):
    response = get(url, path, **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"].startswith(f"{parameter}:"), body
    return body["detail"]


def test_the_listing_names_what_is_served_and_nothing_through_symlinks(url):
    listing = get(url, "/").json()
    cubes = {(e["channel"], e["variant"]): e for e in listing["cubes"]}
    assert set(cubes) == {("AIA193", "8px-test-6min"), ("AIA193", "16px-test-6min"), ("AIA171", "8px-test-6min")}
    assert cubes["AIA193", "8px-test-6min"]["frames"] == 130
    assert cubes["AIA193", "8px-test-6min"]["cadence_seconds"] == 360
    assert {(e["channel"], e["variant"]) for e in listing["params"]} == {("AIA193", "8px-test-6min"),
                                                                        ("AIA171", "8px-test-6min")}
    assert listing["events"] == ["cmes", "flares"]
    assert "/images" in get(url, "/openapi.json").json()["paths"]
    assert get(url, "/docs").status_code == 200


@pytest.mark.parametrize("fmt, pil", [("jpeg", "JPEG"), ("png", "PNG")])
def test_an_image_is_the_nearest_frame_at_the_requested_size(url, tree, fmt, pil):
    # 16 px is the largest AIA193 variant, the default; 2011-01-01T00:06:01.5 is its second frame
    response = get(url, "/images", channel="AIA193", time="2011-01-01T00:07:00", size=64, format=fmt)
    assert response.status_code == 200 and response.headers["content-type"] == f"image/{fmt}"
    assert response.headers["x-frame-time"] == "2011-01-01T00:06:01.500"
    assert response.headers["x-variant"] == "16px-test-6min"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == (pil, (64, 64))
    native = Image.open(io.BytesIO(get(url, "/images", channel="193", time=TIMES[0], variant="8px-test-6min",
                                       format="png").content))
    assert native.size == (8, 8)
    pixels = np.asarray(native.convert("L"), dtype=float)
    assert pixels[3:5, 3:5].mean() > pixels[0, 0] + 50  # the disk is brighter than the corner


def test_parameters_of_one_frame_as_json_and_the_seeds_xml(url):
    body = get(url, "/params", channel="AIA193", time="2011-01-01T00:01:00").json()
    position = N2010  # the first 2011 frame, 00:00:01.5
    assert body["time"] == "2011-01-01T00:00:01.500" and body["variant"] == "8px-test-6min"
    assert body["parameter_names"] == list(PARAMETER_NAMES) and body["grid"] == 4
    np.testing.assert_array_equal(np.asarray(body["params"], dtype=np.float32), param_values(1, 4, position)[0])
    root = ET.fromstring(get(url, "/params", channel="AIA193", time="2011-01-01T00:01:00", format="xml").content)
    assert len(root) == 16 and [c.tag for c in root[0]] == ["x", "y", *PARAMETER_NAMES]
    as_seed = client.convert_param_xml_to_ndarray(root)  # the seed's [x][y][parameter]
    np.testing.assert_array_equal(as_seed.transpose(1, 0, 2).astype(np.float32), param_values(1, 4, position)[0])
    # a NaN cell (frame 0, cell 0,0) is null in JSON and NaN in XML
    first = get(url, "/params", channel="AIA193", time=TIMES[0]).json()
    assert first["params"][0][0] == [None] * 10
    assert np.isnan(client.convert_param_xml_to_ndarray(
        get(url, "/params", channel="AIA193", time=TIMES[0], format="xml").content)[0, 0]).all()


def test_names_and_units_may_be_attributes_of_the_params_dataset(url):
    body = get(url, "/params", channel="aia171", time=TIMES[N2010]).json()
    assert body["parameter_names"] == list(PARAMETER_NAMES) and body["grid"] == 2


def test_a_range_pages_with_limit_offset_and_step_across_year_files(url):
    start, end = TIMES[30], TIMES[129]  # 100 frames, 10 in 2010 and 90 in 2011
    body = get(url, "/params/range", channel="AIA193", start=start, end=end).json()
    assert (body["total"], body["limit"], body["offset"], body["next_offset"]) == (100, 100, 0, None)
    assert [f["time"] for f in body["frames"]] == [t for t in TIMES[30:130]]
    np.testing.assert_array_equal(np.asarray([f["params"] for f in body["frames"]], dtype=np.float32),
                                  param_values(100, 4, 30))
    paged = get(url, "/params/range", channel="AIA193", start=start, end=end, limit=7, offset=2, step=3).json()
    assert (paged["total"], paged["next_offset"]) == (34, 9)  # ceil(100 / 3) results, page 2..8
    assert [f["time"] for f in paged["frames"]] == TIMES[30:130:3][2:9]
    last = get(url, "/params/range", channel="AIA193", start=start, end=end, limit=7, offset=33, step=3).json()
    assert [f["time"] for f in last["frames"]] == [TIMES[129]] and last["next_offset"] is None
    arrays = client.get_aia_imageparam_bulk_ndarray(start, end, "AIA193", limit=30, offset=10, step=2, base_url=url)
    assert arrays["time"] == TIMES[30:130:2][10:40] and (arrays["total"], arrays["next_offset"]) == (50, 40)
    assert arrays["params"].dtype == np.float32 and arrays["parameter_names"] == list(PARAMETER_NAMES)
    np.testing.assert_array_equal(arrays["params"], param_values(100, 4, 30)[::2][10:40])
    beyond = get(url, "/params/range", channel="AIA193", start=start, end=end, offset=500).json()
    assert beyond["frames"] == [] and beyond["total"] == 100
    xml = client.get_aia_imageparam_bulk_xml(dt.datetime(2010, 12, 31, 23, 0), dt.datetime(2011, 1, 1, 1, 0),
                                             "AIA193", limit=5, offset=1, step=2, base_url=url)
    frames = client.convert_param_bulk_xml_to_ndarray(xml)
    assert list(frames) == TIMES[30:50:2][1:6]  # 23:00:01.5 to 00:54:01.5
    np.testing.assert_array_equal(np.stack([frames[t].transpose(1, 0, 2) for t in frames]).astype(np.float32),
                                  param_values(20, 4, 30)[::2][1:6])


def test_header_information_of_one_frame_and_of_a_range(url):
    body = get(url, "/header", channel="AIA193", time=TIMES[N2010 + 1], variant="16px-test-6min").json()
    # CRPIX 8.5, CRVAL (150, -300) arcsec, CDELT 300: the disk centre 0.5 px left of and 1 px above the middle
    assert body["X0"] == pytest.approx(7.0) and body["Y0"] == pytest.approx(8.5)
    assert (body["DSUN"], body["R_SUN"], body["CDELT"], body["QUALITY"]) == (1.4959787e11, 3.2, 300.0, 1024)
    assert body["image_size"] == 16 and body["time"] == TIMES[N2010 + 1]
    root = client.get_aia_imageheader_xml(TIMES[N2010 + 1], "AIA193", base_url=url, variant="16px-test-6min")
    as_seed = client.convert_header_xml_to_dict(root)
    assert list(as_seed) == ["X0", "Y0", "DSUN", "R_SUN", "CDELT", "QUALITY"] and as_seed["QUALITY"] == "1024"
    assert float(as_seed["DSUN"]) == 1.4959787e11
    page = get(url, "/header/range", channel="AIA193", start=TIMES[0], end=TIMES[-1], variant="8px-test-6min",
               limit=3, step=40).json()
    assert page["total"] == 4 and [f["time"] for f in page["frames"]] == TIMES[0:120:40]
    assert [f["QUALITY"] for f in page["frames"]] == [0, 0, 0]


def test_the_client_mirrors_the_seeds_three_examples(url, monkeypatch):
    monkeypatch.setattr(client, "BASE_URL", url)
    when = dt.datetime(2011, 1, 1, 0, 5)
    image = client.get_aia_image_jpeg(when, client.AIA_WAVE.AIA_193, client.IMAGE_SIZE.P256)
    assert (image.format, image.size) == ("JPEG", (256, 256))
    heatmap = client.get_aia_imageparam_jpeg(when, client.AIA_WAVE.AIA_193, client.IMAGE_SIZE.P512,
                                             client.IMAGE_PARAM.ENTROPY)
    assert heatmap.format == "JPEG" and heatmap.width == 512
    res = client.convert_param_xml_to_ndarray(client.get_aia_imageparam_xml(when, client.AIA_WAVE.AIA_193))
    assert res.shape == (4, 4, 10) and len(res.reshape(4 * 4 * 10).tolist()) == 160
    assert client.get_aia_imageparam_json(when, "193")["time"] == TIMES[N2010 + 1]
    assert client.get_aia_imageheader_json(when, "193")["CDELT"] == 300.0
    with pytest.raises(client.APIError) as err:
        client.get_aia_image_jpeg(when, "EIT195", "256")
    assert err.value.status == 404 and err.value.parameter == "channel"


def test_heatmaps_by_parameter_id_or_name(url):
    for param in ("1", "tamura_contrast"):
        response = get(url, "/heatmap", channel="AIA193", time=TIMES[5], param=param, format="png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).format == "PNG"


def test_temporal_and_spatiotemporal_event_queries(url):
    every = get(url, "/events/temporal", start="2010-12-31T00:00:00", end="2011-01-02T00:00:00").json()
    assert [e["event_id"] for e in every["events"]] == ["f1", "f2", "c1", "f3"] and every["total"] == 4
    assert {e["dataset"] for e in every["events"]} == {"flares", "cmes"}
    # overlap, not containment: f2 (02:00-02:30) overlaps 02:20-02:25
    overlap = client.get_events_temporal("2011-01-01T02:20:00", "2011-01-01T02:25:00", "fl", base_url=url)
    assert [e["event_id"] for e in overlap["events"]] == ["f2"]
    assert overlap["events"][0]["goes_class"] == "C3.2" and overlap["events"][0]["active_region"] is None
    boxed = client.get_events_spatiotemporal("2010-12-31T00:00:00", "2011-01-02T00:00:00", (0, 900, -200, 100),
                                             base_url=url)
    assert [e["event_id"] for e in boxed["events"]] == ["f2", "c1", "f3"]
    one = get(url, "/events/spatiotemporal", start="2010-12-31T00:00:00", end="2011-01-02T00:00:00", x_min=0,
              x_max=900, y_min=-200, y_max=100, event_type="FL", dataset="flares", limit=1, offset=1).json()
    assert [e["event_id"] for e in one["events"]] == ["f3"] and (one["total"], one["next_offset"]) == (2, None)


def test_no_event_tables_is_an_empty_answer(tmp_path):
    (tmp_path / "cubes").mkdir()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "heliocube.cli", "serve", str(tmp_path), "--port", str(port),
                                "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "NO_PROXY": "127.0.0.1"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"{base}/events/temporal", params={"start": "2011-01-01T00:00:00",
                                                                         "end": "2011-01-02T00:00:00"}, timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["events"] == [] and answer.json()["total"] == 0
        listing = requests.get(base, timeout=5).json()
        assert (listing["cubes"], listing["params"], listing["events"]) == ([], [], [])
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert f"serving {tmp_path.resolve()} at http://127.0.0.1:{port}" in process.stdout.read().decode()


@pytest.mark.parametrize("path, status, parameter, params", [
    ("/images", 404, "channel", {"channel": "EIT195", "time": TIMES[0]}),
    ("/images", 404, "variant", {"channel": "AIA193", "time": TIMES[0], "variant": "4096px"}),
    ("/images", 422, "time", {"channel": "AIA193", "time": "yesterday"}),
    ("/images", 422, "time", {"channel": "AIA193", "time": "2011-13-01T00:00:00"}),
    ("/images", 404, "time", {"channel": "AIA193", "time": "2011-02-01T00:00:00"}),
    ("/images", 404, "time", {"channel": "AIA193", "time": TIMES[0][:14] + "02:00", "tolerance": 10,
                              "variant": "8px-test-6min"}),
    ("/images", 422, "tolerance", {"channel": "AIA193", "time": TIMES[0], "tolerance": -1}),
    ("/images", 422, "size", {"channel": "AIA193", "time": TIMES[0], "size": 5000}),
    ("/images", 422, "format", {"channel": "AIA193", "time": TIMES[0], "format": "gif"}),
    ("/images", 422, "time", {"channel": "AIA193"}),
    ("/heatmap", 422, "param", {"channel": "AIA193", "time": TIMES[0], "param": "11"}),
    ("/heatmap", 422, "param", {"channel": "AIA193", "time": TIMES[0], "param": "brightness"}),
    ("/heatmap", 404, "channel", {"channel": "AIA335", "time": TIMES[0], "param": "1"}),
    ("/params", 404, "channel", {"channel": "AIA94", "time": TIMES[0]}),
    ("/params", 404, "variant", {"channel": "AIA193", "time": TIMES[0], "variant": "16px-test-6min"}),
    ("/params", 422, "format", {"channel": "AIA193", "time": TIMES[0], "format": "csv"}),
    ("/params/range", 422, "limit", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[9], "limit": 101}),
    ("/params/range", 422, "limit", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[9], "limit": 0}),
    ("/params/range", 422, "offset", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[9], "offset": -1}),
    ("/params/range", 422, "step", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[9], "step": 0}),
    ("/params/range", 422, "end", {"channel": "AIA193", "start": TIMES[9], "end": TIMES[0]}),
    ("/params/range", 422, "start", {"channel": "AIA193", "start": "2011-01-01 noon", "end": TIMES[0]}),
    ("/params/range", 422, "end", {"channel": "AIA193", "start": TIMES[0]}),
    ("/header", 404, "time", {"channel": "AIA193", "time": "2000-01-01T00:00:00"}),
    ("/header/range", 422, "limit", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[9], "limit": 1000}),
    ("/events/temporal", 422, "end", {"start": "2011-01-02T00:00:00", "end": "2011-01-01T00:00:00"}),
    ("/events/temporal", 404, "dataset", {"start": TIMES[0], "end": TIMES[9], "dataset": "sunspots"}),
    ("/events/temporal", 422, "offset", {"start": TIMES[0], "end": TIMES[9], "offset": -5}),
    ("/events/spatiotemporal", 422, "x_max", {"start": TIMES[0], "end": TIMES[9], "x_min": 10, "x_max": -10,
                                              "y_min": 0, "y_max": 1}),
    ("/events/spatiotemporal", 422, "y_min", {"start": TIMES[0], "end": TIMES[9], "x_min": 0, "x_max": 1,
                                              "y_max": 1}),
])
def test_bad_requests_are_4xx_naming_the_parameter(url, path, status, parameter, params):
    refused(url, path, status, parameter, **params)


@pytest.mark.parametrize("path, params", [
    ("/images", {"channel": "../../outside/cubes/evil/AIA193", "time": TIMES[0]}),
    ("/images", {"channel": "AIA193", "time": TIMES[0], "variant": "evil"}),
    ("/images", {"channel": "AIA193", "time": TIMES[0], "variant": "../../outside/cubes/evil"}),
    ("/images", {"channel": "AIA193", "time": TIMES[0], "variant": "8px-test-6min/../../../outside/cubes/evil"}),
    ("/params", {"channel": "/etc/passwd", "time": TIMES[0]}),
    ("/params/range", {"channel": "AIA193", "start": TIMES[0], "end": TIMES[1], "variant": "..%2F..%2Foutside"}),
    ("/events/temporal", {"start": TIMES[0], "end": TIMES[-1], "dataset": "leak"}),
    ("/events/temporal", {"start": TIMES[0], "end": TIMES[-1], "dataset": "../../outside/events/leak"}),
])
def test_no_request_reads_outside_the_root(url, path, params):
    response = get(url, path, **params)
    assert 400 <= response.status_code < 500
    assert SECRET not in response.text and response.json()["parameter"] in ("channel", "variant", "dataset")
    every = get(url, "/events/temporal", start="2000-01-01T00:00:00", end="2030-01-01T00:00:00")
    assert SECRET not in every.text and "leak" not in {e["dataset"] for e in every.json()["events"]}


@pytest.mark.parametrize("raw", ["/../../outside/secret.txt", "/%2e%2e/%2e%2e/outside/secret.txt",
                                 "/images/..%2F..%2F..%2Foutside%2Fsecret.txt", "/docs/../../secret.txt",
                                 "/static/../../outside/secret.txt"])
def test_raw_paths_never_reach_files(url, raw):
    response = requests.get(f"{url}{raw}", timeout=10)
    assert response.status_code in (404, 422) and SECRET not in response.text


def test_a_rewritten_file_is_served_fresh(url, tree):
    """The warm cache notices a file replaced under it (the workflow rewrites files by renaming)."""
    cube = tree / "cubes" / "8px-test-6min" / "AIA171" / "2011.h5"
    before = get(url, "/", ).json()
    assert {(e["channel"], e["frames"]) for e in before["cubes"]} >= {("AIA171", 3)}
    write_cube(cube, TIMES[N2010:N2010 + 5], 8, seed=3)
    with h5py.File(cube, "r") as f:
        assert f["data"].shape[0] == 5
    after = get(url, "/").json()
    assert {(e["channel"], e["frames"]) for e in after["cubes"]} >= {("AIA171", 5)}
    assert get(url, "/images", channel="AIA171", time=TIMES[N2010 + 4]).status_code == 200
