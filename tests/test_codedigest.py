"""The QC verdicts' code digest: every module the QC can import, found from the source, and nothing else.

A stored QC verdict is reused while :func:`heliocube.qc.gate.qc_code_digest` is unchanged; a module that can change a
verdict but is missing from the digest makes a rerun reuse stale verdicts. The end-to-end test edits a copy of the
package in a process of its own (the digest is computed once per process, from the files beside the code).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from heliocube.codedigest import SOURCE_ROOT, code_inputs, import_closure, package_modules
from heliocube.qc.gate import FrameQC
from heliocube.registry import ValidRegion

#: Edits to a copy of the package, each followed by the digest of the copy (a fresh computation, same process).
_EDITING_SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import heliocube
    from heliocube.qc import gate

    package = Path(sys.argv[1])
    assert Path(heliocube.__file__).resolve().parent == package.resolve(), heliocube.__file__

    def digest():
        gate.qc_code_digest.cache_clear()
        return gate.qc_code_digest()

    def append(relative, text):
        path = package / relative
        path.write_text(path.read_text() + text)

    digests = {"before": digest()}
    # reached directly (qc/gate imports Rejection from it), and only through registry.py (its parse_duration)
    append("fetch/gate.py", "\\n# edited\\n")
    digests["fetch/gate.py"] = digest()
    append("timegrid.py", "\\n# edited\\n")
    digests["timegrid.py"] = digest()
    # a new helper that a check imports inside a function, then an edit of that helper alone
    (package / "qchelper.py").write_text("LIMIT = 3\\n")
    append("qc/streaks.py", "\\n\\ndef _limit():\\n    from ..qchelper import LIMIT\\n\\n    return LIMIT\\n")
    digests["streaks imports qchelper"] = digest()
    append("qchelper.py", "LIMIT = 4\\n")
    digests["qchelper.py"] = digest()
    # a new module of the qc package that nothing imports yet
    (package / "qc" / "newcheck.py").write_text("X = 1\\n")
    digests["qc/newcheck.py"] = digest()
    # a module the QC cannot reach
    append("cli.py", "\\n# edited\\n")
    digests["cli.py"] = digest()
    print(json.dumps(digests))
''')


def test_editing_a_module_the_qc_can_reach_changes_the_digest(tmp_path):
    """In a copy of the package: an edit of any module the QC reaches (directly, transitively, through an import
    inside a function, a new module of the qc package) changes the digest; an edit of the CLI does not."""
    package = tmp_path / "heliocube"
    shutil.copytree(SOURCE_ROOT / "heliocube", package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", _EDITING_SCRIPT, str(package)], capture_output=True, text=True,
                            env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    digests = list(json.loads(result.stdout.splitlines()[-1]).items())
    for (_, earlier), (edit, later) in itertools.pairwise(digests[:-1]):
        assert later != earlier, f"the digest did not change with {edit}"
    assert digests[-1] == ("cli.py", digests[-2][1])


def _write(base: Path, relative: str, text: str) -> None:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_the_closure_follows_every_import_statement_and_no_dynamic_import(tmp_path):
    """Module level, inside functions and try blocks, relative and absolute, a lazy package's name (its module
    only); not ``if TYPE_CHECKING:`` blocks nor computed imports. Libraries outside the standard library count."""
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/core/__init__.py", "")
    _write(tmp_path, "pkg/core/a.py", """
        import json
        from typing import TYPE_CHECKING

        import numpy as np

        from .b import VALUE
        from .. import lazy
        from ..lazy import Named

        if TYPE_CHECKING:
            from pkg import hinted
        else:
            import pkg.runtime

        try:
            import pkg.optional
        except ImportError:
            pass


        def f():
            from pkg.deep.c import g  # only when called

            return g


        class K:
            def m(self):
                import importlib

                return importlib.import_module("pkg." + "dynamic")
    """)
    for name in ("core/b", "deep/__init__", "hinted", "runtime", "optional", "dynamic", "lazy/holder",
                 "lazy/unused", "unreached"):
        _write(tmp_path, f"pkg/{name}.py", "VALUE = 1\n")
    _write(tmp_path, "pkg/deep/c.py", "from .d import *\ndef g():\n    pass\n")
    _write(tmp_path, "pkg/deep/d.py", "import scipy.ndimage\n")
    _write(tmp_path, "pkg/lazy/__init__.py", """
        from pkg.lazy_names import lazy_names

        _HOMES = {"Named": "holder", "Other": "unused"}
        __getattr__, __dir__ = lazy_names(__name__, _HOMES)
    """)
    _write(tmp_path, "pkg/lazy_names.py", "import importlib\n")

    modules, libraries = import_closure(package_modules("pkg.core", tmp_path), tmp_path)
    assert sorted(modules) == ["pkg", "pkg.core", "pkg.core.a", "pkg.core.b", "pkg.deep", "pkg.deep.c", "pkg.deep.d",
                               "pkg.lazy", "pkg.lazy.holder", "pkg.lazy_names", "pkg.optional", "pkg.runtime"]
    assert modules["pkg.deep"] == tmp_path / "pkg" / "deep" / "__init__.py"
    assert libraries == {"numpy", "scipy"}


def test_the_qc_digest_holds_the_qc_and_what_it_imports_but_not_the_workflow():
    """The QC's closure in the tree: the modules once listed by hand and the ones they missed (fetch/gate.py for
    Rejection, timegrid.py through the registry), sorted; none of the stages around it (they would make every
    unrelated edit force a new QC of every cached file)."""
    inputs = code_inputs(["heliocube.qc"])
    files = list(inputs.files)
    assert files == sorted(files) and all(len(sha) == 64 for sha in inputs.files.values())
    once_listed = ["qc/checks.py", "qc/comet_tails.py", "qc/frame_region.py", "qc/framework.py", "qc/gate.py",
                   "qc/geometry.py", "qc/streaks.py", "qc/thresholds.py", "frameio.py", "framewrite.py", "rice.py",
                   "header.py", "manifest.py", "registry.py"]  # fmt: skip
    assert {f"heliocube/{name}" for name in [*once_listed, "fetch/gate.py", "timegrid.py"]} <= set(files)
    assert {f"heliocube/{Path(p).relative_to(SOURCE_ROOT / 'heliocube').as_posix()}"
            for p in (SOURCE_ROOT / "heliocube" / "qc").glob("*.py")} <= set(files)
    outside = [name for name in files if name.startswith(("heliocube/fetch/run", "heliocube/fetch/download",
                                                          "heliocube/query/", "heliocube/archive/", "heliocube/cube/",
                                                          "heliocube/events/", "heliocube/clean.py",
                                                          "heliocube/cli.py", "heliocube/jobs.py",
                                                          "heliocube/config.py"))]  # fmt: skip
    assert outside == []
    assert {"numpy", "cv2", "astropy", "sunpy"} <= set(inputs.libraries)
    assert all(inputs.libraries.values())
    assert code_inputs(["heliocube.qc"]).digest() == inputs.digest()


def test_a_changed_registry_entry_changes_the_fingerprint():
    """products.yaml is no module: the product's whole entry (its valid region here) is in the gate's fingerprint."""
    gate, changed = FrameQC("LASCO_C2"), FrameQC("LASCO_C2")
    changed.product = dataclasses.replace(changed.product, valid_region=ValidRegion("annulus", 2.5, 6.0))
    assert changed.fingerprint != gate.fingerprint
    assert FrameQC("LASCO_C2").fingerprint == gate.fingerprint
