"""Snakemake script: one chunk of a model's parametric bootstrap (its replicates' own seeds),
simulated from its fit's solution."""

import sys

from lmmflow import io
from lmmflow.bootstrap import bootstrap_chunk
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log
from lmmflow.solution import read_fit

send_stderr_to_log(snakemake.log[0])

settings = snakemake.params.bootstrap
data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = read_fit(data, snakemake.params.formula, snakemake.input.solution)
chunk = int(snakemake.wildcards.chunk)
table = bootstrap_chunk(design, fit, settings["seed"], settings["replicates"], settings["chunks"], chunk)
io.write_csv(table, snakemake.output[0])
print(
    f"{snakemake.wildcards.model}: chunk {chunk}, {len(table)} replicates, "
    f"{int((~table['converged']).sum())} not converged",
    file=sys.stderr,
)
