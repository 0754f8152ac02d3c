rule compare_models:
    input:
        unpack(get_compared_inputs),
    output:
        table=report(
            "results/comparisons/{comparison}.csv",
            caption="../report/comparison.rst",
            category="Comparisons",
        ),
        verdict=report(
            "results/comparisons/{comparison}.verdict.csv",
            caption="../report/comparison_verdict.rst",
            category="Comparisons",
        ),
    log:
        "logs/tables/compare_{comparison}.log",
    benchmark:
        "results/benchmarks/tables/compare_{comparison}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        models=get_compared_models,
    script:
        "../../scripts/compare_models.py"


rule focus_group:
    input:
        unpack(get_focus_inputs),
    output:
        random_effects=report(
            "results/tables/{focus}_random_effects.csv",
            caption="../report/focus_random_effects.rst",
            category="Focus groups",
        ),
        predictions=report(
            "results/tables/{focus}_predictions.csv",
            caption="../report/focus_predictions.rst",
            category="Focus groups",
        ),
    log:
        "logs/tables/focus_{focus}.log",
    benchmark:
        "results/benchmarks/tables/focus_{focus}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        focus=lookup(dpath="focus_groups/{focus}", within=config),
    script:
        "../../scripts/focus_group.py"


rule coefficient_check:
    input:
        fixed_effects="results/models/{model}/fixed_effects.csv",
        random_effects="results/models/{model}/random_effects.csv",
        random_coefficients="results/models/{model}/random_coefficients.csv",
    output:
        report(
            "results/tables/{model}_coefficient_check.csv",
            caption="../report/coefficient_check.rst",
            category="Exercises",
        ),
    log:
        "logs/tables/coefficient_check_{model}.log",
    benchmark:
        "results/benchmarks/tables/coefficient_check_{model}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/coefficient_check.py"
