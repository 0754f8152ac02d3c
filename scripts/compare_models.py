"""Rank the fits of one configured comparison by AICc (REML fits, or ML fits where the models'
fixed effects differ); the verdict (preferred model, ties, the runner-up) under AICc and AIC."""

import json
from pathlib import Path

from lmmflow.inference.comparison import compare_models, needs_ml, verdicts
from lmmflow.outputs import io
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

models = snakemake.params.models
summaries = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input.fits}
ml_criteria = None
if needs_ml(summaries):  # the fitting stack is imported only then
    from lmmflow.data.prepare import read_prepared
    from lmmflow.inference.likelihood_ratio import ml_criteria_of, ml_fits

    data = read_prepared(snakemake.input.data, snakemake.input.schema)
    dataset = next(iter(models.values()))["dataset"]
    ml_criteria = ml_criteria_of(ml_fits(data, models, dict(zip(models, snakemake.input.solutions)), dataset))
table = compare_models(summaries, ml_criteria)
io.write_csv(table, snakemake.output.table)
io.write_csv(verdicts(table), snakemake.output.verdict)
