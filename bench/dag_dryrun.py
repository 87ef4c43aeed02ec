"""Time Snakemake's planning on the full-mission example configs: a fresh dry run and the no-op re-run.

Run: ``.venv/bin/python bench/dag_dryrun.py [config ...] [--repeat N] [--phases] [--cprofile DIR]`` (default:
every ``config/examples/*.yaml``). Target of the issue: both figures <= 20 s on this machine for every example.

For each config, in a temporary ``--directory`` with ``output_root`` under it (``--config output_root=...``):

(a) **dry run**: ``snakemake -n --quiet rules`` on an empty output tree; jobs (the ``total`` of the job table)
    and wall seconds.
(b) **no-op**: every output of every job present (empty files), each rule's outputs newer than those of the rules
    feeding it, then the same ``snakemake -n``; it must report nothing to do (else the table says how many jobs it
    still wanted and the run exits non-zero). Wall seconds.

Both are also given as CPU seconds (user + sys of the Snakemake process): the machine is shared, and under load the
wall time can be several times the CPU time; CPU seconds are what an idle machine would show as wall seconds.
With ``--repeat N`` each figure is the fastest of N runs.

How the outputs are faked, and why this way: everything comes from Snakemake, so a new rule (e.g. a sync stage)
or a changed output pattern needs no change here.

- The file list is ``snakemake --summary``: one tab-separated row per output file of every job in the DAG, with
  the rule that makes it (a documented CLI table; on an empty tree every row is "missing").
- The order is ``snakemake --rulegraph``: rule-level edges (producer -> consumer). A rule's level is the longest
  path from a rule with no producers, and its files get mtime ``t0 + level`` seconds: inputs are older than outputs
  everywhere, as after a real run. The last level is a second ago, so outputs are also newer than the rules'
  ``script:`` files (Snakemake's ``code`` trigger reruns jobs whose outputs are older than their script). Should
  the rule graph ever have a cycle (a rule consuming its own outputs under other wildcards), every file gets the
  same mtime: still a no-op, since Snakemake reruns a job only when an input is strictly newer than an output.
- Rejected: ``snakemake --touch`` only touches outputs that already exist in Snakemake 9 (it warns "Output files
  not touched because they don't exist" and creates nothing), and it goes through the scheduler with a 0.1 s
  sleep per job. The Python API (``snakemake.api``) builds the same DAG in one pass, but lists jobs only through
  private attributes that change between releases. ``--summary`` + ``--rulegraph`` cost two extra DAG builds per
  config, outside the timed runs.

Caveats: the faked tree has no ``.snakemake/metadata`` records, so the no-op run skips the per-output metadata
reads (params, code and input-set triggers) that a no-op after a real run does. ``--summary`` does not say which
outputs are ``directory()`` outputs, so those are faked as empty files too; Snakemake's existence and mtime checks
treat them alike in a dry run.

Where the time goes: ``--phases`` reruns the dry run and the no-op with CPU timers around Snakemake's phases
(imports; parsing the Snakefile, which includes the config check; DAG building; the DAG postprocessing, which in a dry
run checks every job's ``script:``; listing the jobs, which evaluates every job's resources), without profiler
overhead. ``--cprofile DIR`` writes a cProfile of the dry run to ``DIR/<config>.prof`` and lists the rules' own
functions (input functions, params) by cumulative time; cProfile inflates Snakemake's many small calls, so use it
to find hot functions, not for the split between phases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
EXAMPLES = REPO / "config" / "examples"
TARGET_SECONDS = 20.0
#: Production configs with JSOC products need an address; any will do for planning (nothing is contacted).
ENV = {**os.environ, "HELIOCUBE_JSOC_EMAIL": os.environ.get("HELIOCUBE_JSOC_EMAIL", "bench@example.org")}


@dataclass
class Run:
    """One Snakemake invocation: its stdout, stderr and wall and CPU seconds."""

    stdout: str
    stderr: str
    wall: float
    cpu: float


@dataclass
class Result:
    """The figures of one config."""

    config: str
    jobs: int
    dry_wall: float
    dry_cpu: float
    files: int
    noop_jobs: int
    noop_wall: float
    noop_cpu: float
    notes: list[str]


def snakemake(workdir: Path, config: Path, *args: str, launcher: tuple[str, ...] = ("-m", "snakemake")) -> Run:
    """Run Snakemake on ``config`` with outputs under ``workdir``; raise with its stderr when it fails."""
    command = [sys.executable, *launcher, "-s", str(SNAKEFILE), "--configfile", str(config),
               "--directory", str(workdir), "--config", f"output_root={workdir / 'out'}", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(result.stdout, result.stderr, wall, cpu)


def job_count(run: Run) -> int:
    """Jobs Snakemake plans: the ``total`` row of its job table (absent when there is nothing to do)."""
    for line in (run.stdout + run.stderr).splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "total" and fields[1].isdigit():
            return int(fields[1])
    if "Nothing to be done" in run.stdout + run.stderr:
        return 0
    raise ValueError(f"no job table in Snakemake's output:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")


def dry_run(workdir: Path, config: Path) -> tuple[int, Run]:
    run = snakemake(workdir, config, "-n", "--quiet", "rules")
    return job_count(run), run


def output_files(workdir: Path, config: Path) -> list[tuple[str, str]]:
    """(path, rule) of every output of every job, from ``snakemake --summary``."""
    run = snakemake(workdir, config, "--summary")
    lines = [line for line in run.stdout.splitlines() if "\t" in line]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    if not rows or "output_file" not in rows[0] or "rule" not in rows[0]:
        raise ValueError(f"unexpected --summary output:\n{run.stdout[:2000]}")
    return [(row["output_file"], row["rule"]) for row in rows]


def rule_levels(workdir: Path, config: Path) -> dict[str, int]:
    """Longest producer chain below each rule, from ``snakemake --rulegraph`` ({} when the graph has a cycle)."""
    dot = snakemake(workdir, config, "--rulegraph").stdout
    names = dict(re.findall(r'^\s*(\d+)\s*\[label\s*=\s*"([^"]+)"', dot, re.MULTILINE))
    producers: dict[str, set[str]] = {name: set() for name in names.values()}
    for source, target in re.findall(r"^\s*(\d+)\s*->\s*(\d+)", dot, re.MULTILINE):
        producers[names[target]].add(names[source])
    levels: dict[str, int] = {}

    def level(rule: str, path: tuple[str, ...]) -> int:
        if rule in path:
            raise RecursionError(rule)
        if rule not in levels:
            levels[rule] = 1 + max((level(p, (*path, rule)) for p in producers[rule]), default=-1)
        return levels[rule]

    try:
        for rule in producers:
            level(rule, ())
    except RecursionError:
        return {}
    return levels


def fake_outputs(files: list[tuple[str, str]], levels: dict[str, int]) -> None:
    """Create every file empty, one second of mtime per rule level, the last level a second ago.

    Recent on purpose: Snakemake's ``code`` rerun trigger also reruns a job whose outputs are older than its
    ``script:`` file, which a real run never leaves behind.
    """
    t0 = time.time() - max(levels.values(), default=0) - 1
    for path, rule in files:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        stamp = t0 + levels.get(rule, 0)
        os.utime(target, (stamp, stamp))


#: Run as ``python -c PHASES <snakemake args>``: Snakemake's CLI with CPU timers around its phases, printed as one
#: JSON line on stderr. Diagnostics only: a method a future Snakemake renames is simply not timed.
PHASES = r"""
import atexit, json, sys, time
T0 = time.process_time()
import snakemake.cli
from snakemake import workflow as _workflow
from snakemake.scheduling import job_scheduler as _scheduler
marks = {"imports": time.process_time() - T0}

