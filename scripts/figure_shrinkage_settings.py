"""Snakemake script: mixed vs separate coefficient densities in every shrinkage setting."""

from lmmflow.inference.shrinkage import read_coefficients
from lmmflow.outputs import figures
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

figures.shrinkage_settings(
    dict(zip(snakemake.params.settings, map(read_coefficients, snakemake.input.coefficients))),
    labels=snakemake.params.labels,
    png=snakemake.output.png,
    svg=snakemake.output.svg,
)
