"""A throw-away single-node SLURM cluster on 127.0.0.1 for end-to-end tests of the SLURM profile.

:func:`slurm_cluster` installs the Debian packages when the daemons are missing (root and ``apt-get`` needed, else
the test is skipped), writes its own ``slurm.conf`` (found by every SLURM command and daemon through the
``SLURM_CONF`` environment variable, so ``/etc/slurm`` is never touched), starts a private ``munged`` on its own
socket and key, ``slurmctld`` and ``slurmd`` in the foreground as children of the test process, waits until the node
is idle, and yields the environment that points SLURM clients at it. On exit it cancels the cluster's jobs and stops
exactly the processes it started (waiting for each), also when the test failed; the daemons additionally get a
parent-death signal, so even a killed test process does not leave them behind.

The configuration follows the worked recipe (shared/reference/archives-clients-costs.md section 5): no accounting
(``squeue`` is the status command, so ``MinJobAge`` stays at 600 s), no cgroups, and one node ``localhost`` whose
CPUs and memory are what ``slurmd -C`` measures. Ports are chosen free, so two test runs on one machine do not meet.
The yielded ``PATH`` starts with an ``srun`` wrapper that sets ``SLURM_CONF``: the Snakemake jobstep plugin drops
that variable before its ``srun`` inside a job (see ``_Cluster._add_srun_shim``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .debian import apt_install

__all__ = ["SLURM_PACKAGES", "ensure_slurm_installed", "slurm_cluster"]

#: Debian packages giving the daemons, the client commands and munge (the minimum of the recipe).
SLURM_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
#: Commands the cluster and the Snakemake SLURM plugin call.
_COMMANDS = ("slurmctld", "slurmd", "sinfo", "squeue", "sbatch", "srun", "scontrol", "scancel", "munged", "munge",
             "unmunge")
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
_PR_SET_PDEATHSIG = 1

SLURM_CONF_TEMPLATE = """\
# Written by tests/slurm_cluster.py: one node on 127.0.0.1, no accounting, no cgroups.
ClusterName={cluster}
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue for 10 min: without accounting, squeue is how Snakemake sees job states.
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _which(command: str) -> str | None:
    return shutil.which(command, path=_SEARCH_PATH)


def _missing_commands() -> list[str]:
    return [command for command in _COMMANDS if _which(command) is None]


def ensure_slurm_installed(timeout: float = 900) -> None:
    """Install :data:`SLURM_PACKAGES` with apt-get when a SLURM or munge command is missing.

    Skips the calling test when the commands are missing and cannot be installed here (not root, no apt-get);
    fails it when apt-get itself fails, so a CI machine that should run the test never passes it silently.
    """
    missing = _missing_commands()
    if not missing:
        return
    reason = f"SLURM test cluster needs {', '.join(missing)}"
    result = apt_install(SLURM_PACKAGES, reason=reason, require_env="HELIOCUBE_REQUIRE_SLURM", timeout=timeout)
    missing = _missing_commands()
    if result.returncode != 0 or missing:
        pytest.fail(f"apt-get install {' '.join(SLURM_PACKAGES)} failed (rc {result.returncode}, still missing "
                    f"{missing}):\n{(result.stdout + result.stderr)[-3000:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node_hardware() -> str:
    """The node's ``CPUs=... RealMemory=...`` fields as ``slurmd -C`` measures them (slurmd rejects more)."""
    output = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=60,
                            check=True).stdout
    fields = output.split("\n", 1)[0].split()
    keep = ("CPUs=", "Boards=", "SocketsPerBoard=", "CoresPerSocket=", "ThreadsPerCore=", "RealMemory=")
    hardware = [field for field in fields if field.startswith(keep)]
    if not any(field.startswith("CPUs=") for field in hardware):
        raise RuntimeError(f"cannot read the node's hardware from `slurmd -C`: {output!r}")
    return " ".join(hardware)


