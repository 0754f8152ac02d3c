"""Snakemake script: one chunk of a model's parametric bootstrap (its replicates' own seeds),
simulated from its fit's solution."""

import sys

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.bootstrap import bootstrap_chunk
from lmmflow.outputs import io
from lmmflow.outputs.solution import read_fit
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

settings = snakemake.params.bootstrap
data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = read_fit(data, snakemake.params.formula, snakemake.input.solution, snakemake.params.weights)
chunk = int(snakemake.wildcards.chunk)
table = bootstrap_chunk(design, fit, settings["seed"], settings["replicates"], settings["chunks"], chunk)
io.write_csv(table, snakemake.output[0])
print(
    f"{snakemake.wildcards.model}: chunk {chunk}, {len(table)} replicates, "
    f"{int((~table['converged']).sum())} not converged",
    file=sys.stderr,
)
