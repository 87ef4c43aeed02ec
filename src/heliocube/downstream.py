"""What the workflow builds from one job's outputs, and the removal that keeps a rerun from calling it up to date.

Snakemake deletes the outputs of a job that fails, and it deletes them before the job runs, so a killed job leaves
them missing too. On the next run a *missing intermediate* file whose consumers' outputs exist rebuilds nothing:
with ``a -> b -> c`` built, deleting ``b`` gives "Nothing to be done", and the ``c`` built from the old ``b`` stays.
Here that is a failed or killed query job (its month index is needed by no target), cube job (the per-year cube
is read only by its master) or Zarr export job (a year group, read only by the store's consolidation): the rerun
reports success over the master cube, synced files, exports and report built from the old data. So each job, as
it starts, removes every output built (directly or through other jobs) from its own outputs: then a failure or a
kill leaves the whole chain missing, and the next run rebuilds it.

:func:`downstream_outputs` lists those outputs from the config alone (no globbing), mirroring ``rules/*.smk``;
``tests/test_downstream.py`` checks the listing against the jobs ``snakemake --forcerun`` plans.
:func:`clear_downstream` removes them, only ever workflow outputs inside ``output_root``: never raw downloads,
receipts or manifests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from .experiments import experiments_of
from .timegrid import months_in_range, parse_day
from .variants import variants_of

__all__ = [
    "DIRECTORY_STAGES", "OUTPUTS", "STAGES", "clear_downstream", "consumers_of", "downstream_cleared",
    "downstream_outputs", "job_of", "outputs_of",
]

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
    "sync_prior_tool": ("synced/{experiment}.prior-tool",),
    "export_zarr": ("exports/{experiment}.zarr/{year}",),
    "export_zarr_consolidate": ("exports/{experiment}.zarr/zarr.json",),
    "export_splits": ("exports/{experiment}/splits.csv",),
    "export_shards": ("exports/{experiment}/shards/{month}.index.json",),  # its tars are not declared
    "export_shard_index": ("exports/{experiment}/shards/index.json",),
    "export_stats": ("exports/{experiment}/stats/{year}.json",),
    "export_normalization": ("exports/{experiment}/normalization.json",),
    "events_select": ("events/{name}/candidates.csv", "events/{name}/events.csv"),  # a checkpoint
    "events_frames": ("events/{name}/frames/{event_id}.csv",),  # its cleaned FITS and receipts are not declared
    "events_dataset": tuple(f"events/{{name}}/dataset/{output}" for output in (
        "labels.csv", "labels.tsv", "summary.csv", "summary.md", "accounting.csv", "events.h5", "per_event",
        "sampling")),
    "params": ("params/{variant}/{product}/{year}.h5", "params/{variant}/{product}/{year}_heatmaps"),
    "report": ("report/index.html",),
}
STAGES = tuple(OUTPUTS)
#: Stages whose output is a directory (``directory()`` in the rule); every other output is a file.
DIRECTORY_STAGES = frozenset({"sync_prior_tool", "export_zarr", "events_dataset", "params"})
#: Event ids come from HEK or a CSV at run time (events.csv), not from the config: any plain file name is one.
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}")


def _wildcard_values(config: Mapping) -> dict[str, set[str]]:
    """Every value each wildcard takes in the config's DAG."""
    months = months_in_range(config["date_start"], config["date_finish"])
    return {"product": set(config["products"]), "month": set(months), "year": {m[:4] for m in months},
            "variant": {v.name for v in variants_of(config)}, "experiment": set(experiments_of(config)),
            "name": {entry["name"] for entry in config.get("events") or []}}


def _check(config: Mapping, stage: str, wildcards: Mapping[str, str]) -> None:
    if stage not in OUTPUTS:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    needed = set(re.findall(r"{(\w+)}", " ".join(OUTPUTS[stage])))
    if set(wildcards) != needed:
        raise ValueError(f"stage {stage!r} takes wildcards {sorted(needed)}, not {sorted(wildcards)}")
    values = _wildcard_values(config)
    for name, value in wildcards.items():
        if name == "event_id" and _EVENT_ID.fullmatch(value):
            continue
        if value not in values.get(name, ()):
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
                *_export_jobs(config, "export_shards", "month", _neighbours(config, wildcards["month"]),
                              wildcards["variant"], product), *report]
    if stage == "cube":  # an export year reads the year before's cubes too (its first rows' matches)
        years = (wildcards["year"], f"{int(wildcards['year']) + 1:04d}")
        return [("cube_master", {"variant": wildcards["variant"], "product": product}),
                *_export_jobs(config, "export_zarr", "year", years, wildcards["variant"], product),
                *_export_jobs(config, "export_stats", "year", years, wildcards["variant"], product),
                *_params_jobs(config, wildcards)]
    if stage == "cube_master":
        out = []
        if product in config["metadata_seeding"]["products"]:
            out.append(("seed_metadata", dict(wildcards)))
        out += [("sync", {"experiment": name}) for name, spec in experiments_of(config).items()
                if spec["variant"] == wildcards["variant"] and product in spec["products"]]
        return out + report
    if stage == "sync":  # the exports by year or month read the synced file as `ancient`: their cubes decide
        spec = experiments_of(config)[wildcards["experiment"]]
        return ([("sync_prior_tool", dict(wildcards))] if spec["prior_tool_layout"] else []) + (
            [("export_splits", dict(wildcards))] if config["exports"]["enabled"] else []) + report
    if stage in ("events_select", "events_frames"):  # the events' frame tables are known from events.csv only
        return [("events_dataset", {"name": wildcards["name"]})]
    gathered_by = {"export_zarr": "export_zarr_consolidate", "export_shards": "export_shard_index",
                   "export_stats": "export_normalization"}
    if stage in gathered_by:
        return [(gathered_by[stage], {"experiment": wildcards["experiment"]})]
    if stage != "report":  # seeded cubes, prior-tool folders, the exports' gathered files: read by the report only
        return report
    return []


