"""Every table of every chapter model, computed through the default fitting path, agrees with lme4."""

import numpy as np
import pytest
from lme4_agreement import CHAPTER_MODELS, assert_fit_matches_lme4, assert_fixed_effects

from lmmflow.engine.estimates import Estimates
from lmmflow.outputs import tables


@pytest.fixture(params=sorted(CHAPTER_MODELS))
def fitted(request, chapter_fit):
    """A chapter model fitted by fit_model's default path."""
    return request.param, *chapter_fit(request.param)


def test_fit_summary_matches_lme4(fitted, lme4):
    name, design, fit = fitted
    summary = tables.fit_summary(design, fit, dataset="d", formula="f")
    oracle = lme4[name]
    assert abs(summary["logLik"] - oracle["logLik"]) < 1e-4
    assert (summary["K"], summary["n_obs"], summary["n_random_effects"]) == (
        oracle["K"],
        oracle["n_obs"],
        oracle["n_random_effects"],
    )
    assert summary["singular"] == oracle["singular"]
    assert summary["AICc"] == pytest.approx(oracle["AICc"], abs=2e-4)
    assert summary["converged"]


def test_tables_match_lme4(fitted, lme4):
    name, design, fit = fitted
    assert_fit_matches_lme4(design, fit, lme4[name])


def test_random_coefficients_are_fixed_plus_random(fitted):
    _, design, fit = fitted
    coefficients = tables.random_coefficients(design, fit).set_index(["group_var", "effect", "group"])
    ranef = tables.random_effects(design, fit).groupby(["group_var", "effect", "group"])["value"].sum()
    fixed = dict(zip(design.fixed_names, fit.beta))
    expected = [
        fixed.get(effect, 0.0) + ranef.get((group_var, effect, group), 0.0)
        for group_var, effect, group in coefficients.index
    ]
    np.testing.assert_allclose(coefficients["value"], expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["gpa_mixed", "ach_cat_re_3"])
def test_fixed_effects_carry_lmertests_satterthwaite_df_and_p_values(name, chapter_fit, lme4_extensions):
    table = tables.fixed_effects(*chapter_fit(name))
    assert list(table.columns[4:7]) == ["df", "p_value", "p_value_z"]
    assert_fixed_effects(table, lme4_extensions[f"{name}_satterthwaite"])


def test_wald_intervals_and_p_values(fitted):
    _, design, fit = fitted
    table = tables.fixed_effects(design, fit)
    np.testing.assert_allclose(table["upper_97.5"] - table["value"], 1.959963984540054 * table["se"])
    assert ((table["p_value"] >= 0) & (table["p_value"] <= 1)).all()


def test_information_criteria_are_lme4s(lme4_extensions):
    oracle = lme4_extensions["ach_cat_re_1_ML"]
    criteria = tables.information_criteria(oracle["logLik"], oracle["K"], oracle["n_obs"])
    assert criteria == pytest.approx({name: oracle[name] for name in ["AIC", "BIC", "AICc"]}, rel=1e-13)


def test_singularity_follows_the_relative_cholesky_factor():
    def estimates(cov):
        return Estimates(np.zeros(1), np.eye(1), 1.0, [cov], [], [], 0.0, "groups-last", "x", True)

    assert tables.is_singular(estimates(np.array([[1.0, 1.0], [1.0, 1.0]])))  # correlation +1
    assert tables.is_singular(estimates(np.array([[1.0, 0.0], [0.0, 0.0]])))  # zero variance
    assert not tables.is_singular(estimates(np.array([[1.0, 0.5], [0.5, 1.0]])))


def test_coefficient_check_differences_vanish(fitted):
    _, design, fit = fitted
    table = tables.coefficient_check(
        tables.fixed_effects(design, fit),
        tables.random_effects(design, fit),
        tables.random_coefficients(design, fit),
    )
    assert len(table) == len(tables.random_coefficients(design, fit))
    assert np.abs(table["difference"]).max() <= 1e-10
