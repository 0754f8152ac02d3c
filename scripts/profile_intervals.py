"""Snakemake script: lme4's profile-likelihood confidence intervals for one model, from its fit's solution."""

import sys

from lmmflow import io
from lmmflow.prepare import read_prepared
from lmmflow.profile import profile_intervals
from lmmflow.scripting import send_stderr_to_log
from lmmflow.solution import read_fit

send_stderr_to_log(snakemake.log[0])

data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = read_fit(data, snakemake.params.formula, snakemake.input.solution)
table = profile_intervals(design, fit)
io.write_csv(table, snakemake.output[0])
print(f"{snakemake.wildcards.model}: profiled {len(table)} parameters", file=sys.stderr)
