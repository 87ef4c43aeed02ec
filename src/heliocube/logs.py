"""Job logs: where a workflow job's log lines, warnings and failure go, also when the disk is full.

Every ``scripts/*.py`` adapter runs its job inside :func:`job_log`. The log file lives under ``output_root``, so
when the outputs fill the disk the log is on a full disk too: a traceback written at exit would be lost (Python
then exits with status 120 and an empty log). :func:`job_log` therefore keeps a little space allocated past the
end of the log (Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``), so the last lines still land, and ends a
failed job with one line naming the cause, in the log and on the job's own stderr (Snakemake's console or the
cluster's job output), then a non-zero exit.

:func:`configure_logging` also summarizes warnings: a fault run parsing corrupt headers makes astropy warn once
per garbled card, each message holding the binary garbage, megabytes of it. Each kind of warning (category and
the code line that issues it) is logged once, printable and short, and the job ends with a count per kind.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import faulthandler
import importlib.abc
import importlib.util
import io
import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["STORAGE_ERRNOS", "WarningSummary", "configure_logging", "job_log", "storage_error", "storage_message"]

log = logging.getLogger(__name__)

#: Errors of the storage rather than of the job: no space, quota exceeded, read-only, file size limit.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
#: Bytes kept allocated past the end of a job log, for the lines written once the disk is full.
LOG_RESERVE = 64 * 1024
#: Characters of a warning's message shown (the first time its kind occurs).
WARNING_CHARS = 200
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# ---------------------------------------------------------------------------------------------- warnings
def _printable(text: str, limit: int = WARNING_CHARS) -> str:
    """``text`` on one line of printable ASCII (anything else becomes ``?``), at most ``limit`` characters."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    text = re.sub(r"\?{4,}", "???", "".join(ch if " " <= ch <= "~" else "?" for ch in text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WarningSummary:
    """Python warnings logged once per kind (category and issuing line), counted, and summed up at the end.

    Installed by :func:`configure_logging` as ``warnings.showwarning``. The filters still decide which warnings
    are shown (Python's default shows each distinct message once per line); this only decides how.
    """

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("heliocube.warnings")
        self.counts: collections.Counter = collections.Counter()
        self._previous = None

    def showwarning(self, message, category, filename, lineno, file=None, line=None) -> None:
        kind = (category.__name__, filename, lineno)
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            self.logger.warning("%s (%s:%d): %s [further ones of this kind are counted, not shown]",
                                category.__name__, _source(filename), lineno, _printable(message))

    def install(self) -> WarningSummary:
        self._previous = warnings.showwarning
        warnings.showwarning = self.showwarning
        return self

    def uninstall(self) -> None:
        if warnings.showwarning == self.showwarning:
            warnings.showwarning = self._previous

    def log_summary(self) -> None:
        """One line per kind of warning that occurred more than once: how many there were."""
        for (category, filename, lineno), count in self.counts.most_common():
            if count > 1:
                self.logger.warning("%s (%s:%d): %d warnings of this kind in this job", category,
                                    _source(filename), lineno, count)


def _source(filename: str) -> str:
    """The short form of a warning's file name: from the package directory on (``astropy/io/fits/card.py``)."""
    parts = Path(filename).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor):])
    return Path(filename).name


def _quiet_astropy_logger() -> None:
    """Let astropy's warnings reach :class:`WarningSummary`, and its log lines reach the root logger only once.

    At import astropy takes over ``warnings.showwarning`` (logging each AstropyWarning through its own logger,
    which has its own handler *and* propagates to the root logger: every line twice). This undoes that right after
    astropy is imported (:class:`_AfterAstropyImport`), or now when it already is.
    """
    import astropy
    from astropy.logger import LoggingError

    if astropy.log.warnings_logging_enabled():
        with contextlib.suppress(LoggingError):  # someone else (pytest) already took warnings.showwarning over
            astropy.log.disable_warnings_logging()
    for handler in list(astropy.log.handlers):
        astropy.log.removeHandler(handler)


class _AfterAstropyImport(importlib.abc.MetaPathFinder):
    """Runs :func:`_quiet_astropy_logger` as soon as astropy's own import is done, so that a job that never
    imports astropy (cube, sync) does not pay its ~0.15 s CPU at start for a logger it never uses."""

    def find_spec(self, name, path=None, target=None):
        if name != "astropy":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the finders after this one find the real spec
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _quiet_astropy_logger()

            spec.loader.exec_module = exec_module
        return spec


