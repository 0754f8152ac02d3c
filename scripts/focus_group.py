"""One group's random effects and conditional predictions across the models of a focus group."""

import json
from pathlib import Path

import pandas as pd

from lmmflow.data.prepare import read_prepared
from lmmflow.outputs import io
from lmmflow.outputs.predictions import group_predictions, group_random_effects
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

focus = snakemake.params.focus
models = focus["models"]
grouping_factor = json.loads(Path(snakemake.input.fits[0]).read_text())["grouping_factor"]
data = read_prepared(snakemake.input.data, snakemake.input.schema)
fitted = {model: pd.read_csv(path) for model, path in zip(models, snakemake.input.fitted)}
random = {model: pd.read_csv(path, dtype={"group": str}) for model, path in zip(models, snakemake.input.random_effects)}
io.write_csv(group_random_effects(random, focus["group"]), snakemake.output.random_effects)
io.write_csv(
    group_predictions(data, fitted, grouping_factor, focus["group"], focus["by"]), snakemake.output.predictions
)
