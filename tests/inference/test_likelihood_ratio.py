"""Likelihood-ratio tables (lmmflow.inference.likelihood_ratio) against lme4's anova() in lme4_extensions.json.

Acceptance tolerances: logLik, deviance, AIC, BIC within 1e-4 absolute; Chisq within 1e-3
absolute; npar and Df exact; p_value within 1% relative or 1e-12 absolute.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIG
from lme4_agreement import CHAPTER_MODELS

from lmmflow.engine.groups_last import fit_groups_last
from lmmflow.inference.likelihood_ratio import (
    COLUMNS,
    IncomparableModels,
    MLFit,
    anova_table,
    check_comparable,
    likelihood_ratio_test,
    ml_fit,
    ml_fits,
)
from lmmflow.model.design import build_design
from lmmflow.outputs.solution import solution_of, write_solution

MODELS = CHAPTER_MODELS | {"gpa_null": ("gpa", "gpa ~ 1 + (1 + occasion | student)")}
# oracle table -> the models in the order anova() was given them
COMPARISONS = {
    "ach_cat_re_anova": ["ach_cat_re_3", "ach_cat_re_1", "ach_cat_re_2"],
    "gpa_occasion_anova": ["gpa_null", "gpa_mixed"],
}


def configured(name):
    """The model's config entry with the schema's defaults (fast engine, REML)."""
    return {"engine": "fast", "reml": True} | CONFIG["models"][name]


def refitted_by_ml(name, request):
    """The configured REML model refitted by ML, as anova(refit = TRUE) does (the workflow's path)."""
    dataset = MODELS[name][0]
    [fit] = ml_fits(request.getfixturevalue(dataset), {name: configured(name)}, {}, dataset)
    return fit


@pytest.mark.parametrize("key", COMPARISONS)
def test_anova_table_matches_lme4(key, request, lme4_extensions):
    fits = [refitted_by_ml(name, request) for name in COMPARISONS[key]]
    assert all(fit.refitted for fit in fits)
    table = anova_table(fits)
    lme4 = pd.DataFrame(lme4_extensions[key]).reindex(columns=COLUMNS)
    assert list(table.columns) == COLUMNS
    assert list(table["model"]) == list(lme4["model"])
    assert list(table["npar"]) == list(lme4["npar"])
    assert table["Df"].tolist()[1:] == lme4["Df"].tolist()[1:] and pd.isna(table["Df"][0])
    for column in ["logLik", "deviance", "AIC", "BIC"]:
        np.testing.assert_allclose(table[column], lme4[column], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["Chisq"], lme4["Chisq"], rtol=0, atol=1e-3)  # NaN on row 1 in both
    np.testing.assert_allclose(table["p_value"], lme4["p_value"], rtol=1e-2, atol=1e-12)  # NaN where Df 0
    assert table.attrs["note"] == f"{', '.join(lme4['model'])} refitted with ML (instead of REML)"


def entry(name, loglik, npar, **other):
    return MLFit(**({"name": name, "loglik": loglik, "npar": npar, "n_obs": 100} | other))


def test_rows_go_by_npar_and_ties_keep_the_given_order():
    models = [entry("big", -10.0, 7), entry("tie_a", -12.0, 5), entry("small", -20.0, 3), entry("tie_b", -11.0, 5)]
    table = anova_table(models)
    assert list(table["model"]) == ["small", "tie_a", "tie_b", "big"]
    assert table["Df"].tolist()[1:] == [2, 0, 2]
    assert table.attrs["note"] == ""


def test_chisq_is_clipped_at_zero_and_has_no_p_value_at_zero_df():
    table = anova_table([entry("a", -10.0, 3), entry("b", -10.5, 4), entry("c", -10.0, 4)])
    np.testing.assert_array_equal(table["Chisq"], [np.nan, 0.0, 1.0])
    assert table["p_value"][1] == 1.0 and np.isnan(table["p_value"][2])


@pytest.mark.parametrize(
    "second, message",
    [
        (entry("b", -9.0, 4, n_obs=99), "number of observations \\(a: 100, b: 99\\)"),
        (entry("b", -9.0, 4, response="other"), "response \\(a: '', b: 'other'\\)"),
        (entry("b", -9.0, 4, dataset="gpa"), "data set \\(a: '', b: 'gpa'\\)"),
        (entry("a", -9.0, 4), "model names repeat in \\['a', 'a'\\]"),
    ],
)
def test_incomparable_models_are_refused_naming_them(second, message):
    with pytest.raises(IncomparableModels, match=message):
        check_comparable([entry("a", -10.0, 3), second])


def test_one_model_is_not_a_comparison():
    with pytest.raises(IncomparableModels, match="two or more models, got \\['a'\\]"):
        anova_table([entry("a", -10.0, 3)])


def test_a_reml_fit_is_refused(sleepstudy):
    design = build_design("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(ValueError, match="model 'sleep': a likelihood-ratio test needs its ML fit"):
        ml_fit("sleep", design, fit_groups_last(design))


def test_an_ml_model_is_read_from_its_solution_not_refitted(tmp_path, gpa):
    spec = configured("gpa_null") | {"reml": False}
    design = build_design(spec["formula"], gpa)
    fit = fit_groups_last(design, reml=False)
    write_solution(solution_of(fit), tmp_path / "solution.json")
    [read] = ml_fits(gpa, {"gpa_null": spec}, {"gpa_null": str(tmp_path / "solution.json")}, "gpa")
    assert not read.refitted and read.npar == 5 and read.response == "gpa"
    assert read.loglik == pytest.approx(fit.loglik, rel=0, abs=1e-9)


def test_the_written_table_says_which_rows_are_ml_refits():
    table = likelihood_ratio_test([entry("a", -10.0, 3, refitted=True), entry("b", -9.0, 4)])
    assert list(table.columns) == [*COLUMNS, "fit"]
    assert table["fit"].tolist() == ["ML refit of the REML fit", "ML fit"]
