# Confidence intervals: lme4's profile-likelihood intervals per model and a
# parametric bootstrap split into seeded chunk jobs, aggregated by one rule.
# Every job starts from the fit stage's solution.json; none refits the model.


wildcard_constraints:
    chunk=name_pattern([str(chunk) for chunk in range(BOOTSTRAP["chunks"])]),


rule profile_intervals:
    input:
        unpack(get_model_data),
        solution="results/models/{model}/solution.json",
    output:
        report(
            "results/intervals/{model}/profile.csv",
            caption="../report/profile_intervals.rst",
            category="Intervals",
            subcategory="{model}",
        ),
    log:
        "logs/intervals/{model}/profile.log",
    benchmark:
        "results/benchmarks/intervals/{model}_profile.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=lookup(dpath="models/{model}/formula", within=config),
        weights=model_weights,
    script:
        "../../scripts/profile_intervals.py"


rule bootstrap_chunk:
    input:
        unpack(get_model_data),
        solution="results/models/{model}/solution.json",
    output:
        "results/intervals/{model}/bootstrap_chunk_{chunk}.csv",
    log:
        "logs/intervals/{model}/bootstrap_chunk_{chunk}.log",
    benchmark:
        "results/benchmarks/intervals/{model}_bootstrap_chunk_{chunk}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=lookup(dpath="models/{model}/formula", within=config),
        weights=model_weights,
        bootstrap=BOOTSTRAP,
    script:
        "../../scripts/bootstrap_chunk.py"


rule aggregate_bootstrap:
    input:
        chunks=get_bootstrap_chunks,
        solution="results/models/{model}/solution.json",
    output:
        "results/intervals/{model}/bootstrap.csv",
    log:
        "logs/intervals/{model}/bootstrap.log",
    benchmark:
        "results/benchmarks/intervals/{model}/bootstrap.tsv"
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/aggregate_bootstrap.py"
