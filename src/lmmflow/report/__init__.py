"""The workflow's HTML report: fill reports/report.qmd from the results, then render it.

The template is standard Quarto/pandoc markdown with placeholders written as HTML comments,
invisible when a renderer sees them unfilled::

    <!-- lmmflow:fixed_effects model=gpa_mixed columns=short -->   a block (a table, a figure)
    the slope is <!-- lmmflow:value model=gpa_mixed quantity=fixef.occasion -->   inline text

Every number comes from a results file handed to the job (``snakemake.input``), found by its path
below ``results/``; analysis decisions (the preferred model, the many-regressions statistics) are
made by the stages that own them and read here from their tables. Text between
``<!-- lmmflow:section -->`` and ``<!-- lmmflow:end -->`` is left out when a placeholder in it needs
a result that is not among the inputs (not configured); a placeholder outside a section needs its
results. Either renderer writes one self-contained HTML file.

Modules: ``results`` (the index of the job's inputs), ``formatting`` (numbers, pipe tables),
``blocks`` (what each placeholder becomes), ``provenance`` (the appendix), ``template`` (filling),
``render`` (renderer choice, ``build_report``).
"""

from lmmflow.report.blocks import BLOCKS
from lmmflow.report.render import build_report
from lmmflow.report.results import MissingResult, ReportError, Results
from lmmflow.report.template import fill_template, front_matter

__all__ = ["BLOCKS", "MissingResult", "ReportError", "Results", "build_report", "fill_template", "front_matter"]