def _neighbours(config: Mapping, month: str) -> list[str]:
    """The configured months whose export shards read ``month``'s frames: itself and the months either side."""
    months = months_in_range(config["date_start"], config["date_finish"])
    i = months.index(month)
    return months[max(i - 1, 0): i + 2]


def _export_jobs(config: Mapping, stage: str, key: str, values, variant: str, product: str) -> list:
    """Jobs of an export ``stage`` (by year or month) of each experiment that exports ``product`` at ``variant``."""
    if not config["exports"]["enabled"]:
        return []
    jobs = []
    for name, spec in experiments_of(config).items():
        if spec["variant"] == variant and product in spec["products"]:
            covered = _export_years(spec) if key == "year" else months_in_range(spec["date_start"],
                                                                                spec["date_finish"])
            jobs += [(stage, {"experiment": name, key: value}) for value in values if value in covered]
    return jobs


def _params_jobs(config: Mapping, wildcards: Mapping[str, str]) -> list:
    """The parameter job of a per-year cube, when params.products and params.variants (none: all) include it."""
    section = config.get("params") or {}
    if wildcards["product"] in section.get("products", []) and wildcards["variant"] in (
            section.get("variants") or [v.name for v in variants_of(config)]):
        return [("params", dict(wildcards))]
    return []


def _export_years(experiment: Mapping) -> list[str]:
    """The years of an experiment's Zarr store, one group each: those of its range (as ``rules/export.smk``)."""
    first, last = (parse_day(experiment[key]).year for key in ("date_start", "date_finish"))
    return [f"{year:04d}" for year in range(first, last + 1)]


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
    """True for a declared workflow output inside ``root`` (a second line of defence: the paths come from the
    config's validated names). Never the root, a raw download, a receipt, a manifest's day file or a log: only a
    path one of :data:`OUTPUTS` describes, a directory only for :data:`DIRECTORY_STAGES`.

    Containment is judged on the paths as written: a folder of the tree may be a link to another disk (as on a
    cluster's scratch space), and removing an output through it is what the workflow's own rerun does.
    """
    relative = Path(os.path.relpath(os.path.normpath(os.path.abspath(path)), os.path.abspath(root))).as_posix()
    if relative.startswith("../") or relative in (".", ".."):
        return False
    stages = [stage for stage in STAGES if any(_pattern(t).fullmatch(relative) for t in OUTPUTS[stage])]
    if not stages or "query" in stages:  # the query's month index is upstream of every job
        return False
    if path.is_dir() and not path.is_symlink():
        return any(stage in DIRECTORY_STAGES for stage in stages)
    return path.is_file() or path.is_symlink()


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


@contextlib.contextmanager
def downstream_cleared(config: Mapping, stage: str, output: str | os.PathLike):
    """Run a job of ``stage`` (the one writing ``output``) with its downstream outputs removed first.

    On entry :func:`clear_downstream`; if the job then raises, it clears again (nothing, unless a file came back)
    and logs, before the error propagates, that the next run rebuilds what is built from the job's outputs. The
    line matters with Snakemake's ``retries``: each attempt rewrites the job's log, and the attempt that removed
    the files may not be the last.
    """
    clear_downstream(config, stage, output)
    try:
        yield
    except BaseException:
        wildcards = job_of(config, stage, output)
        if wildcards is not None:
            clear_downstream(config, stage, output)
            listed = downstream_outputs(config, stage, **wildcards)
            left = [path for path in listed if path.exists() or path.is_symlink()]
            log.error("the job failed: %d of the %d outputs built from its outputs are missing (removed as a job "
                      "of %s started), so the next run rebuilds them%s", len(listed) - len(left), len(listed),
                      stage, f"; remove the {len(left)} others before it: {', '.join(map(str, left))}" if left
                      else "")
        raise