def timed(owner, name, label):
    original = getattr(owner, name, None)
    if original is None:
        return
    depth = [0]

    def wrapper(*args, **kwargs):
        depth[0] += 1
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                marks[label] = marks.get(label, 0.0) + time.process_time() - start

    setattr(owner, name, wrapper)

timed(_workflow.Workflow, "include", "parse")
timed(_workflow.Workflow, "execute", "execute")
timed(_workflow.Workflow, "_build_dag", "dag")
timed(_scheduler.JobScheduler, "schedule", "listing")
atexit.register(lambda: print("HELIOCUBE-PHASES " + json.dumps({**marks, "total": time.process_time() - T0}),
                              file=sys.stderr))
sys.argv = ["snakemake", *sys.argv[1:]]
snakemake.cli.main()
"""


def phases(workdir: Path, config: Path) -> str:
    """CPU seconds of a dry run's phases, as one line of text."""
    run = snakemake(workdir, config, "-n", "--quiet", "rules", launcher=("-c", PHASES))
    line = next((line for line in run.stderr.splitlines() if line.startswith("HELIOCUBE-PHASES ")), None)
    if line is None:
        return "phases: not measured"
    marks = json.loads(line.split(" ", 1)[1])
    rest = marks.get("execute", 0.0) - marks.get("dag", 0.0) - marks.get("listing", 0.0)
    parts = [("imports", marks.get("imports")), ("parse Snakefile + config check", marks.get("parse")),
             ("DAG build", marks.get("dag")), ("DAG postprocess", rest), ("job listing", marks.get("listing")),
             ("total", marks.get("total"))]
    return "cpu s: " + ", ".join(f"{label} {value:.1f}" for label, value in parts if value is not None)


