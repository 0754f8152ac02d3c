"""One group's random effects and conditional predictions across the models of a focus group."""

import json
from pathlib import Path

import pandas as pd

from lmmflow.data.prepare import read_prepared
from lmmflow.outputs import io
from lmmflow.outputs.predictions import focus_grouping_factor, group_predictions, group_random_effects
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

focus = snakemake.params.focus
models = focus["models"]
factors = {
    model: json.loads(Path(path).read_text())["grouping_factor"] for model, path in zip(models, snakemake.input.fits)
}
grouping_factor = focus_grouping_factor(snakemake.wildcards.focus, factors)
data = read_prepared(snakemake.input.data, snakemake.input.schema)
fitted = {model: pd.read_csv(path) for model, path in zip(models, snakemake.input.fitted)}
random = {model: pd.read_csv(path, dtype={"group": str}) for model, path in zip(models, snakemake.input.random_effects)}
random_effects = group_random_effects(random, focus["group"])
predictions = group_predictions(data, fitted, grouping_factor, focus["group"], focus["by"])
io.write_csv(random_effects, snakemake.output.random_effects)  # both computed first: no partial output
io.write_csv(predictions, snakemake.output.predictions)
