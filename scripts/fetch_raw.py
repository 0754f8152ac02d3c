"""Snakemake script: fetch one raw file into resources/raw/, verified against its SHA-256."""

import sys

from lmmflow.data.acquire import fetch
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

# The mirror comes from the config, not params: where a verified file is copied from must not
# make Snakemake fetch it again when data_mirror changes.
origin = fetch(snakemake.output[0], snakemake.params.source, snakemake.config["data_mirror"])
print(f"fetched {snakemake.output[0]} from {origin}", file=sys.stderr)
