"""Snakemake script: percentile intervals from all bootstrap chunks of one model; the estimate
column from its fit's solution (no data, no fitting)."""

import pandas as pd

from lmmflow.engine.parameters import parameter_values
from lmmflow.inference.bootstrap import aggregate_bootstrap
from lmmflow.outputs import io
from lmmflow.outputs.solution import read_solution
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

solution = read_solution(snakemake.input.solution)
estimate = parameter_values(solution.covariances(), solution.sigma2, solution.beta)
chunks = [pd.read_csv(path) for path in snakemake.input.chunks]
io.write_csv(aggregate_bootstrap(chunks, estimate=estimate), snakemake.output[0])
