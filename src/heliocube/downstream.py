"""What the workflow builds from one job's outputs, and the removal that keeps a rerun from calling it up to date.

Snakemake deletes the outputs of a job that fails, and it deletes them before the job runs, so a killed job leaves
them missing too. On the next run a *missing intermediate* file whose consumers' outputs exist rebuilds nothing:
with ``a -> b -> c`` built, deleting ``b`` gives "Nothing to be done", and the ``c`` built from the old ``b`` stays.
Here that is a failed or killed query job (its month index is needed by no target) or cube job (the per-year cube
is read only by its master): the rerun reports success over the master cube, synced files and report built from
the old data. So each job, as it starts, removes every output built (directly or through other jobs) from its own
outputs: then a failure or a kill leaves the whole chain missing, and the next run rebuilds it.

:func:`downstream_outputs` lists those outputs from the config alone (no globbing), mirroring ``rules/*.smk``;
``tests/test_downstream.py`` checks the listing against the jobs ``snakemake --forcerun`` plans.
:func:`clear_downstream` removes them, only ever workflow outputs inside ``output_root``: never raw downloads,
receipts or manifests.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from .experiments import experiments_of
from .timegrid import months_in_range
from .variants import variants_of

__all__ = ["OUTPUTS", "STAGES", "clear_downstream", "consumers_of", "downstream_outputs", "job_of", "outputs_of"]

log = logging.getLogger(__name__)

#: Each rule's declared outputs, relative to ``output_root`` (as in ``rules/*.smk``), in pipeline order.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "query": ("manifests/{product}/{month}.index.csv",),
    "fetch": ("raw/{product}/{month}.slots.csv", "raw/{product}/{month}.ledger.csv"),
    "clean": ("frames/{variant}/{product}/{month}.index.csv", "frames/{variant}/{product}/{month}.ledger.csv"),
    "cube": ("cubes/{variant}/{product}/{year}.h5", "cubes/{variant}/{product}/{year}_times.csv"),
    "cube_master": ("cubes/{variant}/{product}.h5", "cubes/{variant}/{product}_times.csv"),
    "seed_metadata": ("cubes/{variant}/{product}.seeded.h5",),
    "sync": ("synced/{experiment}.h5", "synced/{experiment}.csv", "synced/{experiment}.ledger.csv"),
    "sync_prior_tool": ("synced/{experiment}.prior-tool",),  # a directory output
    "report": ("report/index.html",),
}
STAGES = tuple(OUTPUTS)

#: What a removed output may be: a table, an HDF5 file, the report page, a prior-tool folder (never a FITS file,
#: a manifest's parquet or a receipt, whatever a path computation gets wrong).
_REMOVABLE = re.compile(r".+(\.csv|\.h5|\.html|\.prior-tool)")
_PROTECTED_TOP = {"manifests", "embedded-archive", "logs", "benchmarks"}


def _wildcard_values(config: Mapping) -> dict[str, set[str]]:
    """Every value each wildcard takes in the config's DAG."""
    months = months_in_range(config["date_start"], config["date_finish"])
    return {"product": set(config["products"]), "month": set(months), "year": {m[:4] for m in months},
            "variant": {v.name for v in variants_of(config)}, "experiment": set(experiments_of(config))}


def _check(config: Mapping, stage: str, wildcards: Mapping[str, str]) -> None:
    if stage not in OUTPUTS:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    needed = set(re.findall(r"{(\w+)}", " ".join(OUTPUTS[stage])))
    if set(wildcards) != needed:
        raise ValueError(f"stage {stage!r} takes wildcards {sorted(needed)}, not {sorted(wildcards)}")
    values = _wildcard_values(config)
    for name, value in wildcards.items():
        if value not in values[name]:
            raise ValueError(f"{name}={value!r} is not a {name} of this config (one of {sorted(values[name])})")


def outputs_of(config: Mapping, stage: str, **wildcards: str) -> list[Path]:
    """The declared outputs of one job of ``stage``, under the config's ``output_root``.

    Raises
    ------
    ValueError
        For an unknown stage, missing or extra wildcards, or a value the config's workflow does not have.
    """
    _check(config, stage, wildcards)
    return [Path(config["output_root"], template.format(**wildcards)) for template in OUTPUTS[stage]]


def consumers_of(config: Mapping, stage: str, **wildcards: str) -> list[tuple[str, dict[str, str]]]:
    """The jobs (stage, wildcards) that read an output of this job as a declared input (see ``rules/*.smk``)."""
    _check(config, stage, wildcards)
    variants = [v.name for v in variants_of(config)]
    product = wildcards.get("product")
    report = [("report", {})]
    if stage == "query":
        return [("fetch", dict(wildcards))]
    if stage == "fetch":  # the report reads the slot table and ledger too
        return [("clean", {"variant": v, **wildcards}) for v in variants] + report
    if stage == "clean":  # the report reads the clean ledger too
        return [("cube", {"variant": wildcards["variant"], "product": product, "year": wildcards["month"][:4]}),
                *report]
    if stage == "cube":
        return [("cube_master", {"variant": wildcards["variant"], "product": product})]
    if stage == "cube_master":
        out = []
        if product in config["metadata_seeding"]["products"]:
            out.append(("seed_metadata", dict(wildcards)))
        out += [("sync", {"experiment": name}) for name, spec in experiments_of(config).items()
                if spec["variant"] == wildcards["variant"] and product in spec["products"]]
        return out + report
    if stage == "sync":
        spec = experiments_of(config)[wildcards["experiment"]]
        return ([("sync_prior_tool", dict(wildcards))] if spec["prior_tool_layout"] else []) + report
    if stage in ("seed_metadata", "sync_prior_tool"):
        return report
    return []  # the report: nothing reads it


