"""Likelihood-ratio test of one configured set of models, as lme4's anova() (ML refits)."""

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.likelihood_ratio import likelihood_ratio_test, ml_fits
from lmmflow.outputs import io
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

models = snakemake.params.models
data = read_prepared(snakemake.input.data, snakemake.input.schema)
dataset = next(iter(models.values()))["dataset"]
fits = ml_fits(data, models, dict(zip(models, snakemake.input.solutions)), dataset)
io.write_csv(likelihood_ratio_test(fits), snakemake.output[0])
