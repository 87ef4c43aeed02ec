"""Shared fixtures: the embedded archive on 127.0.0.1 and configs pointing at it."""

from __future__ import annotations

import os

import pytest
import yaml

from heliocube.archive.mission import SyntheticMission
from heliocube.archive.server import ArchiveServer
from heliocube.config import validate_config
from heliocube.query import ArchiveContext
from tests.workflow_runs import DIALECT_PRODUCTS, REPO, VARIANTS, free_port, snakemake, stop_embedded_archive

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

#: Frames the test archive serves: small, so tests are fast; every image size below must divide it.
FRAME = 64


@pytest.fixture(scope="session")
def mission():
    return SyntheticMission(seed=0, frame_size=FRAME)


@pytest.fixture(scope="session")
def clean_mission():
    """The same mission without permanently broken files, for exact comparisons with the ground truth."""
    return SyntheticMission(seed=0, frame_size=FRAME, defect_rates={"corrupt": 0.0, "truncated": 0.0})


@pytest.fixture
def clean_archive(clean_mission):
    with ArchiveServer(clean_mission) as server:
        yield server


@pytest.fixture
def archive(mission):
    """A fresh server (fresh access log, no faults) on an ephemeral port."""
    with ArchiveServer(mission) as server:
        yield server


def demo_config(archive_url: str, root, **overrides) -> dict:
    """A validated demo-mode config that talks to the archive at ``archive_url`` with fast retries."""
    config = {
        "products": ["EIT195"], "date_start": "2010-10-15", "date_finish": "2010-10-16", "image_size": 32,
        "output_root": str(root),
        "archive": {"embedded_url": archive_url, "embedded_frame_size": FRAME},
        "fetch": {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "retries": 2, "timeout_seconds": 10},
        "jsoc": {"poll_seconds": 0.01},
    }
    config.update(overrides)
    return validate_config(config)




def make_context(server, root, **overrides):
    """(config, ArchiveContext) talking to ``server``."""
    config = demo_config(server.url, root, **overrides)
    return config, ArchiveContext.from_config(config, server.url)


@pytest.fixture
def context_for(archive, tmp_path):
    """``context_for(**overrides)`` -> (config, ArchiveContext) against the fixture's archive."""
    return lambda **overrides: make_context(archive, tmp_path / "out", **overrides)


@pytest.fixture
def clean_context_for(clean_archive, tmp_path):
    """Like ``context_for``, against the archive without broken files."""
    return lambda **overrides: make_context(clean_archive, tmp_path / "out", **overrides)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo config on its own port, run once per session (every module asserting on the demo shares it); the
    auto-started archive is stopped afterwards."""
    tmp_path = tmp_path_factory.mktemp("demo")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(products=DIALECT_PRODUCTS, date_start="2010-10-15", date_finish="2010-10-16",
                  output_root="out")
    config["archive"].update(embedded_port=free_port(), embedded_frame_size=64)
    config["image_size"] = 32
    config["variants"] = VARIANTS
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(config_file))
    yield tmp_path, config_file, result
    stop_embedded_archive(tmp_path / "out", config["archive"]["embedded_port"])
