"""Adapter of rule report: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging
from heliocube.report import build_report

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
build_report(snakemake.config["output_root"], snakemake.output[0])  # noqa: F821
