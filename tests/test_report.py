"""The report: template filling, renderer choice and command lines, the rule graph picture, and
the workflow's report jobs (rerun on a formula change, Snakemake's own report)."""

import json
import os
import random
import re
import shutil
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lmmflow import report
from lmmflow.rulegraph import normalize_dot, snakemake_rulegraph

ROOT = Path(__file__).resolve().parents[1]


# --- formatting and filling ----------------------------------------------------------------


def test_numbers_as_the_chapter_prints_them():
    assert report.number(2.5992142) == "2.599"
    assert report.number(-0.0001) == "0.000"
    assert report.number(150) == "150"
    assert report.number(float("nan")) == "–"
    assert report.p_value(5.9e-73) == "<0.001"


def test_pipe_table_aligns_numbers_and_keeps_integers():
    table = pd.DataFrame({"model": ["a|b", "c"], "K": [10.0, float("nan")], "AICc": [2352.6696, 1.0]})
    text = report.pipe_table(table, "Caption.")
    lines = text.splitlines()
    assert lines[0] == "| model | K | AICc |"
    assert re.fullmatch(r"\|:-+\|-+:\|-+:\|", lines[1])
    assert lines[2] == "| a\\|b | 10 | 2352.670 |" and lines[3] == "| c | – | 1.000 |"
    assert lines[-1] == ": Caption."


@pytest.fixture
def results(tmp_path):
    """A minimal results tree: one model's fit and tables."""
    folder = tmp_path / "results" / "models" / "m1"
    folder.mkdir(parents=True)
    fit = {
        "dataset": "d",
        "formula": "y ~ x + (1 + x | g)",
        "n_obs": 10,
        "n_groups": {"g": 5},
        "logLik": -1.0,
        "K": 6,
        "singular": True,
        "converged": True,
        "path": "fast",
        "optimizer": "L-BFGS-B",
        "warnings": [],
        "fixed_effects": ["Intercept", "x"],
    }
    (folder / "fit.json").write_text(json.dumps(fit))
    pd.DataFrame(
        {
            "term": ["Intercept", "x"],
            "value": [2.0, 0.1],
            "se": [0.1, 0.01],
            "t": [20.0, 10.0],
            "p_value": [0.0, 0.0],
            "lower_2.5": [1.8, 0.08],
            "upper_97.5": [2.2, 0.12],
        }
    ).to_csv(folder / "fixed_effects.csv", index=False)
    pd.DataFrame(
        {
            "group": ["g", "g", "Residual"],
            "effect": ["Intercept", "x", ""],
            "variance": [0.04, 0.0025, 0.01],
            "sd": [0.2, 0.05, 0.1],
            "var_prop": [0.76, 0.05, 0.19],
        }
    ).to_csv(folder / "variance_components.csv", index=False)
    pd.DataFrame({"group": ["g"], "effect_1": ["Intercept"], "effect_2": ["x"], "correlation": [-0.25]}).to_csv(
        folder / "re_correlations.csv", index=False
    )
    paths = [str(p) for p in folder.iterdir()]
    return report.Results(paths, config={}, figures_dir=tmp_path / "build" / "figures")


CONTEXT = {"git": {"commit": None, "dirty": None}, "versions": {"Python": "3"}, "date": "today", "renderer_label": "x"}


def test_placeholders_are_filled_from_the_results(results):
    text = (
        "Slopes range from <!-- lmmflow:value model=m1 quantity=low.x --> to "
        "<!-- lmmflow:value model=m1 quantity=high.x -->; r = <!-- lmmflow:value model=m1 quantity=cor.Intercept.x -->.\n\n"
        "<!-- lmmflow:variance_components model=m1 -->\n"
    )
    filled, left_out = report.fill_template(text, results, CONTEXT)
    assert "Slopes range from 0.000 to 0.200; r = -0.250." in filled
    assert "| g | x | 0.003 | 0.050 | 0.050 |" in filled
    assert "callout-warning" in filled and "Singular fit" in filled  # flagged where its table is
    assert "lmmflow:" not in filled and left_out == []


