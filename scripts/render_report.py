"""Fill reports/report.qmd from the results and render it to one self-contained HTML page."""

import sys

from lmmflow.report import build_report
from lmmflow.scripting import send_stderr_to_log

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
