rule fit_model:
    input:
        unpack(get_model_data),
    output:
        fit="results/models/{model}/fit.json",
        solution="results/models/{model}/solution.json",
        attempts="results/models/{model}/attempts.csv",
        fixed_effects=report(
            "results/models/{model}/fixed_effects.csv",
            caption="../report/fixed_effects.rst",
            category="Models",
            subcategory="{model}",
        ),
        variance_components=report(
            "results/models/{model}/variance_components.csv",
            caption="../report/variance_components.rst",
            category="Models",
            subcategory="{model}",
        ),
        re_correlations="results/models/{model}/re_correlations.csv",
        random_effects="results/models/{model}/random_effects.csv",
        random_coefficients="results/models/{model}/random_coefficients.csv",
        fitted="results/models/{model}/fitted.csv",
    log:
        "logs/fit/{model}.log",
    benchmark:
        "results/benchmarks/fit/{model}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        dataset=lookup(dpath="models/{model}/dataset", within=config),
        formula=lookup(dpath="models/{model}/formula", within=config),
        weights=model_weights,
        engine=lookup(dpath="models/{model}/engine", within=config),
        reml=lookup(dpath="models/{model}/reml", within=config),
        family=lookup(dpath="models/{model}/family", within=config),
        link=lookup(dpath="models/{model}/link", within=config, default=None),
        nAGQ=lookup(dpath="models/{model}/nAGQ", within=config, default=1),
    script:
        "../../scripts/fit_model.py"
