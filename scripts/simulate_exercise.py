"""Snakemake script: the chapter's simulation exercise data set, seeded from the config."""

import sys

from lmmflow.intervals import exercise_dictionary, simulate_exercise
from lmmflow.prepare import write_prepared
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

spec = snakemake.params.exercise
data = simulate_exercise(**spec["simulate"], rng=spec["seed"])
write_prepared(data, exercise_dictionary(data, spec["seed"], spec["simulate"]), snakemake.output.csv, snakemake.output.schema)
print(f"simulated {len(data)} rows", file=sys.stderr)
