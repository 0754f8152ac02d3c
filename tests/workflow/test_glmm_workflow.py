"""The default config's GLMM (the book's speed-dating model) run by Snakemake: its CSVs against
lme4 1.1-31 at its optimum (../shared/reference/glmm/glmm_speed_dating.json; R:
``glmer(decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid),
data = speed_dating, family = binomial)``), its figure, and its report section."""

import json

import pandas as pd
import pytest
from engine.glmm_reference import assert_tables_match

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def results(completed_workflow):
    return completed_workflow / "results"


def test_speed_dating_csvs_agree_with_lme4(results):
    folder = results / "models/speed_dating"
    fit = json.loads((folder / "fit.json").read_text())
    assert_tables_match(
        "speed_dating",
        pd.read_csv(folder / "fixed_effects.csv"),
        pd.read_csv(folder / "variance_components.csv"),
        pd.read_csv(folder / "random_effects.csv", dtype={"group": str}),
        fit["logLik"],
    )
    assert (fit["family"], fit["link"], fit["nAGQ"], fit["engine"]) == ("binomial", "logit", 1, "glmm")
    assert fit["n_obs"] == 7366 and fit["n_groups"] == {"iid": 498} and fit["converged"]
    assert fit["verification_details"]["agrees"]
    attempts = pd.read_csv(folder / "attempts.csv")
    assert fit["optimizer"] == attempts["optimizer"].iloc[-1]
    fitted = pd.read_csv(folder / "fitted.csv")
    assert len(fitted) == 7366 and fitted["fitted"].between(0, 1).all()


def test_speed_dating_figure_and_report_section(results):
    for ext in ("png", "svg"):
        assert (results / f"figures/speed_dating_probabilities.{ext}").stat().st_size > 0
    report = " ".join((results / "report/report.html").read_text().split())  # pandoc wraps lines
    assert "Beyond the chapter: a yes/no outcome (speed dating)" in report
    assert "median odds ratio" in report and "<!-- lmmflow:" not in report
