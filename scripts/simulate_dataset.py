"""Snakemake script: a configured simulated data set (table + data dictionary), seeded from config."""

import sys

from lmmflow.prepare import data_dictionary, write_prepared
from lmmflow.scripting import send_stderr_to_log
from lmmflow.simulate import simulate_dataset

send_stderr_to_log(snakemake.log[0])

dataset = snakemake.wildcards.dataset
spec = snakemake.params.spec["simulate"]
data = simulate_dataset(dataset, spec)
source = {
    "generator": f"lmmflow.simulate.{spec['generator']}",
    "seed": spec["seed"],
    "parameters": spec.get("parameters", {}),
}
write_prepared(data, data_dictionary(dataset, data, source), snakemake.output.csv, snakemake.output.schema)
print(f"simulated {dataset}: {len(data)} rows", file=sys.stderr)
