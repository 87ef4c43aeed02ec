"""Safety: what an archive sends cannot steer local paths or the hosts contacted, no shell command is built from
archive strings, and the JSOC email is sent to the archive but never written anywhere.

Everything runs against real components: the embedded archive (sometimes a subclass whose answers point
elsewhere), real drms and requests, and a decoy HTTP server that only counts the connections it receives.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from heliocube import httpclient
from heliocube.archive.server import UNSAFE_NAMES, ArchiveServer, FaultConfig
from heliocube.fetch import fetch_days
from heliocube.fetch.run import raw_file_name
from heliocube.manifest import read_manifest, write_manifest
from heliocube.paths import manifest_path, safe_component
from heliocube.query import write_day_manifests
from heliocube.registry import get_product

from .conftest import FRAME, make_context

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2010, 10, 15)
SIX_HOURS = {"cadence": dt.timedelta(hours=6), "tolerance": dt.timedelta(hours=3), "anchor": DAY}
#: Few candidates per slot: enough when every candidate is expected to be refused.
NARROW = {**SIX_HOURS, "tolerance": dt.timedelta(minutes=30)}


def query_and_fetch(name, config, context, **grid):
    """Query and fetch one day (no neighbour days: fetch needs only the day's own manifest)."""
    root = config["output_root"]
    write_day_manifests(name, [DAY], context, root, Path(root) / f"{name}.index.csv")
    return fetch_days(name, [DAY], context, root, **(grid or SIX_HOURS))


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")}


class Decoy:
    """An HTTP server nothing should contact: it counts every connection and answers 404."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.connections = 0
        self.paths: list[str] = []
        decoy = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self):
                decoy.connections += 1
                super().setup()

            def do_GET(self):
                decoy.paths.append(self.path)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, format, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> Decoy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def decoy():
    with Decoy() as server:
        yield server


class RedirectingArchive(ArchiveServer):
    """The embedded archive with answers that lead elsewhere.

    ``export_name(filename)`` rewrites each file name of a JSOC export answer, ``export_dir(dir)`` the directory
    of a finished ``url`` export, ``listing_href(path, href)`` each link of an SDAC listing, and
    ``file_redirect(path)`` turns every SDAC file answer into a 302 to the returned location.
    """

    def __init__(self, mission, *, export_name=None, export_dir=None, listing_href=None, file_redirect=None):
        super().__init__(mission)
        self.export_name, self.export_dir = export_name, export_dir
        self.listing_href, self.file_redirect = listing_href, file_redirect

    def _export_data(self, params, name_of):
        if self.export_name is None:
            return super()._export_data(params, name_of)
        return super()._export_data(params, lambda row, segment: self.export_name(name_of(row, segment)))

    def _export_status(self, requestid):
        answer = super()._export_status(requestid)
        if self.export_dir is not None and "dir" in answer:
            answer["dir"] = self.export_dir(answer["dir"])
        return answer

    def _sdac(self, path, headers):
        response = super()._sdac(path, headers)
        if self.listing_href is not None and response.content_type == "text/html" and response.status == 200:
            response.body = re.sub(rb'href="([A-Za-z0-9][^"]*)"', lambda m: b'href="%s"' % self.listing_href(
                path, m.group(1).decode()).encode(), response.body)
        if self.file_redirect is not None and response.content_type == "application/fits":
            response.status, response.body = 302, b""
            response.headers = {"Location": self.file_redirect(path)}
            response.cut_at = None
        return response


# --------------------------------------------------------------------------------------------------------------
# 1. Names from an archive cannot leave the output tree
# --------------------------------------------------------------------------------------------------------------

#: Where the names the archive offers would land if they were joined into a path.
UNSAFE_BASENAMES = {Path(name).name for name in UNSAFE_NAMES}  # x.fits, path.fits


@pytest.mark.parametrize("name", ["EIT195", "LASCO_C2", "AIA171"])
def test_unsafe_names_served_by_the_archive_never_become_files(name, clean_archive, tmp_path, caplog):
    """The archive lists ``../../etc/x.fits`` and ``/abs/path.fits`` in every SDAC listing and every JSOC export
    answer. They are refused where they arrive (SDAC: a listing entry that is not a plain file name, with a
    warning; JSOC: an export row for a record that was not asked for, with a warning), so they are never
    candidates, never requested and never written; every real slot still fills."""
    clean_archive.faults = FaultConfig(unsafe_names=True)
    root = tmp_path / "a" / "b" / "c" / "out"  # parents the test owns, so an escape of a few levels is seen
    config, context = make_context(clean_archive, root, products=[name])
    root.parent.mkdir(parents=True)
    (root.parent.parent / "sentinel").mkdir()
    before = files_under(tmp_path)
    outside_before = {p: p.exists() for p in (Path("/abs"), Path("/abs/path.fits"), Path("/etc/x.fits"))}
    caplog.set_level(logging.WARNING)

    slots, ledger = query_and_fetch(name, config, context)

    assert (slots["status"] == "ok").all() and ledger.empty
    new = files_under(tmp_path) - before
    assert new and all(p.is_relative_to(root) for p in new), sorted(p for p in new if not p.is_relative_to(root))
    assert not [p for p in new if p.is_symlink()]
    assert all(p.resolve().is_relative_to(root.resolve()) for p in new)
    assert not [p for p in tmp_path.rglob("*") if p.name in UNSAFE_BASENAMES or p.name in ("etc", "abs")]
    assert {p: p.exists() for p in outside_before} == outside_before
    # never candidates: no manifest row, no receipt entry names them
    manifest = read_manifest(manifest_path(root, name, DAY))
    assert len(manifest) > 0
    assert not [r for r in manifest["record_id"] if ".." in r or r.startswith("/") or "unsafe" in r]
    receipts = " ".join(p.read_text() for p in root.rglob("*.receipt.json"))
    assert not any(unsafe in receipts for unsafe in (*UNSAFE_NAMES, *UNSAFE_BASENAMES, "unsafe["))
    # never even requested
    asked = [entry["path"] for entry in clean_archive.access_log]
    assert not [p for p in asked if p.endswith(tuple(UNSAFE_BASENAMES))]
    # refused at the door, and said so
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    if get_product(name).is_jsoc:
        assert any("unsafe[0]" in w and "not asked for" in w for w in warnings)
        assert any("unsafe[1]" in w and "not asked for" in w for w in warnings)
        assert any("jsoc_fetch" in p for p in asked)  # the answers with the unsafe rows were received
    else:
        for unsafe in UNSAFE_NAMES:
            assert any(repr(unsafe) in w and "refused" in w for w in warnings), (unsafe, warnings)


def test_unsafe_listing_really_offers_the_names(clean_archive):
    """The fault the test above relies on is served (so the refusals above are not vacuous)."""
    clean_archive.faults = FaultConfig(unsafe_names=True)
    text = requests.get(clean_archive.sdac_url + "eit/lz/2010/10/", timeout=10).text
    assert all(f'href="{name}"' in text for name in UNSAFE_NAMES)


REFUSED_COMPONENTS = ["..", ".", "", "../x.fits", "../../etc/x.fits", "/abs/path.fits", "a/b.fits", "a\\b.fits",
                      "..\\..\\x.fits", "C:\\x.fits", ".hidden", ".x.fits.partial", "x\x00.fits", "x.fits\n",
                      "\nx.fits", "x.fits\r", "a..b", " x.fits", "x .fits", "~", "~root", "x" * 250,
                      "http://evil.example/x.fits", "//evil.example/x.fits", "%2e%2e", "x.fits?y", "\u2024\u2024",
                      "\uff0e\uff0e", "x\u00e9.fits"]


@pytest.mark.parametrize("name", REFUSED_COMPONENTS)
def test_safe_component_refuses_anything_but_a_plain_name(name):
    with pytest.raises(ValueError, match="unsafe"):
        safe_component(name)


@pytest.mark.parametrize(("name", "record_id"), [
    ("EIT195", "eit/lz/2010/10/.."),
    ("EIT195", "eit/lz/2010/10/.hidden"),
    ("EIT195", "eit\\lz\\..\\..\\x.fits"),
    ("EIT195", "eit/lz/x\x00.fits"),
    ("EIT195", "eit/lz/x.fits\n"),
    ("EIT195", "/"),
    ("EIT195", ""),
    ("LASCO_C2", "lasco_level05/101015/c2/..\\..\\22000001.fts"),
    ("AIA171", "../../etc[2010-10-15T00:00:00Z][171]"),  # the series part carries separators
    ("AIA171", "/abs[2010-10-15T00:00:00Z][171]"),
    ("AIA171", "aia.lev1_euv_12s[..][171]"),  # stripped parts leave ".." in the joined name
    ("AIA171", "aia.lev1_euv_12s"),  # no record part at all
    ("AIA171", ".aia[1]"),
    ("HMI_720s", "hmi.M_720s\n[2010.10.15_00:00:00_TAI]"),
])
def test_raw_file_name_refuses_records_that_would_not_be_a_plain_name(name, record_id):
    with pytest.raises(ValueError):
        raw_file_name(get_product(name), record_id)


def test_raw_file_name_keeps_only_a_plain_last_component():
    """An SDAC record id is a path on the archive; locally only its last component counts, so a record id with
    ``..`` or an absolute path still names a file inside the day's directory."""
    eit, aia = get_product("EIT195"), get_product("AIA171")
    assert raw_file_name(eit, "../../etc/x.fits") == "x.fits"
    assert raw_file_name(eit, "/abs/path.fits") == "path.fits"
    with pytest.raises(ValueError):  # "/" and ":" are stripped, but the ".." left over is refused
        raw_file_name(aia, "aia.lev1_euv_12s[2011-02-15T00:00:12Z/../..][171]")
    assert raw_file_name(aia, "aia.lev1_euv_12s[2011-02-15T00:00:12Z][171]") == (
        "aia.lev1_euv_12s.2011-02-15T000012Z.171.image.fits")


#: A root the property tests join names to (never created: resolve() works on paths that do not exist).
PROPERTY_ROOT = Path(tempfile.gettempdir(), "heliocube-safety-root", "raw", "P", "2010", "2010-10-15")
PIECES = st.sampled_from(["..", ".", "/", "\\", "\x00", "\n", "\r", "~", ":", "a", "x.fits", "etc", "[", "]", "{",
                          "}", "%2e", "C:", " ", "\u2024", "\uff0e", "_", "-", "+", "9"])
NAMES = st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=14).map("".join))
JSOC_IDS = st.one_of(NAMES, st.tuples(NAMES, NAMES, NAMES).map(lambda t: f"{t[0]}[{t[1]}][{t[2]}]"))


