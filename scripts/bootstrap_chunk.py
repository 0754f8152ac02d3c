"""Snakemake script: one chunk of a model's parametric bootstrap (its replicates' own seeds)."""

import sys

from lmmflow import io
from lmmflow.intervals import bootstrap_chunk, fit_for_intervals
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

settings = snakemake.params.bootstrap
data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = fit_for_intervals(data, snakemake.params.formula, snakemake.params.engine)
chunk = int(snakemake.wildcards.chunk)
table = bootstrap_chunk(design, fit, settings["seed"], settings["replicates"], settings["chunks"], chunk)
io.write_csv(table, snakemake.output[0])
print(
    f"{snakemake.wildcards.model}: chunk {chunk}, {len(table)} replicates, "
    f"{int((~table['converged']).sum())} not converged",
    file=sys.stderr,
)
