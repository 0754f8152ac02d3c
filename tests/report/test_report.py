"""The workflow's report jobs (rerun on a formula change, Snakemake's own report). The report's
modules have their own test files (tests/report/test_*.py); the rule graph, tests/pipeline/test_rulegraph.py."""

import re
import shutil
from html import unescape
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import yaml

from lmmflow.report.formatting import number

# --- the workflow's report jobs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(completed_workflow):
    return completed_workflow


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
        ("likelihood_ratio_test", "test=ach_cat_re"),
        ("focus_group", "focus=school10"),
        ("render_report", ""),
        ("all", ""),
    }, dry.stdout

    old = pd.read_csv(copy / "results/comparisons/ach_cat_re.csv").set_index("model")
    run = snakemake(copy, "--configfile", str(extra), *offline())
    assert run.returncode == 0, output(run)
    new = pd.read_csv(copy / "results/comparisons/ach_cat_re.csv").set_index("model")
    old_aicc, new_aicc = number(old.loc["ach_cat_re_3", "AICc"]), number(new.loc["ach_cat_re_3", "AICc"])
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
    # docutils reports a caption it cannot parse (e.g. an undefined wildcard leaves ``````) on
    # stderr and as a system message in the page, but the report still builds
    assert "(WARNING/" not in output(result) and "(ERROR/" not in output(result), output(result)
    assert "system-message" not in text
    for expected in (
        "Figures",
        "Models",
        "Comparisons",
        "Shrinkage",
        "gpa_effects.png",
        "gpa_coefficient_scatter.png",
        "shrinkage_settings.png",
        "fixed_effects.csv",
        "ach_cat_re.csv",
        "sd_summary.csv",
    ):
        assert expected in text, expected


# --- the speed-dating odds ratios: profile intervals when the model is in intervals.models -------


class Tables(HTMLParser):
    """Each table of a page as (caption, rows of cell texts), whatever attributes the renderer adds."""

    def __init__(self, html: str):
        super().__init__()
        self.tables, self._cell, self._caption = [], None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(["", []])
        elif tag == "caption":
            self._caption = []
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self.tables[-1][0] = " ".join("".join(self._caption).replace("\u2019", "'").split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def odds_ratio_rows(html: str) -> tuple[str, dict[str, list[str]]]:
    """The caption and the rows by first cell of the report's one table of odds ratios."""
    (table,) = [t for t in Tables(html).tables if "as odds ratios" in t[0]]
    return table[0], {row[0]: row[1:] for row in table[1]}


def prose(html: str) -> str:
    """The page's text: tags dropped, entities decoded, curly apostrophes (smart typography) straight."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).replace("\u2019", "'").split())


def exp_bounds(lower, upper) -> list[list[str]]:
    return [[number(float(np.exp(lo))), number(float(np.exp(hi)))] for lo, hi in zip(lower, upper)]


@pytest.mark.workflow
def test_the_report_declares_a_glmm_profile_only_for_a_model_in_intervals_models(tmp_path):
    """The report rule's inputs: speed_dating's profile.csv (and its job) by default; neither once
    the model is left out of intervals.models."""
    from workflow_helpers import offline, output, snakemake

    profile = "results/intervals/speed_dating/profile.csv"
    for listed in (True, False):
        workdir = tmp_path / str(listed)
        workdir.mkdir()
        args = ["--dry-run", *offline("results/report/report.html")]
        if not listed:
            extra = workdir / "extra.yaml"
            extra.write_text(yaml.safe_dump({"intervals": {"models": ["sleep_slopes", "sleep_uncorrelated"]}}))
            args = ["--configfile", str(extra), *args]
        dry = snakemake(workdir, *args)
        assert dry.returncode == 0, output(dry)
        report_inputs = re.search(r"^rule render_report:\n\s+input: (.*)$", dry.stdout, re.MULTILINE).group(1)
        assert (profile in report_inputs.split(", ")) is listed
        assert (("profile_intervals", "model=speed_dating") in dry_run_jobs(dry.stdout)) is listed
        assert "results/models/speed_dating/fixed_effects.csv" in report_inputs


@pytest.mark.workflow
def test_the_report_odds_ratios_have_the_profile_intervals_of_profile_csv(workdir):
    results = workdir / "results"
    fixed = pd.read_csv(results / "models/speed_dating/fixed_effects.csv")
    profile = pd.read_csv(results / "intervals/speed_dating/profile.csv").set_index("parameter")
    html = (results / "report/report.html").read_text()
    caption, rows = odds_ratio_rows(html)
    assert "profile-likelihood 95% intervals, lme4's default confint" in caption
    assert rows["term"] == ["odds_ratio", "lower_2.5 (profile)", "upper_97.5 (profile)", "p_value"]
    names = ["(Intercept)" if term == "Intercept" else term for term in fixed["term"]]
    assert [rows[term][1:3] for term in fixed["term"]] == exp_bounds(
        profile.loc[names, "lower_2.5"], profile.loc[names, "upper_97.5"]
    )
    assert [rows[term][0] for term in fixed["term"]] == [number(float(np.exp(v))) for v in fixed["value"]]
    # the profile, not the Wald, interval: the two differ at the table's precision somewhere
    assert [rows[term][1:3] for term in fixed["term"]] != exp_bounds(fixed["lower_2.5"], fixed["upper_97.5"])
    low, high = profile.loc["sd_(Intercept)|iid", ["lower_2.5", "upper_97.5"]]
    sentence = f"The SD's profile-likelihood 95% interval (lme4's default confint) is {number(low)} to {number(high)}."
    assert sentence in prose(html)


@pytest.mark.workflow
def test_a_glmm_left_out_of_intervals_models_reruns_only_the_report_with_wald_intervals(workdir, tmp_path):
    from workflow_helpers import offline, output, snakemake

    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    extra = copy / "extra.yaml"
    listed = [
        m for m in yaml.safe_load((copy / "config.yaml").read_text())["intervals"]["models"] if m != "speed_dating"
    ]
    extra.write_text(yaml.safe_dump({"intervals": {"models": listed}}))

    dry = snakemake(copy, "--dry-run", "--configfile", str(extra), *offline())
    assert dry.returncode == 0, output(dry)
    assert dry_run_jobs(dry.stdout) == {("render_report", ""), ("all", "")}, dry.stdout
    run = snakemake(copy, "--configfile", str(extra), *offline())
    assert run.returncode == 0, output(run)

    fixed = pd.read_csv(copy / "results/models/speed_dating/fixed_effects.csv")
    html = (copy / "results/report/report.html").read_text()
    assert (copy / "results/intervals/speed_dating/profile.csv").exists()  # on disk, but not an input
    caption, rows = odds_ratio_rows(html)
    assert "Wald 95% intervals (speed_dating has no profile intervals: it is not in intervals.models)" in caption
    assert rows["term"] == ["odds_ratio", "lower_2.5 (Wald)", "upper_97.5 (Wald)", "p_value"]
    assert [rows[term][1:3] for term in fixed["term"]] == exp_bounds(fixed["lower_2.5"], fixed["upper_97.5"])
    assert "The SD's profile-likelihood" not in prose(html)
