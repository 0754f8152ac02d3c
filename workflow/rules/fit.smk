# Model fits: small models of a data set share a job (a batch), the others have one each
# (lmmflow.pipeline.batches plans which; lmmflow.pipeline.fit_job is the command of both).

import json
import sys

from lmmflow.pipeline.batches import plan_from_config
from lmmflow.pipeline.fit_job import model_log, model_outputs

FIT_PLAN = plan_from_config(config)
# A conda (or container) environment's own Python, else Snakemake's, as for `script:` jobs.
PYTHON = "python" if workflow.deployment_settings.deployment_method else sys.executable
FIT_COMMAND = "{PYTHON} -m lmmflow.pipeline.fit_job {input.data:q} {input.schema:q} {params.models:q}"


def fit_outputs(model):
    """A model's outputs (its name or `{model}`); fixed effects and variance components in the report."""
    outputs = model_outputs(model)
    for table in ("fixed_effects", "variance_components"):
        outputs[table] = report(outputs[table], caption=f"../report/{table}.rst", category="Models", subcategory=model)
    return outputs


def fitted_models(models):
    """The command's MODELS_JSON: each model's entry in the configuration."""
    return json.dumps({model: config["models"][model] for model in models}, sort_keys=True)


rule fit_model:
    input:
        unpack(get_model_data),
    output:
        **fit_outputs("{model}"),
    log:
        model_log("{model}"),
    benchmark:
        "results/benchmarks/fit/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(FIT_PLAN.solo),
    conda:
        "../envs/lmmflow.yaml"
    params:
        models=lambda wildcards: fitted_models([wildcards.model]),
    shell:
        FIT_COMMAND


# One rule per batch: a job's outputs are its models' outputs, its params their configuration
# entries, so that changing one model's formula reruns its batch and nothing else.
for batch, members in FIT_PLAN.batches.items():

    rule:
        name:
            f"fit_batch_{batch}"
        input:
            **prepared_data(config["models"][members[0]]["dataset"]),
        output:
            **{f"{model}_{name}": path for model in members for name, path in fit_outputs(model).items()},
        log:
            [model_log(model) for model in members],
        benchmark:
            f"results/benchmarks/fit_batch/{batch}.tsv"
        conda:
            "../envs/lmmflow.yaml"
        params:
            models=fitted_models(members),
        shell:
            FIT_COMMAND