def assert_plain_and_inside(name: str) -> None:
    """``name`` is a plain file name and, joined to the root, resolves to a direct child of the root."""
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name) and ".." not in name, repr(name)
    target = (PROPERTY_ROOT / name).resolve()
    assert target.parent == PROPERTY_ROOT.resolve() and target.name == name


@settings(max_examples=400, deadline=None)
@given(NAMES)
def test_any_string_is_refused_or_stays_inside_the_root(name):
    try:
        safe = safe_component(name)
    except ValueError:
        return
    assert safe == name
    assert_plain_and_inside(safe)


@settings(max_examples=300, deadline=None)
@given(st.one_of(NAMES, st.lists(NAMES, max_size=5).map("/".join)), JSOC_IDS)
def test_any_record_id_is_refused_or_names_a_file_inside_the_root(sdac_id, jsoc_id):
    for product, record_id in ((get_product("EIT195"), sdac_id), (get_product("AIA171"), jsoc_id)):
        try:
            local = raw_file_name(product, record_id)
        except ValueError:
            continue
        assert_plain_and_inside(local)


# --------------------------------------------------------------------------------------------------------------
# 2. Only the configured hosts are contacted
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "base", "same"), [
    ("http://127.0.0.1:8769/SUM1/x.fits", "http://127.0.0.1:8769/", True),
    ("HTTP://127.0.0.1:8769/x", "http://127.0.0.1:8769/", True),
    ("https://umbra.nascom.nasa.gov/pub/eit/x", "https://umbra.nascom.nasa.gov:443/pub/", True),
    ("http://jsoc.stanford.edu/SUM1/x", "http://jsoc.stanford.edu/", True),
    ("http://127.0.0.1:8770/x", "http://127.0.0.1:8769/", False),  # another port
    ("http://127.0.0.2:8769/x", "http://127.0.0.1:8769/", False),  # another address
    ("https://127.0.0.1:8769/x", "http://127.0.0.1:8769/", False),  # another scheme
    ("http://evil.example/x.fits", "http://jsoc.stanford.edu/", False),
    ("http://jsoc.stanford.edu.evil.example/x", "http://jsoc.stanford.edu/", False),
    ("http://jsoc.stanford.edu@evil.example/x", "http://jsoc.stanford.edu/", False),  # userinfo trick
    ("http://evil.example\\@jsoc.stanford.edu/x", "http://jsoc.stanford.edu/", False),  # parser confusion
    ("http://jsoc.stanford.edu:99999/x", "http://jsoc.stanford.edu/", False),  # not a port
    ("http://jsoc.stanford.edu/x\nHost: evil", "http://jsoc.stanford.edu/", False),
    ("ftp://jsoc.stanford.edu/x", "ftp://jsoc.stanford.edu/", False),  # only http(s)
    ("/SUM1/x.fits", "http://jsoc.stanford.edu/", False),  # relative: never used unresolved
    ("file:///etc/passwd", "http://jsoc.stanford.edu/", False),
])
def test_same_origin(url, base, same):
    assert httpclient.same_origin(url, base) is same


