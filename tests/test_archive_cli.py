"""The archive CLI in a subprocess (serve/stop, access log written by another process) and ensure_running."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from heliocube.archive.cli import ensure_running, health

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return env


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_and_stop(tmp_path):
    pidfile, log = tmp_path / "archive.pid", tmp_path / "access.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "heliocube.archive",
            "serve",
            "--seed",
            "9",
            "--frame-size",
            "32",
            "--pidfile",
            str(pidfile),
            "--access-log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert int(pidfile.read_text()) == process.pid
        assert health(url) == {"status": "ok", "seed": 9, "frame_size": 32}
        with urllib.request.urlopen(url + "sdac/lasco_level05/040301/c3/img_hdr.txt", timeout=10) as response:
            assert response.read().decode().split()[3] == "C3"
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert [e["path"] for e in entries] == ["/health", "/sdac/lasco_level05/040301/c3/img_hdr.txt"]
        stop = subprocess.run(
            [sys.executable, "-m", "heliocube.archive", "stop", "--pidfile", str(pidfile)], env=_env(), timeout=30
        )
        assert stop.returncode == 0
        assert process.wait(timeout=10) == 0
        assert not pidfile.exists() and health(url, timeout=0.3) is None
    finally:
        if process.poll() is None:
            process.kill()


def test_idle_timeout(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "heliocube.archive", "serve", "--idle-timeout", "1", "--frame-size", "32"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout.readline().startswith("http://")
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_ensure_running_starts_one_server(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/"
    results, errors = [], []

    def call():
        try:
            results.append(ensure_running(url, frame_size=32, seed=4, workdir=tmp_path))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    pidfile = next(tmp_path.glob("archive-*.pid"))
    pid = int(pidfile.read_text())
    try:
        assert not errors and results == [url, url]
        assert health(url)["seed"] == 4
        log = next(tmp_path.glob("archive-*.log")).read_text()
        assert log.count("http://127.0.0.1") == 1  # one server printed its URL
        assert ensure_running(url, frame_size=32, seed=4, workdir=tmp_path) == url  # already up: reused
        with pytest.raises(RuntimeError):
            ensure_running(url, frame_size=64, seed=4, workdir=tmp_path)
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while health(url, timeout=0.2) is not None and time.time() < deadline:
            time.sleep(0.1)
    assert health(url, timeout=0.2) is None


def test_health_of_an_archive_that_cuts_its_answer_short_is_none():
    """An archive stopping part way through its /health answer (headers sent, body cut) is not up: health() says
    None rather than raising http.client.IncompleteRead (seen in a teardown's wait for a stopped archive)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer_cut_short():
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n")

        server = threading.Thread(target=answer_cut_short)
        server.start()
        assert health(f"http://127.0.0.1:{port}/", timeout=5) is None
        server.join(timeout=10)
