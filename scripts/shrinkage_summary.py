"""Snakemake script: SD summaries and negative-slope counts of all shrinkage settings in one table each."""

import sys

import pandas as pd

from lmmflow.inference.shrinkage import read_coefficients, summarize_settings
from lmmflow.outputs import io
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

settings = snakemake.params.settings
tables = summarize_settings(
    [pd.read_csv(path) for path in snakemake.input.sd_summary],
    dict(zip(settings, map(read_coefficients, snakemake.input.coefficients))),
)
io.write_csv(tables["sd_summary"], snakemake.output.sd_summary)
io.write_csv(tables["negative_slopes"], snakemake.output.negative_slopes)
print(tables["sd_summary"].to_string(index=False), file=sys.stderr)
