"""The code a computation can run, found from the import statements of its source, and one digest of it.

A stored result may be reused only while the code that made it is unchanged (the fetch stage's QC verdicts:
:func:`heliocube.qc.gate.qc_code_digest`). Which modules that is, is read from the source, never listed by hand:
starting from every module of some packages, :func:`import_closure` follows the import statements (an AST scan)
to every module of the same top-level package they can reach, and :func:`code_digest` hashes those files (sorted
paths and contents) with the versions of the installed libraries they import.

What is followed
    Every ``import`` and ``from ... import`` statement wherever it is: at module level, inside functions and
    methods, in ``try``/``except`` and ``if`` blocks; absolute (``heliocube.x``) and relative (``from ..x``).
    ``from P import n`` reaches ``P.n`` when that is a module, and, when ``n`` is one of the names a lazy package
    imports on first use (the ``_HOMES`` table of its ``__init__``, :mod:`heliocube.lazy`), the module that holds
    ``n``. Importing a module runs its packages' ``__init__`` files: they are included.
What is not
    Imports under ``if TYPE_CHECKING:`` (they never run) and dynamic imports (``importlib.import_module`` with a
    computed name): a lazy package's ``__getattr__`` can import every module its table names, and following it
    would take in e.g. ``heliocube.fetch.run`` and through it the download stack, the query stage and the archive
    client, so that any unrelated edit changed the digest. Only the names a module actually imports count.
    Installed libraries are not hashed file by file: their distribution versions are.

This module is itself in the QC's digest (the gate imports it): what it follows decides what the digest holds.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["CodeInputs", "code_digest", "code_inputs", "import_closure", "package_modules"]

#: The directory that holds the heliocube package (``src/`` in a source tree, ``site-packages/`` when installed).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str, base: Path) -> Path | None:
    """The source file of module ``name`` under ``base`` (a package's ``__init__.py``); None if there is none."""
    stem = base.joinpath(*name.split("."))
    for path in (stem / "__init__.py", stem.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def package_modules(package: str, base: Path = SOURCE_ROOT) -> list[str]:
    """Every module of ``package`` and its subpackages, from the files in its directory (sorted): a module counts
    as soon as it exists, before anything imports it."""
    directory = base.joinpath(*package.split("."))
    names = []
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if "__pycache__" not in parts:
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every statement in ``nodes`` and in the blocks nested in them (only statements can import: expressions are
    not descended into, which keeps the scan cheap), except the body of ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            yield from _statements(getattr(node, field, ()))


def _lazy_homes(tree: ast.Module) -> dict[str, str]:
    """A lazy package's table of public names and the submodules holding them (``_HOMES = {...}``), or {}."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_HOMES" for t in node.targets):
            try:
                homes = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in homes.items()} if isinstance(homes, dict) else {}
    return {}


class _Parsed:
    """One module's import statements: the module names they import, and what ``from`` imports take from each."""

    def __init__(self, name: str, path: Path):
        self.path = path
        self.source = path.read_bytes()
        try:
            tree = ast.parse(self.source, filename=str(path))
        except SyntaxError as err:  # a module that cannot be scanned cannot be trusted to be unchanged code
            raise ValueError(f"{path}: cannot read its imports ({err.msg}, line {err.lineno})") from err
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.homes = _lazy_homes(tree) if path.name == "__init__.py" else {}
        self.imports: list[tuple[str, tuple[str, ...]]] = []  # (module, names taken from it)
        for node in _statements(tree.body):
            if isinstance(node, ast.Import):
                self.imports += [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    if node.level - 1 >= len(parts):
                        continue  # beyond the top-level package: it would not import either
                    parts = parts[: len(parts) - (node.level - 1)]
                    module = ".".join([*parts, node.module] if node.module else parts)
                else:
                    module = node.module or ""
                self.imports.append((module, tuple(alias.name for alias in node.names)))


def import_closure(roots: Iterable[str], base: Path = SOURCE_ROOT) -> tuple[dict[str, Path], set[str]]:
    """The modules of the roots' top-level package that the modules ``roots`` can import, and the libraries.

    Parameters
    ----------
    roots : iterable of str
        Dotted module names, all of one top-level package (e.g. ``package_modules("heliocube.qc")``).
    base : path
        The directory holding that package.

    Returns
    -------
    modules : dict of str to Path
        Module name -> source file (sorted by name), for the roots, every module they reach (see the module
        docstring for what is followed) and the ``__init__`` of every package on the way.
    libraries : set of str
        Top-level names of the modules outside the package and outside the standard library that they import.
    """
    modules, libraries = _scan(roots, base)
    return {name: module.path for name, module in modules.items()}, libraries


def _scan(roots: Iterable[str], base: Path) -> tuple[dict[str, _Parsed], set[str]]:
    """:func:`import_closure` with each module's scanned bytes (what is hashed is what was scanned)."""
    roots = list(roots)
    top = roots[0].partition(".")[0] if roots else ""
    files: dict[str, Path | None] = {}
    parsed: dict[str, _Parsed] = {}
    done: set[str] = set()
    libraries: set[str] = set()
    todo = list(roots)

    def file_of(name: str) -> Path | None:
        if name not in files:
            files[name] = _module_file(name, base)
        return files[name]

    def module(name: str) -> _Parsed | None:
        if name not in parsed and file_of(name) is not None:
            parsed[name] = _Parsed(name, file_of(name))
        return parsed.get(name)

    def reach(name: str) -> bool:
        """Queue ``name`` and its packages; whether ``name`` is a module of the package."""
        parts = name.split(".")
        for prefix in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if prefix not in done and file_of(prefix) is not None:
                todo.append(prefix)
        return file_of(name) is not None

    while todo:
        name = todo.pop()
        if name in done or module(name) is None:
            continue
        done.add(name)
        reach(name)  # its packages
        for imported, names in parsed[name].imports:
            head = imported.partition(".")[0]
            if head != top:
                if head and head not in sys.stdlib_module_names:
                    libraries.add(head)
                continue
            reach(imported)
            for taken in names:
                if taken == "*" or reach(f"{imported}.{taken}"):
                    continue
                package = module(imported)
                if package is not None and taken in package.homes:
                    reach(f"{imported}.{package.homes[taken]}")
    return {name: parsed[name] for name in sorted(done)}, libraries


def _version(library: str) -> str:
    """The installed version of a library by its import name (its distribution's, else its ``__version__``)."""
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:  # another distribution name (cv2: opencv-python-headless)
        version = getattr(importlib.import_module(library), "__version__", None)
    if version is None:
        raise LookupError(f"no version found for library {library!r}: a code digest cannot tell another build")
    return str(version)


class CodeInputs:
    """What :func:`code_digest` hashes: ``files`` (paths relative to the source root, sorted, with their bytes'
    SHA-256) and ``libraries`` (import name -> version, sorted)."""

    def __init__(self, packages: Iterable[str], base: Path = SOURCE_ROOT):
        roots = [name for package in packages for name in package_modules(package, base)]
        modules, libraries = _scan(roots, base)
        self.files = dict(sorted((module.path.relative_to(base).as_posix(), hashlib.sha256(module.source).hexdigest())
                                 for module in modules.values()))
        self.libraries = {library: _version(library) for library in sorted(libraries)}

    def digest(self) -> str:
        what = hashlib.sha256()
        for relative, sha256 in self.files.items():
            what.update(f"{relative}\0{sha256}\n".encode())
        for library, version in self.libraries.items():
            what.update(f"{library} {version}\n".encode())
        return what.hexdigest()


def code_inputs(packages: Iterable[str], base: Path = SOURCE_ROOT) -> CodeInputs:
    """The files and library versions :func:`code_digest` hashes for ``packages``."""
    return CodeInputs(packages, base)


def code_digest(packages: Iterable[str], base: Path = SOURCE_ROOT) -> str:
    """SHA-256 of the source of every module of ``packages`` and of every module of the same top-level package
    they can import (:func:`import_closure`), by sorted path, and of the versions of the libraries they import."""
    return CodeInputs(packages, base).digest()
