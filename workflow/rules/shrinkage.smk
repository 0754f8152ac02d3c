# Shrinkage: in each setting (observed data or a seeded simulation), the mixed
# model's per-group coefficients against separate per-group regressions.


rule shrinkage_setting:
    input:
        unpack(get_shrinkage_setting_data),
    output:
        coefficients="results/shrinkage/{setting}/coefficients.csv",
        sd_summary="results/shrinkage/{setting}/sd_summary.csv",
        variance_components="results/shrinkage/{setting}/variance_components.csv",
        fit="results/shrinkage/{setting}/fit.json",
    log:
        "logs/shrinkage/{setting}.log",
    benchmark:
        "results/benchmarks/shrinkage/{setting}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        setting=lookup(dpath="{setting}", within=SHRINKAGE_SETTINGS),
    script:
        "../../scripts/shrinkage_setting.py"


rule shrinkage_summary:
    input:
        sd_summary=expand("results/shrinkage/{setting}/sd_summary.csv", setting=SHRINKAGE_SETTINGS),
        coefficients=expand("results/shrinkage/{setting}/coefficients.csv", setting=SHRINKAGE_SETTINGS),
    output:
        sd_summary=report(
            "results/shrinkage/sd_summary.csv",
            caption="../report/shrinkage_sd_summary.rst",
            category="Shrinkage",
        ),
        negative_slopes=report(
            "results/shrinkage/negative_slopes.csv",
            caption="../report/shrinkage_negative_slopes.rst",
            category="Shrinkage",
        ),
    log:
        "logs/shrinkage/summary.log",
    benchmark:
        "results/benchmarks/shrinkage/summary.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        settings=list(SHRINKAGE_SETTINGS),
    script:
        "../../scripts/shrinkage_summary.py"


rule shrinkage_observed_tables:
    input:
        coefficients="results/shrinkage/{setting}/coefficients.csv",
    output:
        coefficients="results/tables/{setting}_coefficients.csv",
        coefficient_statistics=report(
            "results/tables/{setting}_coefficient_statistics.csv",
            caption="../report/coefficient_statistics.rst",
            category="Shrinkage",
        ),
        negative_slopes="results/tables/{setting}_negative_slopes.csv",
    log:
        "logs/shrinkage/tables/{setting}.log",
    benchmark:
        "results/benchmarks/shrinkage/tables/{setting}.tsv"
    wildcard_constraints:
        setting=name_pattern(OBSERVED_SETTINGS),
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/shrinkage_observed_tables.py"
