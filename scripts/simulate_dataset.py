"""Snakemake script: a configured simulated data set (table + data dictionary), seeded from config."""

import sys

from lmmflow.data.prepare import data_dictionary, write_prepared
from lmmflow.data.simulate import simulate_dataset
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

dataset = snakemake.wildcards.dataset
spec = snakemake.params.spec["simulate"]
data = simulate_dataset(dataset, spec)
source = {
    "generator": f"lmmflow.data.simulate.{spec['generator']}",
    "seed": spec["seed"],
    "parameters": spec.get("parameters", {}),
}
write_prepared(data, data_dictionary(dataset, data, source), snakemake.output.csv, snakemake.output.schema)
print(f"simulated {dataset}: {len(data)} rows", file=sys.stderr)
