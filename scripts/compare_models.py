"""Rank the fits of one configured comparison by AICc."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from lmmflow import io  # noqa: E402
from lmmflow.compare import compare_models  # noqa: E402

summaries = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input}
io.write_csv(compare_models(summaries), snakemake.output[0])
