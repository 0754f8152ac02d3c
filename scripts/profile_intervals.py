"""Snakemake script: lme4's profile-likelihood confidence intervals for one model (an LMM or a
GLMM), from its fit's solution."""

import json
import sys
from pathlib import Path

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.glmm_profile_intervals import glmm_profile_from_solution
from lmmflow.inference.profile_intervals import profile_intervals
from lmmflow.outputs import io
from lmmflow.outputs.solution import read_fit
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

data = read_prepared(snakemake.input.data, snakemake.input.schema)
formula, weights = snakemake.params.formula, snakemake.params.weights
solution = json.loads(Path(snakemake.input.solution).read_text())
if solution["engine"] == "glmm":
    table = glmm_profile_from_solution(data, formula, solution, weights)
else:
    table = profile_intervals(*read_fit(data, formula, snakemake.input.solution, weights))
io.write_csv(table, snakemake.output[0])
print(f"{snakemake.wildcards.model}: profiled {len(table)} parameters", file=sys.stderr)