@pytest.mark.parametrize("where", ["other-port", "other-address", "userinfo", "named-host", "export-dir"])
def test_jsoc_export_urls_to_another_host_are_never_fetched(where, clean_mission, tmp_path, decoy):
    """An export answer whose file (or, for a staged ``url`` export, whose directory) lies on another host:
    every such candidate ends as a ``foreign_host`` ledger row, the other host gets no connection, and nothing
    is downloaded from anywhere."""
    with contextlib.ExitStack() as stack:
        archive = stack.enter_context(RedirectingArchive(clean_mission))
        watched = [decoy]
        if where == "other-address":  # the archive's own port, on another loopback address
            # all of 127.0.0.0/8 is loopback on Linux: binding it cannot fail here
            watched.append(stack.enter_context(Decoy("127.0.0.2", archive.port)))
        foreign = {"other-port": decoy.url, "userinfo": f"http://127.0.0.1:{archive.port}@127.0.0.1:{decoy.port}/",
                   "named-host": "http://evil.example/", "other-address": f"http://127.0.0.2:{archive.port}/"}
        jsoc = {}
        if where == "export-dir":
            archive.export_dir = lambda directory: decoy.url.rstrip("/") + directory
            jsoc = {"jsoc": {"protocol": "fits", "poll_seconds": 0.01}}
        else:
            archive.export_name = lambda name: foreign[where] + name.lstrip("/")
        config, context = make_context(archive, tmp_path / "out", products=["HMI_720s"], **jsoc)
        slots, ledger = query_and_fetch("HMI_720s", config, context, **NARROW)
    assert [server.connections for server in watched] == [0] * len(watched) and decoy.paths == []
    assert (slots["status"] == "failed").all()
    assert len(ledger) >= len(slots) and set(ledger["reason"]) == {"foreign_host"}
    assert all("not on the configured archive" in d for d in ledger["detail"])
    assert not [e for e in archive.access_log if e["path"].startswith("/SUM")]  # not from the archive either
    assert not list((tmp_path / "out").rglob("*.fits")) and not list((tmp_path / "out").rglob(".*.partial"))


