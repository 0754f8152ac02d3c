"""Fit one configured model and write its fit.json, attempts.csv, tables and fitted values."""

from lmmflow.data.prepare import read_prepared
from lmmflow.fit import fit_and_write
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

fit_and_write(
    read_prepared(snakemake.input.data, snakemake.input.schema),
    dataset=snakemake.params.dataset,
    formula=snakemake.params.formula,
    weights=snakemake.params.weights,
    model=snakemake.wildcards.model,
    engine=snakemake.params.engine,
    reml=snakemake.params.reml,
    family=snakemake.params.family,
    link=snakemake.params.link,
    nAGQ=snakemake.params.nAGQ,
    outputs=dict(snakemake.output.items()),
)
