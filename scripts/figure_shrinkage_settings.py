"""Snakemake script: mixed vs separate coefficient densities in every shrinkage setting."""

import sys

from lmmflow import figures
from lmmflow.shrinkage import read_coefficients

sys.stderr = open(snakemake.log[0], "w")

figures.shrinkage_settings(
    dict(zip(snakemake.params.settings, map(read_coefficients, snakemake.input.coefficients))),
    labels=snakemake.params.labels,
    png=snakemake.output.png,
    svg=snakemake.output.svg,
)