def _quiet_astropy_logger_when_imported() -> None:
    if "astropy" in sys.modules:
        _quiet_astropy_logger()
    elif not any(isinstance(finder, _AfterAstropyImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterAstropyImport())


def configure_logging(level: int = logging.INFO, handler: logging.Handler | None = None) -> WarningSummary:
    """Log lines with time and module through ``handler`` (default: to ``sys.stderr``, which the job points at its
    log), and summarize warnings.

    Returns
    -------
    WarningSummary
        The installed warnings handler; call its ``log_summary()`` when the job ends (:func:`job_log` does).
    """
    logging.basicConfig(level=level, format=_FORMAT, handlers=[handler or logging.StreamHandler(sys.stderr)],
                        force=True)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its debug lines would carry full query strings
    _quiet_astropy_logger_when_imported()
    return WarningSummary().install()


# ---------------------------------------------------------------------------------------------- storage errors
def storage_error(exc: BaseException | None) -> OSError | None:
    """The first storage failure (see :data:`STORAGE_ERRNOS`) in ``exc`` or its causes, as an ``OSError``; else None.

    HDF5 reports a failed write as text (``RuntimeError("... errno = 28, error message = 'No space left on
    device' ...")`` from h5py), so an errno in that form counts too.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        found = re.search(r"\berrno = (\d+)", str(exc))
        if found and int(found.group(1)) in STORAGE_ERRNOS:
            number = int(found.group(1))
            return OSError(number, os.strerror(number), _path_in_text(str(exc)))
        exc = exc.__cause__ or exc.__context__
    return None


def _path_in_text(text: str) -> str | None:
    # HDF5 (h5py) names the file only inside its message: "... filename = '/x/.2010.h5.partial-1', ..."
    found = re.search(r"filename = '([^']+)'", text)
    return found.group(1) if found else None


def _written_file(err: OSError) -> str | None:
    """The name of the file being written where ``err`` arose: a write to an open file object raises without a
    file name, so look at the innermost frames' open-for-writing files (``out`` in ``out.write(block)``)."""
    frames, tb = [], err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            name, mode = getattr(value, "name", None), getattr(value, "mode", "")
            if isinstance(value, io.IOBase) and isinstance(name, str) and any(c in str(mode) for c in "wax+"):
                return name
    return None


def _path_of(err: OSError) -> str | None:
    if err.filename is not None:
        return os.fsdecode(err.filename)
    return _path_in_text(str(err)) or _written_file(err)


def _free_space(path: str | None) -> str:
    """``" (N MiB free on that file system)"`` for the nearest existing directory of ``path``; "" if unknown."""
    directory = Path(path).parent if path else None
    while directory is not None and not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    try:
        free = shutil.disk_usage(directory).free if directory else None
    except OSError:
        free = None
    return "" if free is None else f" ({free / 2**20:.1f} MiB free on that file system)"


def storage_message(err: OSError) -> str:
    """One line naming a storage failure: what happened, to which file, and what to do."""
    reason = os.strerror(err.errno)
    path = _path_of(err)
    where = f"while writing {path}" if path else f"({_printable(err, 300)})"
    advice = {errno.EROFS: "make it writable", errno.EFBIG: "raise the file size limit (ulimit -f)"}
    return (f"heliocube: {reason} {where}{_free_space(path)}; "
            f"{advice.get(err.errno, 'free space there')} and run the same command again")


# ---------------------------------------------------------------------------------------------- the log file
class _Reserve:
    """Space kept allocated past the end of an open file (``FALLOC_FL_KEEP_SIZE``), so writes land on a full disk.

    Linux only, and only on file systems that implement it (ext4, xfs, btrfs, tmpfs...); elsewhere a no-op.
    """

    _KEEP_SIZE = 0x01  # FALLOC_FL_KEEP_SIZE, linux/falloc.h

    def __init__(self, fd: int, size: int = LOG_RESERVE):
        self.fd, self.size, self.until = fd, size, 0
        self._fallocate = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                self._fallocate = ctypes.CDLL(None, use_errno=True).fallocate
                self._fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        self.extend()

    def extend(self) -> None:
        """Keep at least half the reserve allocated past the current end."""
        if self._fallocate is None:
            return
        end = os.fstat(self.fd).st_size
        if end + self.size // 2 <= self.until:
            return
        if self._fallocate(self.fd, self._KEEP_SIZE, end, self.size) == 0:
            self.until = end + self.size
        elif ctypes.get_errno() in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            self._fallocate = None  # not on this file system: do without

    def release(self) -> None:
        """Give the space past the end back (truncating at the current size frees what ``KEEP_SIZE`` took)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, os.fstat(self.fd).st_size)


class _LogHandler(logging.StreamHandler):
    """A stream handler that keeps the log's reserve ahead of its end and never fails the job over a lost line."""

    def __init__(self, stream, reserve: _Reserve):
        super().__init__(stream)
        self.reserve = reserve

    def flush(self) -> None:
        super().flush()
        self.reserve.extend()

    def handleError(self, record) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)
        # an OSError here is the full disk itself: the job's own error will say so


