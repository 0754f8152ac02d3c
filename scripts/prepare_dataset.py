"""Snakemake script: prepare one data set (table + data dictionary) from its raw file."""

import sys

from lmmflow.data.prepare import prepare_dataset, write_prepared
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

dataset = snakemake.wildcards.dataset
data, dictionary = prepare_dataset(dataset, snakemake.input.raw, snakemake.params.spec)
write_prepared(data, dictionary, snakemake.output.csv, snakemake.output.schema)
print(f"prepared {dataset}: {len(data)} rows", file=sys.stderr)
