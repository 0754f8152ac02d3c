"""Snakemake script: an observed shrinkage setting's figures - its trajectories per group (a few
highlighted), the densities and the scatter of its per-group coefficients (mixed model vs
separate regressions), and the population line with the per-group mixed-model and OLS lines."""

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.shrinkage import population_line, read_coefficients, setting_variables
from lmmflow.outputs import figures
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

output = snakemake.output
setting = snakemake.params.setting
title = setting.get("label", snakemake.wildcards.setting)
columns = setting_variables(setting)
x, y, group = columns["predictor"], columns["response"], columns["group"]
xlabel, ylabel = setting.get("xlabel", x), setting.get("ylabel", y)
data = read_prepared(snakemake.input.data, snakemake.input.schema)
coefficients = read_coefficients(snakemake.input.coefficients)

figures.trajectories(
    data,
    group=group,
    x=x,
    y=y,
    highlight=figures.pick_highlights(data, group, x, y),
    png=output.trajectories_png,
    svg=output.trajectories_svg,
    xlabel=xlabel,
    ylabel=ylabel,
    title=f"{title}: trajectories by {group}",
)
figures.coefficient_densities(
    coefficients,
    png=output.coefficient_densities_png,
    svg=output.coefficient_densities_svg,
    predictor=x,
    title=f"{title}: per-{group} coefficients, mixed model vs separate regressions",
)
figures.coefficient_scatter(
    coefficients,
    png=output.coefficient_scatter_png,
    svg=output.coefficient_scatter_svg,
    group_label=group,
    predictor=x,
    title=f"{title}: per-{group} coefficients, mixed model vs own regression",
)
figures.effects(
    coefficients,
    population_line(data, x, y),
    x_values=sorted(data[x].dropna().unique()),
    png=output.effects_png,
    svg=output.effects_svg,
    xlabel=xlabel,
    ylabel=ylabel,
    group_label=group,
    predictor=x,
)
