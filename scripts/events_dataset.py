"""Adapter of rule events_dataset: unpack the snakemake object and call the package."""

from pathlib import Path

from heliocube.events.dataset import build_event_dataset
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
# Frame tables are named frames/{event_id}.csv: the event id is the file's stem.
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "events_dataset", snakemake.output[0]):  # noqa: F821
    build_event_dataset(
        snakemake.input.events,  # noqa: F821
        {Path(path).stem: path for path in snakemake.input.frames},  # noqa: F821
        snakemake.config["output_root"],  # noqa: F821
        snakemake.wildcards.name,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
    )
