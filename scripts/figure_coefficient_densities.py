"""Snakemake script: densities of per-group intercepts and slopes, mixed model vs separate regressions."""

from lmmflow import figures
from lmmflow.scripting import send_stderr_to_log
from lmmflow.shrinkage import read_coefficients, setting_variables

send_stderr_to_log(snakemake.log[0])

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
