"""Tabulate a model's random coefficients beside fixed + random effects (the sleep exercise)."""

import pandas as pd

from lmmflow.outputs import io
from lmmflow.outputs.tables import coefficient_check
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

read = {"dtype": {"group": str}}
table = coefficient_check(
    pd.read_csv(snakemake.input.fixed_effects),
    pd.read_csv(snakemake.input.random_effects, **read),
    pd.read_csv(snakemake.input.random_coefficients, **read),
)
io.write_csv(table, snakemake.output[0])
