"""The report's interactive figures: their numbers are the workflow's (read back from the rendered
page and compared with the CSV files they come from), their blocks are byte-identical for the
same inputs, plotly's JavaScript is embedded once, the report stays under 10 MB, and the raw HTML
blocks pass through pandoc and are well-formed for Quarto."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from lmmflow.report import Results
from lmmflow.report.interactive import LIBRARY_PLACEHOLDER, MARKER, embed_library, figure_html, raw_html, with_library

MAX_BYTES = 10 * 1024 * 1024
PLOTS = ["trajectories", "animation", "effects", "coefficient_scatter"]


# --- without the workflow ----------------------------------------------------------------------
def small_figure():
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=[0, 1, None], y=[2.5, 3.0, None], customdata=[["7"], ["7"], [None]]))


def test_raw_blocks_pass_through_pandoc_with_plotly_embedded_once(tmp_path):
    import pypandoc
    from plotly.offline import get_plotlyjs

    block = figure_html(small_figure(), "lmmflow-t-one", "A <caption>")
    markdown = with_library(f"# One\n\n{block}\n\nText.\n\n{block.replace('t-one', 't-two')}\n")
    rendered = pypandoc.convert_text(
        markdown, "html5", format="markdown", extra_args=["--standalone", "--metadata", "title=t"]
    )
    assert rendered.count(LIBRARY_PLACEHOLDER) == 1  # the library goes in after rendering
    page = embed_library(rendered)
    assert LIBRARY_PLACEHOLDER not in page
    inner = block.split("\n", 1)[1].rsplit("\n", 1)[0]
    assert inner in page  # verbatim
    assert page.count(get_plotlyjs()[:500]) == 1 and page.index(get_plotlyjs()[:500]) < page.index(MARKER)
    assert "A &lt;caption&gt;" in page and "<noscript>" in page
    assert with_library("no figures here") == "no figures here"


def test_a_fence_is_longer_than_any_backticks_inside():
    assert raw_html("a ``` b").startswith("````{=html}\n") and raw_html("x").startswith("```{=html}\n")


def test_figure_blocks_have_fixed_ids():
    first, second = (figure_html(small_figure(), "lmmflow-s-p", "c") for _ in range(2))
    assert first == second and 'id="lmmflow-s-p"' in first
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", first)  # no uuid


# --- on the workflow's results -----------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(completed_workflow):
    return completed_workflow


@pytest.fixture(scope="module")
def page(workdir):
    return (workdir / "results" / "report" / "report.html").read_text()


@pytest.fixture(scope="module")
def plots(page):
    """Figure id -> (data, layout, frames), as plotly receives them in the page."""
    decoder, found = json.JSONDecoder(), {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())
        found[match.group(1)] = [data, layout, []]
    for match in re.finditer(r"Plotly\.addFrames\('([^']+)',\s*", page):
        found[match.group(1)][2] = decoder.raw_decode(page, match.end())[0]
    return found


@pytest.fixture(scope="module")
def gpa(workdir):
    data = pd.read_csv(workdir / "results/data/gpa.csv", dtype={"student": str})
    coefficients = pd.read_csv(workdir / "results/shrinkage/gpa/coefficients.csv", dtype={"student": str})
    return data, coefficients.set_index("student")


def points(trace) -> pd.DataFrame:
    """A trace's points (gaps dropped) with the group and the hover numbers of each."""
    custom = pd.DataFrame(trace["customdata"])
    frame = pd.DataFrame({"x": trace["x"], "y": trace["y"]}).join(custom)
    return frame.dropna(subset=["x"]).rename(columns={0: "student"})


def assert_paths_are_the_data(trace, data, coefficients):
    shown = points(trace)
    expected = data[data["student"].isin(shown["student"].unique())]
    for student, rows in shown.groupby("student", sort=False):
        observed = expected[expected["student"] == student].sort_values("occasion")
        assert rows["x"].tolist() == observed["occasion"].tolist()
        assert rows["y"].tolist() == observed["gpa"].tolist()
        assert (rows[1] == coefficients.loc[student, "slope_separate"]).all()
        assert (rows[2] == coefficients.loc[student, "slope_mixed"]).all()
    return shown


@pytest.mark.workflow
def test_the_report_is_one_file_under_10_mb_with_plotly_once(workdir, page):
    from plotly.offline import get_plotlyjs

    size = (workdir / "results" / "report" / "report.html").stat().st_size
    print(f"report.html: {size / 1e6:.2f} MB")
    assert size <= MAX_BYTES
    assert page.count(get_plotlyjs()[:500]) == 1
    # no script from a CDN (plotly.js names cdn.plot.ly only as its default for map outlines)
    assert not re.search(r"<script[^>]*\ssrc=", page) and "cdn.plot.ly/plotly" not in page


@pytest.mark.workflow
def test_the_trajectories_are_gpa_csv(plots, gpa):
    data, coefficients = gpa
    traces = plots["lmmflow-gpa-trajectories"][0]
    everyone = assert_paths_are_the_data(traces[0], data, coefficients)
    assert set(everyone["student"]) == set(data["student"]) and len(everyone) == len(data)
    for highlighted in traces[1:]:
        (student,) = points(highlighted)["student"].unique()
        assert_paths_are_the_data(highlighted, data, coefficients)
        assert highlighted["name"].startswith(f"Student {student} (own slope")


