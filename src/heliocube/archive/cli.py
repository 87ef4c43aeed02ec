"""Command line of the embedded archive (``python -m heliocube.archive``) and :func:`ensure_running`."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from ..logs import STORAGE_ERRNOS

__all__ = ["add_commands", "ensure_running", "health", "main"]


def health(url: str, timeout: float = 1.0) -> dict | None:
    """The ``/health`` answer of an archive at ``url`` (None when nothing answers, or the answer is cut short: an
    archive stopping part way through its answer is not up)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None


def _serve(args) -> int:
    from .mission import SyntheticMission
    from .network import NetworkModel
    from .server import ArchiveServer

    server = ArchiveServer(
        SyntheticMission(seed=args.seed, frame_size=args.frame_size),
        host=args.host,
        port=args.port,
        access_log_path=args.access_log,
        network=NetworkModel.from_config(json.loads(args.network)) if args.network else None,
        network_stats_path=args.network_stats,
    )
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if args.pidfile:
            Path(args.pidfile).write_text(f"{os.getpid()}\n")
        print(server.url, flush=True)
    except OSError as err:
        server.stop()
        if err.errno in STORAGE_ERRNOS:  # its log is on that disk too: the exit status tells ensure_running
            return err.errno
        raise
    try:
        while not stop.wait(0.2):
            if args.idle_timeout and time.time() - server.last_request > args.idle_timeout:
                print(f"idle for {args.idle_timeout} s: stopping", flush=True)
                break
    finally:
        server.stop()
        if args.pidfile:
            with contextlib.suppress(FileNotFoundError):
                if Path(args.pidfile).read_text().strip() == str(os.getpid()):
                    Path(args.pidfile).unlink()
    return 0


def _stop(args) -> int:
    path = Path(args.pidfile)
    if not path.exists():
        print(f"no pidfile {path}: nothing to stop", file=sys.stderr)
        return 1
    pid = int(path.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return 0
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        if not path.exists():  # the server removes its pidfile as it exits
            time.sleep(0.05)
            return 0
        time.sleep(0.05)
    print(f"archive process {pid} did not stop within {args.timeout} s", file=sys.stderr)
    return 1


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` and ``stop`` subcommands to ``parser``; each sets ``args.func`` to its function."""
    sub = parser.add_subparsers(dest="archive_command", required=True, metavar="{serve,stop}")
    serve = sub.add_parser(
        "serve",
        help="serve the synthetic mission until SIGTERM, Ctrl-C or an idle timeout",
        description="Serve the synthetic SoHO/SDO mission over HTTP in the foreground. The first line on stdout is "
        "the URL to give the workflow as archive.embedded_url.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, any free port)")
    serve.add_argument("--seed", type=int, default=0,
                       help="seed of the synthetic mission: the same seed serves the same files (default: %(default)s)")
    serve.add_argument("--frame-size", type=int, default=256,
                       help="edge of every frame served, in pixels (default: %(default)s)")
    serve.add_argument("--access-log", default=None,
                       help="append one JSON line per request to this file (default: no log)")
    serve.add_argument("--network", default=None,
                       help="network model as JSON, the keys of the config's archive.network (default: none)")
    serve.add_argument("--network-stats", default=None,
                       help="write the network meter's summary (JSON) to this file on exit (default: none)")
    serve.add_argument("--pidfile", default=None,
                       help="write the server's process id to this file, removed on exit (default: none)")
    serve.add_argument("--idle-timeout", type=float, default=0.0,
                       help="stop after this many seconds without a request (default: 0, never)")
    serve.set_defaults(func=_serve)
    stop = sub.add_parser(
        "stop",
        help="stop a server started with --pidfile",
        description="Send SIGTERM to the server whose process id is in PIDFILE and wait for it to exit.",
    )
    stop.add_argument("--pidfile", required=True, help="the pidfile the server was started with")
    stop.add_argument("--timeout", type=float, default=10.0,
                      help="seconds to wait for the server to exit (default: %(default)s)")
    stop.set_defaults(func=_stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m heliocube.archive``: ``serve`` (foreground, URL on the first stdout line) or
    ``stop --pidfile``."""
    parser = argparse.ArgumentParser(
        prog="python -m heliocube.archive",
        description="The embedded archive: a local HTTP server imitating the SDAC and JSOC archives with a "
        "synthetic mission, for the demo and the tests.",
    )
    add_commands(parser)
    args = parser.parse_args(argv)
    return args.func(args)


def ensure_running(
    url: str,
    *,
    frame_size: int,
    seed: int,
    workdir: str | os.PathLike,
    idle_timeout: float = 600.0,
    start_timeout: float = 60.0,
    network: dict | None = None,
) -> str:
    """Make sure an embedded archive answers at ``url`` (fixed host:port), starting one if needed.

    A detached ``python -m heliocube.archive serve`` is spawned (pidfile, log and access log in ``workdir``, idle
    timeout ``idle_timeout``), under an ``fcntl`` lock so concurrent callers start a single server. ``network`` is
    the config's ``archive.network`` (:mod:`heliocube.archive.network`); its meter's summary is written to
    ``workdir/{stem}.network.json`` when the server stops.

    Returns
    -------
    str
        ``url`` once it answers.

    Raises
    ------
    RuntimeError
        When the server answering has another seed, frame size or network model, or when none comes up in
        ``start_timeout``.
    """
    url = url if url.endswith("/") else url + "/"
    parts = urlsplit(url)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stem = f"archive-{parts.hostname}-{parts.port}"
    model = None
    if network:
        from .network import NetworkModel

        model = NetworkModel.from_config(network).as_json()

    def check(answer):
        if answer and (answer.get("seed") != seed or answer.get("frame_size") != frame_size):
            raise RuntimeError(
                f"an archive with seed {answer.get('seed')} and frame size {answer.get('frame_size')} "
                f"already answers at {url}; wanted seed {seed}, frame size {frame_size}"
            )
        if answer and answer.get("network") != model:
            raise RuntimeError(f"an archive with network model {answer.get('network')} already answers at {url}; "
                               f"wanted {model}")
        return answer

    if check(health(url)):
        return url
    with open(workdir / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if check(health(url)):
                return url
            import heliocube

            env = dict(os.environ)
            src = str(Path(heliocube.__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
            env["NO_PROXY"] = ",".join(p for p in ("127.0.0.1,localhost", env.get("NO_PROXY")) if p)
            command = [
                sys.executable,
                "-m",
                "heliocube.archive",
                "serve",
                "--host",
                parts.hostname,
                "--port",
                str(parts.port),
                "--seed",
                str(seed),
                "--frame-size",
                str(frame_size),
                "--idle-timeout",
                str(idle_timeout),
                "--pidfile",
                str(workdir / f"{stem}.pid"),
                "--access-log",
                str(workdir / f"{stem}.access.jsonl"),
            ]
            if model:
                command += ["--network", json.dumps(model), "--network-stats", str(workdir / f"{stem}.network.json")]
            with open(workdir / f"{stem}.log", "ab") as log:
                process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
            deadline = time.time() + start_timeout
            while time.time() < deadline:
                if check(health(url, timeout=0.5)):
                    return url
                if process.poll() is not None:
                    if process.returncode in STORAGE_ERRNOS:  # it could not write its pidfile or log
                        raise OSError(process.returncode, f"the embedded archive cannot write its files: "
                                      f"{os.strerror(process.returncode)}", str(workdir))
                    raise RuntimeError(f"embedded archive exited with {process.returncode}; see {workdir}/{stem}.log")
                time.sleep(0.1)
            raise RuntimeError(f"embedded archive did not answer at {url} within {start_timeout} s")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
