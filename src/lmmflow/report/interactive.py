"""Interactive figures of the report (plotly), from the same files as the static ones.

Each figure is a raw HTML block (```` ```{=html} ````), which pandoc and Quarto both pass through
untouched; plotly's JavaScript is embedded once, before the first figure (``with_library``), so
the report stays one offline file. Div ids are fixed (``lmmflow-<setting>-<figure>``) and the data
are written as plain JSON lists (not plotly's base64 arrays), so the same inputs give identical
bytes and a test can read the numbers back from the page. The static PNG beside each figure is
hidden on screen and shown for printing, or when scripts are off (``report.css``, ``NOSCRIPT``).
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from lmmflow.report.results import Results

MARKER = '<figure class="lmmflow-interactive"'
# Shown without scripts: the static figures instead of empty plot areas.
NOSCRIPT = (
    "<noscript><style>.lmmflow-static{display:block!important}.lmmflow-interactive{display:none}</style></noscript>"
)
CONFIG = {"displaylogo": False, "responsive": True}
HEIGHT = 460


def raw_html(content: str) -> str:
    """A raw HTML block whose fence is longer than any run of backticks in ``content``."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{{=html}}\n{content}\n{fence}"


def figure_html(fig, div_id: str, caption: str) -> str:
    """A plotly figure as a captioned raw HTML block; needs plotly's JavaScript on the page."""
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        auto_play=False,
        config=CONFIG,
        default_height=f"{fig.layout.height or HEIGHT}px",
    )
    return raw_html(
        f'{MARKER} id="{div_id}-figure">\n{plot}\n<figcaption>{html.escape(caption)}</figcaption>\n</figure>'
    )


# Stands for plotly.min.js until the page is rendered: pandoc parsing 4.8 MB of script costs it
# seconds and ~700 MB of memory, so the library goes into the rendered page (``embed_library``).
LIBRARY_PLACEHOLDER = "/* lmmflow: plotly.min.js */"


def plotly_library() -> str:
    """The inline script that will hold plotly.min.js, in a raw HTML block."""
    return raw_html(f'{NOSCRIPT}\n<script type="text/javascript">{LIBRARY_PLACEHOLDER}</script>')


def embed_library(page: str) -> str:
    """The rendered page with the installed plotly's JavaScript in place of its placeholder."""
    if LIBRARY_PLACEHOLDER not in page:
        return page
    from plotly.offline import get_plotlyjs

    return page.replace(LIBRARY_PLACEHOLDER, get_plotlyjs(), 1)


def with_library(markdown: str) -> str:
    """The filled report with plotly's JavaScript inserted once before its first interactive figure
    (it must run before the figures' scripts); unchanged when there is none."""
    position = markdown.find(MARKER)
    if position < 0:
        return markdown
    start = markdown.rfind("\n", 0, markdown.rfind("{=html}", 0, position)) + 1  # the fence's line
    return markdown[:start] + plotly_library() + "\n\n" + markdown[start:]


def static_fallback(image_markdown: str) -> str:
    """The static figure, shown when printing or without scripts (report.css)."""
    return f"::: {{.lmmflow-static}}\n{image_markdown}\n:::"


def as_list(values) -> list:
    """Plain JSON numbers and nulls (plotly would write numpy arrays as base64)."""
    return [None if isinstance(v, float) and np.isnan(v) else v for v in pd.Series(values, dtype=object).tolist()]


def read_setting(results: Results, setting: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A shrinkage setting's configuration, prepared data and per-group coefficients."""
    from lmmflow.data.prepare import read_prepared
    from lmmflow.inference.shrinkage import read_coefficients

    spec = results.config["shrinkage"]["settings"][setting]
    dataset = spec["dataset"]
    data = read_prepared(results.path(f"data/{dataset}.csv"), results.path(f"data/{dataset}.schema.json"))
    coefficients = read_coefficients(results.path(f"shrinkage/{setting}/coefficients.csv"))
    return spec, data, coefficients
