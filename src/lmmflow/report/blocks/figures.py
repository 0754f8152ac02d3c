"""Figures: a results image copied beside the filled template, for the renderer to embed."""

from __future__ import annotations

import shutil
from pathlib import Path

from lmmflow.report.results import Results


def figure(results: Results, file: str, caption: str) -> str:
    """Copy a results figure beside the filled template; a captioned image in its own paragraph."""
    source = results.path(file)
    target = results.figures_dir / Path(file).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return f"![{caption}]({target.parent.name}/{target.name})"
