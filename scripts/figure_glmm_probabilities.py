"""Snakemake script: a binomial GLMM's figure of predicted probabilities."""

import pandas as pd

from lmmflow.data.prepare import read_prepared
from lmmflow.outputs.glmm_figures import predicted_probabilities
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

predicted_probabilities(
    read_prepared(snakemake.input.data, snakemake.input.schema),
    pd.read_csv(snakemake.input.fixed_effects),
    pd.read_csv(snakemake.input.variance_components),
    pd.read_csv(snakemake.input.random_effects, dtype={"group": str}),
    model=snakemake.wildcards.model,
    png=snakemake.output.png,
    svg=snakemake.output.svg,
)