@pytest.mark.workflow
def test_the_highlighted_students_are_the_static_figures(workdir, plots):
    from lmmflow.data.prepare import read_prepared
    from lmmflow.outputs import figures

    data = read_prepared(workdir / "results/data/gpa.csv", workdir / "results/data/gpa.schema.json")
    shown = [points(trace)["student"].iloc[0] for trace in plots["lmmflow-gpa-trajectories"][0][1:]]
    assert shown == [str(s) for s in figures.pick_highlights(data, "student", "occasion", "gpa")]


@pytest.mark.workflow
def test_the_animation_shows_each_student_by_own_slope(plots, gpa):
    data, coefficients = gpa
    traces, _, frames = plots["lmmflow-gpa-animation"]
    assert_paths_are_the_data(traces[0], data, coefficients)
    order = coefficients.sort_values("slope_separate", kind="stable").index.tolist()
    assert [frame["name"] for frame in frames] == order
    for frame in frames:
        assert frame["traces"] == [1]
        shown = assert_paths_are_the_data(frame["data"][0], data, coefficients)
        assert shown["student"].unique().tolist() == [frame["name"]]


@pytest.mark.workflow
def test_the_effects_are_coefficients_csv(plots, gpa):
    _, coefficients = gpa
    traces = plots["lmmflow-gpa-effects"][0]
    for estimate, lines in (("mixed", traces[0:2]), ("separate", traces[3:5])):
        drawn = pd.concat([points(trace).assign(downward="downward" in trace["name"]) for trace in lines])
        table = coefficients.loc[drawn["student"]]
        assert np.array_equal(drawn[1], table[f"intercept_{estimate}"]) and np.array_equal(
            drawn[2], table[f"slope_{estimate}"]
        )
        assert np.allclose(drawn["y"], drawn[1] + drawn[2] * drawn["x"], rtol=0, atol=1e-12)
        assert drawn.drop_duplicates("student")["student"].sort_values().tolist() == sorted(coefficients.index)
        assert (drawn["downward"] == (drawn[2] < 0)).all()  # negative slopes marked


@pytest.mark.workflow
def test_the_negative_slopes_agree_with_the_workflows_count(workdir, plots):
    counts = pd.read_csv(workdir / "results/shrinkage/negative_slopes.csv").query("setting == 'gpa'")
    names = [trace["name"] for trace in plots["lmmflow-gpa-effects"][0]]
    for estimate, label in (("mixed", "Mixed model"), ("separate", "Own OLS")):
        n = int(counts.loc[counts["estimate"] == estimate, "n_negative_slopes"].iloc[0])
        assert f"{label}, downward slope: {n} students" in names


@pytest.mark.workflow
def test_the_scatter_is_coefficients_csv(plots, gpa):
    _, coefficients = gpa
    traces = plots["lmmflow-gpa-coefficient_scatter"][0]
    for trace, coefficient in ((traces[0], "intercept"), (traces[2], "slope")):
        shown = points(trace).set_index("student")
        assert sorted(shown.index) == sorted(coefficients.index)
        table = coefficients.loc[shown.index]
        assert np.array_equal(shown["x"], table[f"{coefficient}_separate"])
        assert np.array_equal(shown["y"], table[f"{coefficient}_mixed"])


@pytest.mark.workflow
def test_figure_blocks_are_byte_identical_for_the_same_inputs(workdir, page, tmp_path):
    from lmmflow.report.blocks.figures import interactive

    paths = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    for plot in PLOTS:
        blocks = [
            interactive(Results(paths, config=config, figures_dir=tmp_path / str(i)), plot, "gpa", "c") for i in (1, 2)
        ]
        assert blocks[0] == blocks[1], plot
        plot_html = blocks[0].split('<div style="', 1)[1].rsplit("<figcaption>", 1)[0]
        assert plot_html in page, plot  # what the report shows is this, byte for byte


@pytest.mark.workflow
def test_every_figure_is_there_as_png_and_svg(workdir):
    folder = workdir / "results" / "figures"
    png = {p.stem for p in folder.glob("*.png")}
    assert png == {p.stem for p in folder.glob("*.svg")}
    assert {"gpa_trajectories", "gpa_effects", "gpa_coefficient_densities", "gpa_coefficient_scatter"} <= png


@pytest.mark.workflow
def test_raw_blocks_are_well_formed_for_quarto(workdir):
    """Quarto cannot run here: check what it would read. Each raw block opens with a fence and
    ``{=html}`` on a line of its own and closes with the same fence; the front matter is kept."""
    filled = (workdir / "results" / "report" / "build" / "report.qmd").read_text()
    assert filled.startswith("---\n") and "embed-resources: true" in filled.split("\n---\n", 1)[0]
    lines, open_fence, blocks = filled.split("\n"), None, 0
    for line in lines:
        if open_fence is None and (match := re.fullmatch(r"(`{3,})\{=html\}", line)):
            open_fence, blocks = match.group(1), blocks + 1
        elif open_fence is not None and line == open_fence:
            open_fence = None
    assert open_fence is None and blocks == 1 + len(PLOTS)  # plotly's JavaScript and each figure
    assert filled.count("{=html}") == blocks
