rule compare_models:
    input:
        get_comparison_fits,
    output:
        report(
            "results/comparisons/{comparison}.csv",
            caption="../report/comparison.rst",
            category="Comparisons",
        ),
    log:
        "logs/tables/compare_{comparison}.log",
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/compare_models.py"
