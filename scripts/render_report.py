"""Fill reports/report.qmd from the results and render it to one self-contained HTML page."""

import sys

from lmmflow.pipeline.scripting import send_stderr_to_log
from lmmflow.report import build_report

send_stderr_to_log(snakemake.log[0])

build_report(
    template=snakemake.input.template,
    css=snakemake.input.css,
    results=snakemake.input.results,
    config=snakemake.params.config,
    renderer=snakemake.params.renderer,
    repo=snakemake.params.repo,
    html=snakemake.output.html,
    build=snakemake.output.build,
    log=sys.stderr,
)