class _UnraisableStorageErrors:
    """``sys.unraisablehook`` of a job: a storage failure in a destructor (h5py closing a file on a full disk) is
    named at once, since the crash that may follow in C code leaves no exception to name it; the same error
    repeated is shown three times, then only counted."""

    SHOWN = 3

    def __init__(self, say, previous):
        self.say, self.previous, self.counts = say, previous, collections.Counter()

    def __call__(self, unraisable) -> None:
        storage = storage_error(unraisable.exc_value)
        if storage is not None:
            self.say(storage_message(storage))
        kind = (type(unraisable.exc_value).__name__, str(unraisable.object)[:200])
        self.counts[kind] += 1
        if self.counts[kind] <= self.SHOWN:
            self.previous(unraisable)


@contextlib.contextmanager
def job_log(path: str | os.PathLike, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Run a job's body with its log at ``path``; a failure ends the job with one line naming the cause.

    ``sys.stderr`` points at the log (so do fatal-error tracebacks, :mod:`faulthandler`) while the block runs,
    log lines and warnings go there as :func:`configure_logging` sets them up, and the warnings are summed up at
    the end. An exception from the block is logged with its traceback, then named in one line, last in the log
    and on the job's original stderr, and the job exits with status 1. A storage failure (no space, quota,
    read-only file system, file size limit) anywhere in the exception's chain is named as such, with the file.

    Yields
    ------
    logging.Logger
        The job's logger.

    Raises
    ------
    SystemExit
        With status 1, when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    reserve = _Reserve(stream.fileno())
    console, root = sys.stderr, logging.getLogger()
    previous_handlers, faults_enabled = root.handlers[:], faulthandler.is_enabled()
    sys.stderr = stream
    faulthandler.enable(stream, all_threads=True)  # a crash in C code (h5py on a full disk) leaves its traceback
    summary = configure_logging(level, _LogHandler(stream, reserve))
    job = logging.getLogger("heliocube.job")
    said: set[str] = set()

    def say(line: str) -> None:
        """The failure's one line, last in the log so far and on the job's own stderr (each line once)."""
        if line not in said:
            said.add(line)
            job.error("%s", line)
            with contextlib.suppress(OSError, ValueError):
                print(line, file=console, flush=True)

    previous_unraisable = sys.unraisablehook
    sys.unraisablehook = _UnraisableStorageErrors(say, previous_unraisable)
    try:
        yield job
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        storage = storage_error(exc)
        job.error("the job failed", exc_info=exc)
        say(storage_message(storage) if storage is not None
            else f"heliocube: job failed: {type(exc).__name__}: {_printable(exc, 500)} (traceback in {path})")
        raise SystemExit(1) from None
    finally:
        sys.unraisablehook = previous_unraisable
        summary.log_summary()
        summary.uninstall()
        faulthandler.disable()
        if faults_enabled:  # as it was (under pytest, for instance)
            faulthandler.enable(sys.__stderr__)
        with contextlib.suppress(OSError):
            stream.flush()
        reserve.release()
        sys.stderr = console
        root.handlers = previous_handlers
        with contextlib.suppress(OSError):
            stream.close()
