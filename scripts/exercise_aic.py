"""Snakemake script: the exercise's AIC comparison (REML log-likelihoods, as lme4's AIC)."""

import json
from pathlib import Path

from lmmflow import io
from lmmflow.intervals import aic_table_from_summaries
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

summaries = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input}
io.write_csv(aic_table_from_summaries(summaries), snakemake.output[0])
