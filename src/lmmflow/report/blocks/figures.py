"""Figures: a results image copied beside the filled template, for the renderer to embed."""

from __future__ import annotations

import shutil
from pathlib import Path

from lmmflow.report.results import ReportError, Results


def figure(results: Results, file: str, caption: str) -> str:
    """Copy a results figure beside the filled template; a captioned image in its own paragraph."""
    source = results.path(file)
    target = results.figures_dir / Path(file).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return f"![{caption}]({target.parent.name}/{target.name})"


def interactive(results: Results, plot: str, setting: str, caption: str, static: str | None = None) -> str:
    """A shrinkage setting's interactive figure ``plot`` (see ``INTERACTIVE``) as a raw HTML block,
    then the static figure ``static`` as its fallback for printing and for pages without scripts."""
    from lmmflow.report.interactive import figure_html, read_setting, static_fallback
    from lmmflow.report.interactive_figures import INTERACTIVE, Setting

    if plot not in INTERACTIVE:
        raise ReportError(f"lmmflow:interactive plot={plot!r}: expected one of {', '.join(INTERACTIVE)}")
    block = figure_html(
        INTERACTIVE[plot](Setting(*read_setting(results, setting))), f"lmmflow-{setting}-{plot}", caption
    )
    return block if static is None else f"{block}\n\n{static_fallback(figure(results, static, caption))}"
