"""Snakemake script: percentile intervals from all bootstrap chunks of one model."""

import pandas as pd

from lmmflow import io
from lmmflow.intervals import aggregate_bootstrap, fit_for_intervals, parameter_vector
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

data = read_prepared(snakemake.input.data, snakemake.input.schema)
design, fit = fit_for_intervals(data, snakemake.params.formula, snakemake.params.engine)
chunks = [pd.read_csv(path) for path in snakemake.input.chunks]
io.write_csv(aggregate_bootstrap(chunks, estimate=parameter_vector(design, fit)), snakemake.output[0])
