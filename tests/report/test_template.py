"""Filling reports/report.qmd: placeholders, sections left out, errors naming what is missing."""

import re

import pytest
from conftest import ROOT
from report_helpers import CONTEXT, model_results

from lmmflow.report import BLOCKS, ReportError, fill_template, front_matter


@pytest.fixture
def results(tmp_path):
    return model_results(tmp_path)


def test_placeholders_are_filled_from_the_results(results):
    text = (
        "Slopes range from <!-- lmmflow:value model=m1 quantity=low.x --> to "
        "<!-- lmmflow:value model=m1 quantity=high.x -->; r = <!-- lmmflow:value model=m1 quantity=cor.Intercept.x -->.\n\n"
        "<!-- lmmflow:variance_components model=m1 -->\n"
    )
    filled, left_out = fill_template(text, results, CONTEXT)
    assert "Slopes range from 0.000 to 0.200; r = -0.250." in filled
    assert "| g | x | 0.003 | 0.050 | 0.050 |" in filled
    assert "callout-warning" in filled and "Singular fit" in filled  # flagged where its table is
    assert "lmmflow:" not in filled and left_out == []


def test_a_section_whose_results_are_not_configured_is_left_out(results):
    text = (
        "# Kept\n\n<!-- lmmflow:section -->\n# Gone\n\n<!-- lmmflow:fixed_effects model=nope -->\n<!-- lmmflow:end -->\n"
        "<!-- lmmflow:section -->\n# Also kept\n\n<!-- lmmflow:fixed_effects model=m1 -->\n<!-- lmmflow:end -->\n"
    )
    filled, left_out = fill_template(text, results, CONTEXT)
    assert "# Kept" in filled and "# Also kept" in filled and "Gone" not in filled
    assert left_out == ["results/models/nope/fit.json"]


def test_a_missing_result_outside_a_section_is_an_error(results):
    with pytest.raises(ReportError, match="results/models/nope/fit.json"):
        fill_template("<!-- lmmflow:fixed_effects model=nope -->", results, CONTEXT)
    with pytest.raises(ReportError, match="unknown placeholder lmmflow:bogus"):
        fill_template("<!-- lmmflow:bogus -->", results, CONTEXT)


def test_bad_placeholder_arguments_are_errors_naming_the_placeholder(results):
    with pytest.raises(ReportError, match="'m1': expected key=value"):
        fill_template("<!-- lmmflow:fixed_effects m1 -->", results, CONTEXT)
    with pytest.raises(ReportError, match="placeholder lmmflow:fixed_effects: .*'colour'"):
        fill_template("<!-- lmmflow:fixed_effects model=m1 colour=red -->", results, CONTEXT)


def test_the_template_uses_only_syntax_both_renderers_share():
    text = (ROOT / "reports" / "report.qmd").read_text()
    for quarto_only in ("{{<", "{#fig-", "@fig-", "{#tbl-", "@tbl-"):
        assert quarto_only not in text
    meta = front_matter(text)
    html = meta["format"]["html"]
    assert html["embed-resources"] is True and "self-contained" not in html
    assert html["toc"] is True and html["number-sections"] is True and html["css"] == "report.css"
    assert (ROOT / "reports" / "report.css").exists()
    names = set(re.findall(r"<!--\s*lmmflow:(\w+)", text)) - {"section", "end", "provenance"}
    assert names <= set(BLOCKS)
