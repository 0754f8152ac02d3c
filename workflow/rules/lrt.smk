# Likelihood-ratio tests as lme4's anova(): the models' ML fits (REML fits refitted by ML)
# compared in order of their number of parameters.


rule likelihood_ratio_test:
    input:
        unpack(get_compared_inputs),
    output:
        report(
            "results/lrt/{test}.csv",
            caption="../report/likelihood_ratio_test.rst",
            category="Likelihood-ratio tests",
        ),
    log:
        "logs/lrt/{test}.log",
    benchmark:
        "results/benchmarks/lrt/{test}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        models=get_compared_models,
    script:
        "../../scripts/likelihood_ratio_test.py"
