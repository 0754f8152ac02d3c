"""Snakemake script: lme4's profile-likelihood confidence intervals for one model, from its fit's solution."""

import sys

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.profile_intervals import profile_intervals
from lmmflow.outputs import io
from lmmflow.outputs.solution import read_fit
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = read_fit(data, snakemake.params.formula, snakemake.input.solution, snakemake.params.weights)
table = profile_intervals(design, fit)
io.write_csv(table, snakemake.output[0])
print(f"{snakemake.wildcards.model}: profiled {len(table)} parameters", file=sys.stderr)