try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # loaded here: the child of a fork should only call it
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """preexec_fn: the daemon gets SIGTERM when the test process dies, whatever the reason."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return f"--- {path.name} ---\n{path.read_text(errors='replace')[-chars:]}"
    except OSError:
        return f"--- {path.name}: missing ---"


class _Cluster:
    """The started processes and paths; ``start`` and ``stop`` are what :func:`slurm_cluster` calls."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.conf = workdir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        for name in [key for key in self.env if key.startswith("SLURM_") and key != "SLURM_CONF"]:
            del self.env[name]  # a test run inside a real SLURM job must not talk to that job's cluster
        self.processes: dict[str, subprocess.Popen] = {}
        self.munge_dir: Path | None = None
        self.munge_socket: Path | None = None

    # ----------------------------------------------------------------- start
    def start(self) -> None:
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self.conf.write_text(SLURM_CONF_TEMPLATE.format(
            cluster=f"hc{os.getpid()}", host=socket.gethostname().split(".")[0], dir=self.dir,
            munge_socket=self.munge_socket, ctld_port=_free_port(), slurmd_port=_free_port(),
            hardware=_node_hardware()))
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
        self._wait("slurmctld answering", lambda: "UP" in self._run("scontrol", "ping").stdout)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait("node localhost idle", self._node_idle)
        self._add_srun_shim()

    def _add_srun_shim(self) -> None:
        """Put an ``srun`` that knows SLURM_CONF first on the clients' PATH.

        snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every ``SLURM_*`` variable but the job's identity,
        SLURM_CONF included, before its ``srun`` inside the job; with a slurm.conf outside /etc/slurm that srun
        finds no configuration. Jobs inherit PATH (sbatch --export=ALL), so they pick up this wrapper.
        """
        shim = self.dir / "bin" / "srun"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{_which("srun")}" "$@"\n')
        shim.chmod(0o755)
        self.env["PATH"] = os.pathsep.join([str(shim.parent), self.env.get("PATH", "")])

    def _start_munge(self) -> None:
        """A private munged: own key, socket, pid and log under a fresh /tmp directory owned by munge."""
        try:
            user = pwd.getpwnam("munge")
        except KeyError:
            user = None
        # munged wants its socket directory enterable by all and writable by no one else; the munge user cannot
        # enter pytest's 0700 tmp dirs, hence a directory of its own under /tmp.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="heliocube-munge-"))
        self.munge_dir.chmod(0o711)
        self.munge_socket = self.munge_dir / "munge.socket"
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        if user is not None:
            for path in (self.munge_dir, key):
                os.chown(path, user.pw_uid, user.pw_gid)
        command = [_which("munged"), "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                   f"--pid-file={self.munge_dir / 'munged.pid'}", f"--log-file={self.munge_dir / 'munged.log'}",
                   f"--seed-file={self.munge_dir / 'munged.seed'}", "--num-threads=4"]
        if user is None:
            command.append("--force")  # no munge user: run as root
        self._spawn("munged", command, user=user.pw_uid if user else None, group=user.pw_gid if user else None)

        def munge_works() -> bool:
            credential = self._run("munge", "-n", f"--socket={self.munge_socket}")
            if credential.returncode != 0:
                return False
            decoded = subprocess.run([_which("unmunge"), f"--socket={self.munge_socket}"], input=credential.stdout,
                                     capture_output=True, text=True, timeout=10, check=False)
            return decoded.returncode == 0

        self._wait("munged answering", munge_works)

    def _spawn(self, name: str, command: list[str], **kwargs) -> None:
        with open(self.dir / f"{name}.out", "ab") as out:
            self.processes[name] = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                cwd=self.dir, preexec_fn=_die_with_parent, **kwargs)

    def _run(self, command: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([_which(command), *args], env=self.env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(err.cmd, 124, "", f"timed out after {timeout} s")

    def _node_idle(self) -> bool:
        state = self._run("sinfo", "-h", "-N", "-n", "localhost", "-o", "%t").stdout.strip()
        if state.rstrip("*~#$@") in ("down", "drain", "drng"):
            self._run("scontrol", "update", "nodename=localhost", "state=resume")
        return state == "idle"

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}\n"
                                       + self.diagnostics())
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM test cluster: no {what} within {timeout} s\n" + self.diagnostics())

    def diagnostics(self) -> str:
        paths = [self.dir / name for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out",
                                              "munged.out")]
        if self.munge_dir:
            paths.append(self.munge_dir / "munged.log")
        return "\n".join(_tail(path) for path in paths)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Cancel the cluster's jobs, then stop slurmd, slurmctld and munged (in that order) and wait for each."""
        try:
            if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
                self._cancel_jobs()
        finally:
            for name in ("slurmd", "slurmctld", "munged"):
                if name in self.processes:
                    _terminate(self.processes[name])
            self._kill_job_leftovers()
            if self.munge_dir is not None:
                shutil.rmtree(self.munge_dir, ignore_errors=True)

    def _cancel_jobs(self) -> None:
        active = "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED"
        jobs = self._run("squeue", "-h", "-o", "%i", f"--states={active}").stdout.split()
        if not jobs:
            return
        self._run("scancel", *jobs)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self._run("squeue", "-h", "-o", "%i", f"--states={active}").stdout.split():
                return
            time.sleep(0.5)

    def _kill_job_leftovers(self) -> None:
        """Kill slurmstepd and job processes of *this* cluster that outlived slurmd (they carry our SLURM_CONF)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        spared = {os.getpid(), *_ancestors()}
        leftovers = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in spared:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                leftovers.append(int(entry.name))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while leftovers and time.monotonic() < deadline:
                leftovers = [pid for pid in leftovers if _alive(pid)]
                time.sleep(0.1)


def _ancestors() -> list[int]:
    pids, pid = [], os.getppid()
    while pid > 1:
        pids.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _terminate(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


@contextlib.contextmanager
def slurm_cluster(workdir: str | os.PathLike) -> Iterator[dict[str, str]]:
    """Run a one-node SLURM cluster with its files under ``workdir``; yield the environment of its clients.

    The yielded dict is ``os.environ`` plus ``SLURM_CONF`` (minus any other ``SLURM_*`` variable): pass it as
    ``env`` to ``sbatch``, ``squeue`` or ``snakemake --executor slurm``. Logs of the daemons are in ``workdir``
    (``slurmctld.log``, ``slurmd.log``).
    """
    ensure_slurm_installed()
    cluster = _Cluster(Path(workdir).resolve())
    try:
        cluster.start()
        yield dict(cluster.env)
    finally:
        cluster.stop()
