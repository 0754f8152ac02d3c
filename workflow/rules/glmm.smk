# GLMMs (models with `family: binomial | poisson`): a binomial model's predicted probabilities.


rule figure_glmm_probabilities:
    input:
        unpack(get_model_data),
        fixed_effects="results/models/{model}/fixed_effects.csv",
        variance_components="results/models/{model}/variance_components.csv",
        random_effects="results/models/{model}/random_effects.csv",
    output:
        png=report(
            "results/figures/{model}_probabilities.png",
            caption="../report/figure_glmm_probabilities.rst",
            category="Figures",
        ),
        svg="results/figures/{model}_probabilities.svg",
    log:
        "logs/figures/{model}_probabilities.log",
    benchmark:
        "results/benchmarks/figures/{model}_probabilities.tsv"
    wildcard_constraints:
        model=name_pattern(BINOMIAL_MODELS),
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/figure_glmm_probabilities.py"
