"""The workflow's report jobs (rerun on a formula change, Snakemake's own report). The report's
modules have their own test files (tests/report/test_*.py); the rule graph, tests/pipeline/test_rulegraph.py."""

import re
import shutil

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