@pytest.mark.parametrize(
    "quantity, named",
    [("fixef.occasionx", "no fixed effect 'occasionx' in fixed_effects.csv"), ("sd.z", "0 random effects named 'z'")],
)
def test_a_value_naming_a_missing_term_is_an_error_naming_it(results, quantity, named):
    with pytest.raises(report.ReportError, match=f"m1: {re.escape(quantity)}: {re.escape(named)}"):
        report.value(results, "m1", quantity)


def test_a_section_whose_results_are_not_configured_is_left_out(results):
    text = (
        "# Kept\n\n<!-- lmmflow:section -->\n# Gone\n\n<!-- lmmflow:fixed_effects model=nope -->\n<!-- lmmflow:end -->\n"
        "<!-- lmmflow:section -->\n# Also kept\n\n<!-- lmmflow:fixed_effects model=m1 -->\n<!-- lmmflow:end -->\n"
    )
    filled, left_out = report.fill_template(text, results, CONTEXT)
    assert "# Kept" in filled and "# Also kept" in filled and "Gone" not in filled
    assert left_out == ["results/models/nope/fit.json"]


def test_a_missing_result_outside_a_section_is_an_error(results):
    with pytest.raises(report.ReportError, match="results/models/nope/fit.json"):
        report.fill_template("<!-- lmmflow:fixed_effects model=nope -->", results, CONTEXT)
    with pytest.raises(report.ReportError, match="unknown placeholder lmmflow:bogus"):
        report.fill_template("<!-- lmmflow:bogus -->", results, CONTEXT)


def test_the_template_uses_only_syntax_both_renderers_share():
    text = (ROOT / "reports" / "report.qmd").read_text()
    for quarto_only in ("{{<", "{#fig-", "@fig-", "{#tbl-", "@tbl-"):
        assert quarto_only not in text
    meta = report.front_matter(text)
    html = meta["format"]["html"]
    assert html["embed-resources"] is True and "self-contained" not in html
    assert html["toc"] is True and html["number-sections"] is True and html["css"] == "report.css"
    assert (ROOT / "reports" / "report.css").exists()
    names = set(re.findall(r"<!--\s*lmmflow:(\w+)", text)) - {"section", "end", "provenance"}
    assert names <= set(report.BLOCKS)


# --- renderers -------------------------------------------------------------------------------


def test_quarto_command_line():
    assert report.quarto_command("/opt/quarto/bin/quarto", "report.qmd", "/w/results/report/build/_rendered") == [
        "/opt/quarto/bin/quarto",
        "render",
        "report.qmd",
        "--to",
        "html",
        "--output-dir",
        "/w/results/report/build/_rendered",
    ]


def test_pandoc_command_line():
    command = report.pandoc_command("/p/pandoc", "report.qmd", "report.html", "report.css", "More Random Effects")
    assert command == [
        "/p/pandoc",
        "report.qmd",
        "--from",
        "markdown",
        "--to",
        "html5",
        "--standalone",
        "--embed-resources",
        "--toc",
        "--number-sections",
        "--css",
        "report.css",
        "--metadata",
        "title=More Random Effects",
        "--output",
        "report.html",
    ]


@pytest.mark.parametrize(
    "choice, on_path, expected",
    [("auto", True, "quarto"), ("auto", False, "pandoc"), ("quarto", True, "quarto"), ("pandoc", True, "pandoc")],
)
def test_renderer_selection(choice, on_path, expected):
    def which(name):
        return "/fake/quarto" if on_path and name == "quarto" else None

    assert report.select_renderer(choice, which=which)[0] == expected


def test_asking_for_quarto_without_quarto_is_refused():
    with pytest.raises(report.ReportError, match="no `quarto` is on PATH"):
        report.select_renderer("quarto", which=lambda name: None)
    with pytest.raises(report.ReportError, match="expected one of"):
        report.select_renderer("word", which=lambda name: None)


