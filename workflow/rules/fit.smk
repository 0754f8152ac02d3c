# Model fits: small models of a data set share a job (a batch), the others have one each
# (lmmflow.pipeline.batches plans which; lmmflow.pipeline.fit_job is the command of both).


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
