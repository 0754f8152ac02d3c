"""Snakemake script: densities of per-group intercepts and slopes, mixed model vs separate regressions."""

import sys

from lmmflow import figures
from lmmflow.shrinkage import read_coefficients, setting_variables

sys.stderr = open(snakemake.log[0], "w")

setting = snakemake.params.setting
columns = setting_variables(setting)
figures.coefficient_densities(
    read_coefficients(snakemake.input.coefficients),
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    predictor=columns["predictor"],
    title=f"{setting.get('label', snakemake.wildcards.setting)}: per-{columns['group']} coefficients, "
    "mixed model vs separate regressions",
)
