"""Headless Chromium (Debian's package) for tests that must see a page as a browser renders it.

:func:`ensure_chromium_installed` installs the ``chromium`` package with apt-get when the browser is missing, like
``tests/slurm_cluster.py`` does for SLURM: a machine without root or apt-get skips the test, unless
``HELIOCUBE_REQUIRE_BROWSER`` is set (CI), where it fails instead. :func:`probe_page` loads a copy of a page with a
small inline script that, once the ``load`` event fired (every image decoded or failed), writes what it found into
the DOM, which ``chromium --headless --dump-dom`` prints: no DevTools client library is needed.
:func:`screenshot` renders the page itself to a PNG.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .debian import apt_install

__all__ = ["CHROMIUM_PACKAGES", "ensure_chromium_installed", "probe_page", "screenshot"]

CHROMIUM_PACKAGES = ("chromium",)
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/bin"])

#: Appended before ``</body>`` of the probed copy: after ``load``, every image's decoded width and every section's
#: id, heading and rendered height, as JSON in ``<pre id="hc-probe">``.
PROBE_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images).map(function (img) {
    return {alt: img.alt, loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
            height: img.naturalHeight};
  });
  var sections = Array.from(document.querySelectorAll("section")).map(function (section) {
    var heading = section.querySelector("h2");
    return {id: section.id, title: heading ? heading.textContent : "",
            height: section.getBoundingClientRect().height};
  });
  var out = document.createElement("pre");
  out.id = "hc-probe";
  out.textContent = JSON.stringify({images: images, sections: sections});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str | None:
    return shutil.which("chromium", path=_SEARCH_PATH)


def ensure_chromium_installed(timeout: float = 900) -> str:
    """The path of ``chromium``, installing :data:`CHROMIUM_PACKAGES` with apt-get when it is missing.

    Skips the calling test when the browser is missing and cannot be installed here (not root, no apt-get); fails
    it when apt-get itself fails or ``HELIOCUBE_REQUIRE_BROWSER`` is set, so CI never passes it silently.
    """
    found = _chromium()
    if found:
        return found
    result = apt_install(CHROMIUM_PACKAGES, reason="chromium is missing", require_env="HELIOCUBE_REQUIRE_BROWSER",
                         timeout=timeout)
    found = _chromium()
    if result.returncode != 0 or not found:
        pytest.fail(f"apt-get install {' '.join(CHROMIUM_PACKAGES)} failed (rc {result.returncode}):\n"
                    f"{(result.stdout + result.stderr)[-3000:]}")
    return found


def _run_headless(page: Path, profile: Path, *options: str, timeout: float = 120) -> subprocess.CompletedProcess:
    browser = ensure_chromium_installed()
    # --no-sandbox: the test may run as root in a container, where Chromium's sandbox cannot start; the page is
    # a local file the test wrote. A private profile keeps the user's ~/.config untouched.
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *options, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def probe_page(page: Path, workdir: Path) -> dict:
    """Load a copy of ``page`` with :data:`PROBE_SCRIPT` and return what it found.

    Returns
    -------
    dict
        ``images``: per ``<img>`` its alt text, ``loaded`` (decoded, natural width > 0) and natural size;
        ``sections``: per ``<section>`` its id, ``<h2>`` title and rendered height (CSS px).
    """
    text = page.read_text(encoding="utf-8")
    assert "</body>" in text
    probed = workdir / f"probe-{page.name}"
    probed.write_text(text.replace("</body>", PROBE_SCRIPT + "</body>"), encoding="utf-8")
    # The virtual time budget lets the page finish loading (and the load handler run) before the DOM is printed.
    result = _run_headless(probed, workdir / "chromium-profile", "--virtual-time-budget=20000", "--dump-dom")
    match = re.search(r'<pre id="hc-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert match, f"the probe script did not run; stderr:\n{result.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def screenshot(page: Path, png: Path, workdir: Path, width: int = 1280, height: int = 2400) -> np.ndarray:
    """Render ``page`` in a ``width`` x ``height`` window to ``png``; return its pixels (H, W, channels) in [0, 1]."""
    import matplotlib.image

    _run_headless(page, workdir / "chromium-profile", f"--window-size={width},{height}",
                  f"--screenshot={png}", "--virtual-time-budget=20000")
    return matplotlib.image.imread(png)
