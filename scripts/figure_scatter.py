"""Snakemake script: scatter plot of a response on a predictor."""

from lmmflow.data.prepare import read_prepared
from lmmflow.outputs import figures
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

plot = snakemake.params.plot
figures.scatter(
    read_prepared(snakemake.input.data, snakemake.input.schema),
    x=plot["x"],
    y=plot["y"],
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    title=plot.get("title", f"{plot['y']} on {plot['x']}"),
)
