"""The fit and tables stages run by Snakemake: the public per-model contract and the chapter's tables."""

import json

import pandas as pd
import pytest
import yaml
from workflow_helpers import offline, output, snakemake

pytestmark = pytest.mark.workflow

MODEL_FILES = [
    "fit.json",
    "solution.json",
    "attempts.csv",
    "fixed_effects.csv",
    "variance_components.csv",
    "re_correlations.csv",
    "random_effects.csv",
    "random_coefficients.csv",
    "fitted.csv",
]


@pytest.fixture(scope="module")
def results(completed_workflow):
    return completed_workflow / "results"


def test_comparison_reads_as_the_chapter_prints_it(results):
    table = pd.read_csv(results / "comparisons/ach_cat_re.csv")
    assert table.columns.tolist()[:5] == ["model", "K", "AICc", "delta_AICc", "n_random_effects"]
    assert set(table["model"][:2]) == {"ach_cat_re_1", "ach_cat_re_2"}
    assert table["model"][2] == "ach_cat_re_3"
    assert table["K"].tolist() == [10, 10, 6]
    assert table["AICc"].round(3).tolist() == [2352.670, 2352.670, 2359.561]
    assert table["delta_AICc"].round(3).tolist() == [0.0, 0.0, 6.892]
    assert table["n_random_effects"].tolist() == [150, 150, 198]


def test_every_model_writes_the_public_contract(results):
    for model in ["gpa_mixed", "ach_cat_re_1", "ach_cat_re_2", "ach_cat_re_3"]:
        folder = results / "models" / model
        assert sorted(p.name for p in folder.iterdir()) == sorted(MODEL_FILES)
    fit = json.loads((results / "models/ach_cat_re_1/fit.json").read_text())
    assert fit["singular"] is True and fit["converged"] is True and fit["engine"] == "groups-last"
    assert set(fit) >= {"dataset", "formula", "n_obs", "n_groups", "logLik", "K", "AIC", "AICc", "optimizer"}
    attempts = pd.read_csv(results / "models/ach_cat_re_1/attempts.csv")
    assert attempts.columns.tolist() == ["optimizer", "criterion", "grad_norm", "converged"]
    assert fit["optimizer"] in attempts["optimizer"].tolist()


def test_gpa_has_three_negative_slopes(results):
    coefficients = pd.read_csv(results / "models/gpa_mixed/random_coefficients.csv")
    slopes = coefficients[coefficients["effect"] == "occasion"]
    assert len(slopes) == 200 and (slopes["value"] < 0).sum() == 3


def test_school10_predictions_match_lme4(results, lme4):
    table = pd.read_csv(results / "tables/school10_predictions.csv").set_index("ses")
    for row in lme4["school10_predictions"]:
        for number in (1, 2, 3):
            assert table.loc[row["ses"], f"ach_cat_re_{number}"] == pytest.approx(row[f"model_{number}"], abs=1e-3)


def test_school10_random_effects_include_nested_cells(results):
    table = pd.read_csv(results / "tables/school10_random_effects.csv", dtype={"group": str})
    assert table.groupby("model").size().to_dict() == {"ach_cat_re_1": 3, "ach_cat_re_2": 3, "ach_cat_re_3": 4}
    assert set(table.loc[table["model"] == "ach_cat_re_3", "group"]) == {"10", "10:low", "10:mid", "10:high"}


def test_sleep_coefficients_are_fixed_plus_random(results):
    table = pd.read_csv(results / "tables/sleep_slopes_coefficient_check.csv")
    assert len(table) == 36
    assert table["difference"].abs().max() <= 1e-10 * table["coef"].abs().max()


def bad_model(tmp_path, formula):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"models": {"sleep_slopes": {"dataset": "sleepstudy", "formula": formula}}}))
    return extra


def test_formula_syntax_error_is_refused_at_start_up(tmp_path):
    extra = bad_model(tmp_path, "Reaction ~ Days + (Days | Subject")
    result = snakemake(tmp_path, "-n", "--configfile", str(extra), *offline())
    assert result.returncode != 0
    assert "models.sleep_slopes.formula" in output(result) and "unclosed '('" in output(result)


def test_unknown_column_fails_before_fitting_naming_the_term(tmp_path):
    extra = bad_model(tmp_path, "Reaction ~ Days + (Days | Subjekt)")
    target = "results/models/sleep_slopes/fit.json"
    result = snakemake(tmp_path, target, "--configfile", str(extra), *offline())
    assert result.returncode != 0
    assert "term '(Days | Subjekt)' names column(s) ['Subjekt']" in output(result)
    assert not (tmp_path / "results/models/sleep_slopes").exists() or not any(
        (tmp_path / "results/models/sleep_slopes").iterdir()
    )