@pytest.mark.parametrize("name", ["EIT195", "LASCO_C2"])
@pytest.mark.parametrize("form", ["absolute", "scheme-relative"])
def test_sdac_listing_links_to_another_host_are_never_followed(name, form, clean_mission, tmp_path, decoy, caplog):
    """A listing whose links point at another host lists nothing: every such link is refused with a warning,
    no header or file is read from anywhere, and the day's slots are empty."""
    prefix = decoy.url if form == "absolute" else f"//127.0.0.1:{decoy.port}/"
    caplog.set_level(logging.WARNING)
    with RedirectingArchive(clean_mission, listing_href=lambda path, href: prefix + "sdac/" + path + href) as archive:
        config, context = make_context(archive, tmp_path / "out", products=[name])
        slots, ledger = query_and_fetch(name, config, context, **NARROW)
    assert decoy.connections == 0
    assert len(read_manifest(manifest_path(config["output_root"], name, DAY))) == 0
    assert (slots["status"] == "empty").all() and ledger.empty
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all(prefix in message for message in refused)
    assert all(e["path"].endswith("/") for e in archive.access_log)  # only listings were read


def test_an_sdac_redirect_to_another_host_is_not_followed(clean_mission, tmp_path, decoy):
    """Every LASCO file answers 302 to another host: the redirect is refused (``foreign_host``), not followed."""
    redirect = lambda path: decoy.url + "sdac/" + path  # noqa: E731
    with RedirectingArchive(clean_mission, file_redirect=redirect) as archive:
        config, context = make_context(archive, tmp_path / "out", products=["LASCO_C2"])
        slots, ledger = query_and_fetch("LASCO_C2", config, context, **NARROW)
    assert decoy.connections == 0
    assert (slots["status"] == "failed").all() and set(ledger["reason"]) == {"foreign_host"}
    assert all("redirects to another host" in detail for detail in ledger["detail"])
    redirected = [e for e in archive.access_log if e["status"] == 302]
    assert len(redirected) == len(ledger)  # each refused once, no retries of a refusal
    assert not list((tmp_path / "out").rglob("*.fts")) and not list((tmp_path / "out").rglob(".*.partial"))


