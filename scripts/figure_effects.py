"""Snakemake script: population line with per-group mixed-model lines, and per-group OLS lines."""

from lmmflow import figures
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log
from lmmflow.shrinkage import population_line, read_coefficients, setting_variables

send_stderr_to_log(snakemake.log[0])

setting = snakemake.params.setting
columns = setting_variables(setting)
x, y = columns["predictor"], columns["response"]
data = read_prepared(snakemake.input.data, snakemake.input.schema)
figures.effects(
    read_coefficients(snakemake.input.coefficients),
    population_line(data, x, y),
    x_values=sorted(data[x].dropna().unique()),
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    xlabel=setting.get("xlabel", x),
    ylabel=setting.get("ylabel", y),
    group_label=columns["group"],
    predictor=x,
)