def rule_functions(workdir: Path, config: Path, out_dir: Path) -> str:
    """cProfile a dry run into ``out_dir``; the rules' own functions (input functions, params) by time."""
    import pstats

    out_dir.mkdir(parents=True, exist_ok=True)
    prof = out_dir / f"{config.stem}.prof"
    launcher = ("-m", "cProfile", "-o", str(prof), "-m", "snakemake")
    snakemake(workdir, config, "-n", "--quiet", "rules", launcher=launcher)
    stats = pstats.Stats(str(prof)).stats  # {(file, line, function): (cc, calls, tottime, cumtime, callers)}
    total = max(entry[3] for entry in stats.values())
    own = sorted(((entry[3], entry[1], Path(key[0]).name, key[2]) for key, entry in stats.items()
                  if key[0].endswith(".smk") and not key[2].startswith("<")), reverse=True)[:5]
    listed = ", ".join(f"{file}:{name} x{calls} {seconds:.2f}" for seconds, calls, file, name in own)
    return f"cProfile {total:.1f} s ({prof}); rule functions s: {listed}"


def bench(config: Path, repeat: int, with_phases: bool, cprofile_dir: Path | None) -> Result:
    notes = []
    with tempfile.TemporaryDirectory(prefix="heliocube-dag-") as tmp:
        workdir = Path(tmp)
        dry = [dry_run(workdir, config) for _ in range(repeat)]
        if with_phases:
            notes.append(f"dry run {phases(workdir, config)}")
        if cprofile_dir is not None:
            notes.append(rule_functions(workdir, config, cprofile_dir))
        files = output_files(workdir, config)
        fake_outputs(files, rule_levels(workdir, config))
        noop = [dry_run(workdir, config) for _ in range(repeat)]
        if with_phases:
            notes.append(f"no-op   {phases(workdir, config)}")
    return Result(config.name, dry[0][0], min(r.wall for _, r in dry), min(r.cpu for _, r in dry), len(files),
                  max(n for n, _ in noop), min(r.wall for _, r in noop), min(r.cpu for _, r in noop), notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path, help="configs (default: config/examples/*.yaml)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the fastest is reported")
    parser.add_argument("--phases", action="store_true", help="also print the CPU seconds of each phase")
    parser.add_argument("--cprofile", type=Path, metavar="DIR",
                        help="also cProfile each dry run into DIR and list the rules' own functions")
    args = parser.parse_args(argv)
    configs = [path.resolve() for path in args.configs] or sorted(EXAMPLES.glob("*.yaml"))
    load = os.getloadavg()[0]
    print(f"{len(configs)} config(s); Snakemake dry runs on {os.cpu_count()} cores, load average {load:.1f}")
    header = f"{'config':<28} {'jobs':>6} {'files':>6} {'dry-run s':>10} {'(cpu s)':>8} {'no-op s':>8} {'(cpu s)':>8}"
    print(header)
    print("-" * len(header))
    failed = []
    for config in configs:
        result = bench(config, args.repeat, args.phases, args.cprofile)
        slow = max(result.dry_wall, result.noop_wall) > TARGET_SECONDS
        note = f"  NOT A NO-OP: {result.noop_jobs} jobs planned" if result.noop_jobs else ""
        note += f"  > {TARGET_SECONDS:.0f} s" if slow else ""
        print(f"{result.config:<28} {result.jobs:>6} {result.files:>6} {result.dry_wall:>10.1f} {result.dry_cpu:>8.1f}"
              f" {result.noop_wall:>8.1f} {result.noop_cpu:>8.1f}{note}", flush=True)
        for note in result.notes:
            print(f"    {note}", flush=True)
        if result.noop_jobs:
            failed.append(result.config)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