def test_redirects_on_the_same_host_are_still_followed_and_others_refused(clean_archive, tmp_path, decoy):
    session = httpclient.new_session(2)
    policy = make_context(clean_archive, tmp_path / "out")[1].policy
    # the embedded archive answers a directory without its slash with a 301 to the same host
    response = httpclient.get(session, clean_archive.sdac_url + "eit/lz/2010/10", policy, 10)
    assert response.history and response.history[0].status_code == 301 and "efz20101015" in response.text
    with Decoy() as redirector:  # a second local server whose only answer is a 302 to the decoy
        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", decoy.url + "x.fits")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        redirector.httpd.RequestHandlerClass = Redirect
        with pytest.raises(httpclient.ForeignHost):
            httpclient.get(session, redirector.url + "x.fits", policy, 10)
    assert decoy.connections == 0


def test_a_manifest_url_to_another_host_is_refused_at_fetch(clean_archive, tmp_path, decoy):
    """The host check is where URLs are used, so a manifest (or receipt) that names another host is refused too."""
    config, context = make_context(clean_archive, tmp_path / "out", products=["LASCO_C2"])
    root = config["output_root"]
    write_day_manifests("LASCO_C2", [DAY], context, root, Path(root) / "index.csv")
    path = manifest_path(root, "LASCO_C2", DAY)
    manifest = read_manifest(path)
    manifest["url"] = [decoy.url + "sdac/" + r for r in manifest["record_id"]]
    path.unlink()
    write_manifest(manifest, path)
    slots, ledger = fetch_days("LASCO_C2", [DAY], context, root, **NARROW)
    assert decoy.connections == 0
    assert (slots["status"] == "failed").all() and set(ledger["reason"]) == {"foreign_host"}


# --------------------------------------------------------------------------------------------------------------
# 3. No shell command is built from archive strings
# --------------------------------------------------------------------------------------------------------------