def downstream_outputs(config: Mapping, stage: str, **wildcards: str) -> list[Path]:
    """Every output built, directly or through other jobs, from the outputs of one job (not those outputs).

    Parameters
    ----------
    config : dict
        The validated config (:func:`heliocube.config.validate_config`).
    stage : str
        The job's rule, one of :data:`STAGES`.
    **wildcards : str
        The job's wildcards, e.g. ``product="EIT195", month="2010-10"`` for a fetch job.

    Returns
    -------
    list of pathlib.Path
        In pipeline order, each once.

    Examples
    --------
    >>> from heliocube.config import validate_config
    >>> config = validate_config({"products": ["EIT195"], "date_start": "2010-10-15", "date_finish": "2010-10-16",
    ...                           "output_root": "out"})
    >>> [str(p) for p in downstream_outputs(config, "cube", variant="128px-mean-6h", product="EIT195", year="2010")]
    ['out/cubes/128px-mean-6h/EIT195.h5', 'out/cubes/128px-mean-6h/EIT195_times.csv', 'out/report/index.html']
    """
    seen, queue, found = set(), consumers_of(config, stage, **wildcards), []
    while queue:
        job_stage, job_wildcards = queue.pop(0)
        key = (job_stage, tuple(sorted(job_wildcards.items())))
        if key in seen:
            continue
        seen.add(key)
        found += [(STAGES.index(job_stage), path) for path in outputs_of(config, job_stage, **job_wildcards)]
        queue += consumers_of(config, job_stage, **job_wildcards)
    return [path for _, path in sorted(found, key=lambda pair: pair[0])]  # stable: each job's outputs in order


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"{(\w+)}", template)  # literal, name, literal, name, ...
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts)))


def job_of(config: Mapping, stage: str, output: str | os.PathLike) -> dict[str, str] | None:
    """The wildcards of the job of ``stage`` whose first declared output is ``output``; None when no job of the
    config's workflow writes there (a job run by hand on paths of its own has nothing downstream)."""
    root, path = os.path.abspath(config["output_root"]), os.path.abspath(output)
    if os.path.commonpath([root, path]) != root:
        return None
    match = _pattern(OUTPUTS[stage][0]).fullmatch(Path(os.path.relpath(path, root)).as_posix())
    if match is None:
        return None
    try:
        _check(config, stage, match.groupdict())
    except ValueError:
        return None
    return match.groupdict()


def _removable(path: Path, root: Path) -> bool:
    """True for a workflow output inside ``root``: never the root, raw downloads, receipts or manifests.

    Containment is judged on the paths as written (a folder of the tree may be a link to another disk, as on a
    cluster's scratch space): the paths come from the config's validated names, this is a second line of defence.
    """
    relative = os.path.relpath(os.path.normpath(os.path.abspath(path)), os.path.abspath(root))
    parts = Path(relative).parts
    if not parts or parts[0] == ".." or len(parts) < 2 or parts[0] in _PROTECTED_TOP:
        return False
    if not _REMOVABLE.fullmatch(path.name) or (parts[0] == "raw" and len(parts) != 3):
        return False  # under raw/ only the month tables raw/{product}/{month}.{slots,ledger}.csv
    return path.is_file() or path.is_symlink() or (path.is_dir() and path.name.endswith(".prior-tool"))


def clear_downstream(config: Mapping, stage: str, output: str | os.PathLike) -> list[Path]:
    """Remove every existing output downstream of the job of ``stage`` that writes ``output``, logging each.

    A job calls this as it starts (:mod:`heliocube.jobs`): whatever then happens to it, a failure, a kill, the
    next run finds its downstream outputs missing and rebuilds them from the job's new outputs. A removal that
    fails is logged and skipped (the job's own error, if any, is what matters).

    Returns
    -------
    list of pathlib.Path
        The paths removed.
    """
    wildcards = job_of(config, stage, output)
    if wildcards is None:
        return []
    root, removed = Path(config["output_root"]), []
    for path in downstream_outputs(config, stage, **wildcards):
        if not (path.exists() or path.is_symlink()):
            continue
        if not _removable(path, root):
            log.warning("left %s in place: not a workflow output this job may remove", path)
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as err:
            log.warning("could not remove stale downstream output %s (%s): remove it before the next run", path,
                        err)
            continue
        log.info("removed stale downstream output %s so the next run rebuilds it, even if this job fails", path)
        removed.append(path)
    return removed
