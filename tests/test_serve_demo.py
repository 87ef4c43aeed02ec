"""The seed's three examples (README) against ``heliocube serve`` over the demo's output root: the cubes and the
parameter files the workflow wrote, read through the API, equal what is in the files."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import requests

from heliocube.serve import client as ipg
from heliocube.serve.client import AIA_WAVE, IMAGE_PARAM, IMAGE_SIZE

from .workflow_runs import free_port

WHEN = dt.datetime(2010, 10, 16, 12, 10)


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    """``heliocube serve root`` on a free port, once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "heliocube.cli", "serve", str(root), "--port", str(port),
                                "--log-level", "warning"], env={**os.environ, "NO_PROXY": "127.0.0.1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(base, timeout=5)
            return process, base
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.2)


def check_seed_examples(root: Path) -> None:
    """The README's three examples against ``root``, compared with the files."""
    process, base = serve(root)
    try:
        img = ipg.get_aia_image_jpeg(WHEN, AIA_WAVE.AIA_171, IMAGE_SIZE.P512, base_url=base)
        assert (img.format, img.size) == ("JPEG", (512, 512))
        heatmap = ipg.get_aia_imageparam_jpeg(WHEN, AIA_WAVE.AIA_171, IMAGE_SIZE.P512, IMAGE_PARAM.ENTROPY,
                                              base_url=base)
        assert heatmap.format == "JPEG" and heatmap.width == 512
        xml = ipg.get_aia_imageparam_xml(WHEN, AIA_WAVE.AIA_171, base_url=base)
        res = ipg.convert_param_xml_to_ndarray(xml)
        variant, time_text = xml.get("variant"), xml.get("time")
        with h5py.File(root / "params" / variant / "AIA171" / "2010.h5", "r") as f:
            times = [t.decode() for t in f["frames/obs_time"][()]]
            np.testing.assert_array_equal(res.transpose(1, 0, 2).astype(np.float32),
                                          f["params"][times.index(time_text)])
        assert abs(dt.datetime.fromisoformat(time_text) - WHEN) < dt.timedelta(hours=1)
        header = ipg.get_aia_imageheader_json(WHEN, AIA_WAVE.AIA_171, base_url=base)
        assert header["time"] == time_text and header["DSUN"] > 1.4e11 and header["QUALITY"] == 0
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.workflow
def test_the_seeds_three_examples_against_the_demo(demo_run):
    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    check_seed_examples(workdir / "out")
