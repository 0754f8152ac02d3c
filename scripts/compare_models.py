"""Rank the fits of one configured comparison by AICc."""

import json
from pathlib import Path

from lmmflow import io
from lmmflow.compare import compare_models
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

summaries = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input}
io.write_csv(compare_models(summaries), snakemake.output[0])
