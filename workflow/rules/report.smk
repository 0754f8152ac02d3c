# Report: reports/report.qmd filled from every configured result and rendered to one
# self-contained HTML page (Quarto if available, else pandoc); see src/lmmflow/report/.


rule render_report:
    input:
        unpack(get_report_inputs),
    output:
        html="results/report/report.html",
        build=directory("results/report/build"),
    log:
        "logs/report/render_report.log",
    benchmark:
        "results/benchmarks/report/render_report.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        renderer=lookup(dpath="report/renderer", within=config),
        config=config,
        repo=workflow.basedir,
    script:
        "../../scripts/render_report.py"