PYTHON_SOURCES = sorted([*(REPO / "src" / "heliocube").rglob("*.py"), *(REPO / "scripts").glob("*.py")])
RULE_FILES = sorted([REPO / "Snakefile", *(REPO / "rules").glob("*.smk")])
#: Calls that hand a string to a shell (or replace the process): none may exist.
SHELL_CALLS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput", "pty.spawn",
               "asyncio.create_subprocess_shell", "commands.getoutput", "platform.popen"}
SHELL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")
SUBPROCESS_CALLS = {"subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
                    "subprocess.check_output", "asyncio.create_subprocess_exec"}
#: The only module that starts a process: the embedded archive's CLI, with a list of config values.
SUBPROCESS_ALLOWED = {"src/heliocube/archive/cli.py"}


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _calls(tree: ast.Module):
    """(dotted name, call node) of every call, with ``import x as y`` / ``from x import y`` resolved."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield _dotted(node.func, aliases), node


def test_no_shell_is_ever_started_and_processes_get_argument_lists():
    assert len(PYTHON_SOURCES) > 20  # the scan sees the package
    found_subprocess = set()
    for path in PYTHON_SOURCES:
        rel = str(path.relative_to(REPO))
        tree = ast.parse(path.read_text(), filename=rel)
        lists = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.List | ast.Tuple)
                 for t in n.targets if isinstance(t, ast.Name)}
        for name, call in _calls(tree):
            where = f"{rel}:{call.lineno}"
            assert not [k for k in call.keywords if k.arg == "shell"], f"shell= at {where}"
            assert name not in SHELL_CALLS and not (name or "").startswith(SHELL_PREFIXES), f"{name} at {where}"
            assert name not in ("eval", "exec", "compile", "pickle.loads", "marshal.loads"), f"{name} at {where}"
            if name in SUBPROCESS_CALLS:
                found_subprocess.add(rel)
                argv = call.args[0] if call.args else None
                assert isinstance(argv, ast.List | ast.Tuple) or (isinstance(argv, ast.Name) and argv.id in lists), (
                    f"{where}: a process must get an argument list")
    assert found_subprocess <= SUBPROCESS_ALLOWED, found_subprocess


def test_the_archive_cli_builds_its_command_from_config_values_only():
    """The one process the package starts: its argv holds the interpreter, fixed words and config values."""
    tree = ast.parse((REPO / "src/heliocube/archive/cli.py").read_text())
    (command,) = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "command" for t in n.targets)]
    used = {n.id for n in ast.walk(command) if isinstance(n, ast.Name)}
    assert used <= {"sys", "parts", "str", "seed", "frame_size", "idle_timeout", "workdir", "stem"}, used


def test_rules_run_scripts_not_shell_commands():
    directives = re.compile(r"^\s+(shell|run|wrapper|notebook|cwl|script):", re.M)
    found = [m.group(1) for path in RULE_FILES for m in directives.finditer(path.read_text())]
    assert found and set(found) == {"script"}, found
    text = "\n".join(path.read_text() for path in [*RULE_FILES, *PYTHON_SOURCES])
    assert "shell(" not in text and "os.system" not in text


# --------------------------------------------------------------------------------------------------------------
# 4. The JSOC email is sent to the archive, never written
# --------------------------------------------------------------------------------------------------------------

CANARY = "canary-7f3a9c@leak-check.invalid"
NEEDLES = (b"canary-7f3a9c", b"leak-check")  # the local part catches every URL encoding of the address


def leaks_in(path: Path) -> list[str]:
    """Files under ``path`` whose bytes contain the address in any encoding."""
    return [str(p) for p in path.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in NEEDLES)]


def sent_addresses(archive) -> list[str]:
    """Queries that carried the address (the archive masks its value in the access log it writes)."""
    entries = [e["query"] for e in archive.access_log if "address=" in e["query"] or "notify=" in e["query"]]
    assert not any("canary-7f3a9c" in q for q in entries)
    return entries


@pytest.mark.parametrize(("name", "protocol"), [("HMI_720s", "as-is"), ("AIA171", "fits")])
def test_jsoc_email_is_sent_but_never_written_or_logged(name, protocol, clean_archive, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # even with every logger at DEBUG
    config, context = make_context(clean_archive, tmp_path / "out", products=[name],
                                   jsoc={"email": CANARY, "protocol": protocol, "poll_seconds": 0.01})
    assert context.email == CANARY and "canary" not in repr(context)
    slots, ledger = query_and_fetch(name, config, context)
    assert (slots["status"] == "ok").all()
    sent = sent_addresses(clean_archive)
    assert any("address=" in q for q in sent)  # checkAddress got it: the archive is told, as it must be
    if protocol == "fits":
        assert any("notify=" in q for q in sent)
    assert leaks_in(tmp_path / "out") == []
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "canary-7f3a9c" not in logged and "leak-check" not in logged
    captured = capfd.readouterr()
    assert "canary-7f3a9c" not in captured.out + captured.err
    assert "canary-7f3a9c" not in slots.to_csv() + ledger.to_csv()


class UnregisteredArchive(ArchiveServer):
    """JSOC refuses the address (status 4: not registered)."""

    def _jsoc(self, cgi, params):
        if cgi == "checkAddress.sh":
            return type(super()._jsoc("show_series", {}))(200, b'{"status": 4, "msg": "not registered"}',
                                                         "application/json")
        return super()._jsoc(cgi, params)


def test_a_refused_email_fails_without_echoing_the_address(clean_mission, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with UnregisteredArchive(clean_mission) as archive:
        config, context = make_context(archive, tmp_path / "out", products=["HMI_720s"], jsoc={"email": CANARY})
        with pytest.raises(ValueError) as failure:
            write_day_manifests("HMI_720s", [DAY], context, config["output_root"], tmp_path / "index.csv")
    assert sent_addresses(archive)
    text = "".join(traceback.format_exception(failure.value)) + caplog.text
    assert "not registered" in text and "canary-7f3a9c" not in text


def test_the_demo_archive_access_log_under_the_output_root_holds_no_address(clean_mission, tmp_path):
    """The demo's auto-started archive writes its access log under the output root (archive.cli.ensure_running):
    with a real address in HELIOCUBE_JSOC_EMAIL, that file would hold it."""
    root = tmp_path / "out"
    log_path = root / "embedded-archive" / "archive-127.0.0.1-0.access.jsonl"
    log_path.parent.mkdir(parents=True)
    with ArchiveServer(clean_mission, access_log_path=log_path) as archive:
        _, context = make_context(archive, root, products=["HMI_720s"], jsoc={"email": CANARY})
        write_day_manifests("HMI_720s", [DAY], context, root, root / "index.csv")
    assert leaks_in(root) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.workflow
def test_jsoc_email_never_reaches_the_workflow_outputs_or_its_console(clean_archive, tmp_path):
    """A whole demo run of one JSOC product (query, fetch, clean, cube, metadata seeding) with the address in
    HELIOCUBE_JSOC_EMAIL: the archive receives it; no file the run writes and no console line holds it."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(products=["HMI_720s"], date_start=DAY.isoformat(), date_finish=DAY.isoformat(), output_root="out",
                  image_size=32, variants=[{"image_size": 32, "resize_method": "mean"}], experiments=[],
                  metadata_seeding={"products": ["HMI_720s"]}, params={}, events=[])
    config["archive"].update(embedded_url=clean_archive.url, embedded_port=_free_port(), embedded_frame_size=FRAME)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--profile", str(REPO / "profiles" / "local"), "--cores", "2", "--configfile", str(config_file)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "HELIOCUBE_JSOC_EMAIL": CANARY}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "out"
    assert list((root / "cubes").rglob("HMI_720s.seeded.h5")) and list((root / "logs").rglob("*.log"))
    assert any("address=" in q for q in sent_addresses(clean_archive))  # the jobs did use it
    assert leaks_in(root) == []  # logs, receipts, manifests, CSVs, HDF5, FITS
    assert leaks_in(tmp_path / ".snakemake") == []  # snakemake's own logs and metadata
    assert "canary-7f3a9c" not in result.stdout + result.stderr
