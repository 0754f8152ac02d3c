"""Snakemake script: observed trajectories per group, a few highlighted."""

from lmmflow import figures
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log
from lmmflow.shrinkage import setting_variables

send_stderr_to_log(snakemake.log[0])

setting = snakemake.params.setting
columns = setting_variables(setting)
data = read_prepared(snakemake.input.data, snakemake.input.schema)
x, y, group = columns["predictor"], columns["response"], columns["group"]
figures.trajectories(
    data,
    group=group,
    x=x,
    y=y,
    highlight=figures.pick_highlights(data, group, x, y),
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    xlabel=setting.get("xlabel", x),
    ylabel=setting.get("ylabel", y),
    title=f"{setting.get('label', snakemake.wildcards.setting)}: trajectories by {group}",
)
