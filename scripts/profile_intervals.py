"""Snakemake script: lme4's profile-likelihood confidence intervals for one model."""

import sys

from lmmflow import io
from lmmflow.intervals import fit_for_intervals, profile_intervals
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = fit_for_intervals(data, snakemake.params.formula, snakemake.params.engine)
table = profile_intervals(design, fit)
io.write_csv(table, snakemake.output[0])
print(f"{snakemake.wildcards.model}: profiled {len(table)} parameters", file=sys.stderr)
