"""Rank the fits of one configured comparison by AICc; the verdict (preferred model, ties, the
runner-up) under AICc and AIC."""

import json
from pathlib import Path

from lmmflow import io
from lmmflow.compare import compare_models, verdicts
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

summaries = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input}
table = compare_models(summaries)
io.write_csv(table, snakemake.output.table)
io.write_csv(verdicts(table), snakemake.output.verdict)
