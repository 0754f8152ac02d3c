"""The default config's GLMM (the book's speed-dating model) run by Snakemake: its CSVs against
lme4 1.1-31 at its optimum (../shared/reference/glmm/glmm_speed_dating.json; R:
``glmer(decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid),
data = speed_dating, family = binomial)``), its figure, and its report section."""

import json

import pandas as pd
import pytest
from engine.glmm_reference import assert_tables_match
from inference.lme4_glmm_profiles import FIXED_IN_SE, LME4, SD_RELATIVE

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


def test_speed_dating_profile_intervals_agree_with_lme4(results):
    """lme4: ``confint(m, method = "profile")`` (the default config lists speed_dating in intervals)."""
    table = pd.read_csv(results / "intervals/speed_dating/profile.csv")
    se = pd.read_csv(results / "models/speed_dating/fixed_effects.csv")["se"].tolist()
    lower, upper = LME4["speed_dating"]
    assert list(table["parameter"][:2]) == ["sd_(Intercept)|iid", "(Intercept)"] and len(table) == len(lower)
    assert table.loc[0, "lower_2.5"] == pytest.approx(lower[0], rel=SD_RELATIVE)
    assert table.loc[0, "upper_97.5"] == pytest.approx(upper[0], rel=SD_RELATIVE)
    for i in range(1, len(table)):
        assert abs(table.loc[i, "lower_2.5"] - lower[i]) <= FIXED_IN_SE * se[i - 1]
        assert abs(table.loc[i, "upper_97.5"] - upper[i]) <= FIXED_IN_SE * se[i - 1]


def test_speed_dating_figure_and_report_section(results):
    for ext in ("png", "svg"):
        assert (results / f"figures/speed_dating_probabilities.{ext}").stat().st_size > 0
    report = " ".join((results / "report/report.html").read_text().split())  # pandoc wraps lines
    assert "Beyond the chapter: a yes/no outcome (speed dating)" in report
    assert "median odds ratio" in report and "<!-- lmmflow:" not in report