FAKE_QUARTO = """#!{python}
# A stand-in for quarto: records its arguments, writes <output-dir>/<name>.html.
import json, os, pathlib, sys
if sys.argv[1:] == ["--version"]:
    print("9.9.9")
    sys.exit(0)
pathlib.Path(os.environ["FAKE_QUARTO_LOG"]).write_text(json.dumps({{"argv": sys.argv, "cwd": os.getcwd()}}))
source = pathlib.Path(sys.argv[2])
out = pathlib.Path(sys.argv[sys.argv.index("--output-dir") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / (source.stem + ".html")).write_text("<html><body>fake quarto\\n" + source.read_text() + "</body></html>")
"""


@pytest.fixture
def fake_quarto(tmp_path, monkeypatch):
    """A `quarto` on PATH that records how it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    quarto = bin_dir / "quarto"
    quarto.write_text(FAKE_QUARTO.format(python=sys.executable))
    quarto.chmod(quarto.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "quarto.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUARTO_LOG", str(log))
    return quarto, log


def build(tmp_path, renderer):
    template = tmp_path / "report.qmd"
    template.write_text(
        "---\ntitle: Test report\nformat:\n  html:\n    embed-resources: true\n---\n\n# One\n\nText.\n\n"
        "<!-- lmmflow:section -->\n# Gone\n<!-- lmmflow:diagnostics -->\n<!-- lmmflow:end -->\n\n"
        "# Provenance\n\n<!-- lmmflow:provenance -->\n"
    )
    css = tmp_path / "report.css"
    css.write_text("body { color: #111; }\n")
    html, build_dir = tmp_path / "out" / "report.html", tmp_path / "out" / "build"
    summary = report.build_report(
        template=template,
        css=css,
        results=[],
        config={"report": {"renderer": renderer}},
        renderer=renderer,
        repo=ROOT,
        html=html,
        build=build_dir,
    )
    return summary, html, build_dir


def test_auto_renders_with_quarto_when_it_is_on_path(tmp_path, fake_quarto):
    quarto, log = fake_quarto
    summary, html, build_dir = build(tmp_path, "auto")
    call = json.loads(log.read_text())
    assert call["argv"][1:] == [
        "render",
        "report.qmd",
        "--to",
        "html",
        "--output-dir",
        str((build_dir / "_rendered").resolve()),
    ]
    assert Path(call["cwd"]) == build_dir.resolve()  # the copy in the job's own folder is rendered
    assert summary["renderer"] == "Quarto 9.9.9"
    text = html.read_text()
    assert "fake quarto" in text and "Renderer: Quarto 9.9.9" in text
    assert "embed-resources: true" in (build_dir / "report.qmd").read_text()


def test_pandoc_when_asked_even_with_quarto_on_path(tmp_path, fake_quarto):
    quarto, log = fake_quarto
    summary, html, _ = build(tmp_path, "pandoc")
    assert not log.exists()
    assert summary["renderer"].startswith("pandoc ") and summary["renderer"].endswith("(pypandoc-binary)")
    assert summary["left_out"] == ["results/models/<model>/fit.json"]
    text = html.read_text()
    assert "<title>Test report</title>" in text and 'id="TOC"' in text
    assert 'class="header-section-number">1</span>' in text and "color: #111" in text  # css embedded
    assert "lmmflow:" not in text and "Gone" not in text
    assert "Renderer: pandoc" in text and "Configuration as used" in text


# --- the rule graph in the README ------------------------------------------------------------


def test_rulegraph_normalization_ignores_numbering_colours_and_order():
    dot = (
        'digraph snakemake_dag {\n\t0[label = "all", color = "0.1 0.6 0.85", style="rounded"];\n'
        '\t1[label = "fit", color = "0.2 0.6 0.85", style="rounded"];\n'
        '\t2[label = "prepare", color = "0.3 0.6 0.85", style="rounded"];\n\t1 -> 0\n\t2 -> 1\n\t2 -> 0\n}\n'
    )
    lines = dot.splitlines()
    body = lines[1:-1]
    random.Random(1).shuffle(body)
    renumbered = "\n".join([lines[0], *body, lines[-1]]).replace('"0.1', '"0.9').replace("2", "7")
    assert normalize_dot(dot) == normalize_dot(renumbered)
    assert '"prepare" -> "all"' not in normalize_dot(dot)  # implied by prepare -> fit -> all
    assert '"prepare" -> "fit";' in normalize_dot(dot) and '"fit" -> "all";' in normalize_dot(dot)


def test_committed_rulegraph_matches_the_workflow():
    committed = (ROOT / "docs" / "rulegraph.dot").read_text()
    assert normalize_dot(snakemake_rulegraph(ROOT)) == committed, (
        "docs/rulegraph.dot is out of date: run `python -m lmmflow.rulegraph` and commit docs/"
    )
    svg = (ROOT / "docs" / "rulegraph.svg").read_text()
    for rule in re.findall(r'^    "(\w+)";$', committed, re.MULTILINE):
        assert f">{rule}</text>" in svg, f"docs/rulegraph.svg lacks {rule}: run `python -m lmmflow.rulegraph`"
    assert "docs/rulegraph.svg" in (ROOT / "README.md").read_text()


# --- the workflow's report jobs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from report_helpers import completed_workflow

    return completed_workflow(tmp_path_factory)


def dry_run_jobs(text):
    """(rule, wildcards) of every job a dry run lists."""
    jobs, rule = [], None
    for line in text.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            if rule is not None:
                jobs.append((rule, ""))
            rule = match.group(1)
        elif rule is not None and (match := re.match(r"^\s+wildcards: (.*)$", line)):
            jobs.append((rule, match.group(1).strip()))
            rule = None
        elif rule is not None and not line.strip():
            jobs.append((rule, ""))
            rule = None
    if rule is not None:
        jobs.append((rule, ""))
    return set(jobs)


@pytest.mark.workflow
def test_report_is_built_by_default(workdir):
    html = workdir / "results" / "report" / "report.html"
    assert html.stat().st_size > 100_000
    text = html.read_text()
    assert "<img" in text and 'src="data:image/png;base64,' in text  # self-contained
    log = (workdir / "logs" / "report" / "render_report.log").read_text()
    assert '"left_out": []' in log  # every section of the default configuration is there


@pytest.mark.workflow
def test_changing_a_formula_reruns_that_model_its_dependents_and_the_report(workdir, tmp_path):
    from workflow_helpers import offline, output, snakemake

    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    formula = "achievement ~ ses + (1 | primary_school_id)"
    extra = copy / "extra.yaml"
    extra.write_text(yaml.safe_dump({"models": {"ach_cat_re_3": {"dataset": "pupils", "formula": formula}}}))

    dry = snakemake(copy, "--dry-run", "--configfile", str(extra), *offline())
    assert dry.returncode == 0, output(dry)
    assert dry_run_jobs(dry.stdout) == {
        ("fit_model", "model=ach_cat_re_3"),
        ("compare_models", "comparison=ach_cat_re"),
        ("focus_group", "focus=school10"),
        ("render_report", ""),
        ("all", ""),
    }, dry.stdout

    old = pd.read_csv(copy / "results/comparisons/ach_cat_re.csv").set_index("model")
    run = snakemake(copy, "--configfile", str(extra), *offline())
    assert run.returncode == 0, output(run)
    new = pd.read_csv(copy / "results/comparisons/ach_cat_re.csv").set_index("model")
    old_aicc, new_aicc = report.number(old.loc["ach_cat_re_3", "AICc"]), report.number(new.loc["ach_cat_re_3", "AICc"])
    assert old_aicc != new_aicc
    html = (copy / "results/report/report.html").read_text()
    assert new_aicc in html and old_aicc not in html
    assert formula in html and "primary_school_id:ses)" not in html.split("Configuration as used")[0]


@pytest.mark.workflow
def test_snakemake_report_has_the_registered_figures_and_tables(workdir):
    from workflow_helpers import offline, output, snakemake

    target = "results/report/workflow-report.html"
    result = snakemake(workdir, "--report", target, *offline())
    assert result.returncode == 0, output(result)
    text = (workdir / target).read_text()
    for expected in (
        "Figures",
        "Models",
        "Comparisons",
        "Shrinkage",
        "gpa_effects.png",
        "shrinkage_settings.png",
        "fixed_effects.csv",
        "ach_cat_re.csv",
        "sd_summary.csv",
    ):
        assert expected in text, expected
