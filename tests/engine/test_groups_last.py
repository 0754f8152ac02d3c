"""The fast REML path against lme4's oracle for every chapter model, and against statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm
from lme4_agreement import CHAPTER_MODELS, assert_fit_matches_lme4, assert_parameters_match_lme4
from statsmodels.regression.mixed_linear_model import MixedLMParams

from lmmflow.engine.groups_last import GroupsLastCriterion, fit_groups_last
from lmmflow.engine.optimizer import escape_zero_diagonals
from lmmflow.engine.parameters import default_start, theta_to_factors
from lmmflow.model.design import build_design

MODELS = CHAPTER_MODELS


@pytest.fixture(scope="module")
def fits(chapter_fit):
    """Design and fast-path fit (fit_groups_last) of every chapter model."""
    return {key: chapter_fit(key, "fit_groups_last") for key in MODELS}


@pytest.mark.parametrize("key", MODELS)
def test_fast_path_matches_lme4(fits, lme4, key):
    design, fit = fits[key]
    assert fit.engine == "groups-last"
    assert fit.converged, fit.attempts
    assert_fit_matches_lme4(design, fit, lme4[key])


def test_attempts_are_recorded(fits):
    _, fit = fits["ach_cat_re_3"]
    assert fit.attempts and all(
        {"optimizer", "criterion", "grad_norm", "converged"} <= set(attempt) for attempt in fit.attempts
    )
    (winner,) = [attempt for attempt in fit.attempts if attempt["optimizer"] == fit.optimizer]
    lowest = min(attempt["criterion"] for attempt in fit.attempts)
    assert winner["criterion"] <= lowest + 1e-10 * abs(lowest)
    assert np.isclose(-2 * fit.loglik, winner["criterion"], rtol=1e-12)


def test_zeroed_diagonal_is_not_taken_for_an_optimum(fits):
    """The deviance is even in a factor's column, so its gradient vanishes when the column is 0."""
    model = GroupsLastCriterion(fits["ach_cat_re_3"][0])
    stalled = np.array([0.0, 0.569])  # where L-BFGS-B from lme4's start stops
    _, grad = model.deviance_and_gradient(stalled)
    assert abs(grad[0]) < 1e-8
    escape = escape_zero_diagonals(model, stalled)
    assert escape is not None and model.deviance(escape) < model.deviance(stalled) - 0.1
    assert escape_zero_diagonals(model, np.array([0.16, 0.569])) is None


@pytest.mark.parametrize("key", MODELS)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(fits, key, reml):
    model = GroupsLastCriterion(fits[key][0], reml=reml)
    theta = default_start(model.sizes) + np.linspace(0.1, 0.4, model.n_theta)
    _, grad = model.deviance_and_gradient(theta)
    step = 1e-6 * np.eye(model.n_theta)
    numeric = [(model.deviance(theta + h) - model.deviance(theta - h)) / 2e-6 for h in step]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-3)


def test_ml_fit_matches_lme4(chapter_fit, lme4_extensions):
    """update(ach_cat_re_1, REML = FALSE): a singular ML optimum (one factor column at zero)."""
    design, fit = chapter_fit("ach_cat_re_1", "fit_groups_last", reml=False)
    assert fit.converged, fit.attempts
    assert_parameters_match_lme4(design, fit, lme4_extensions["ach_cat_re_1_ML"])


@pytest.mark.parametrize("reml", [True, False])
def test_pls_state_gives_the_profiled_deviance(fits, reml):
    """The pieces lmmflow.engine.criterion exposes reassemble into the criterion lme4 minimizes."""
    model = GroupsLastCriterion(fits["ach_cat_re_3"][0], reml=reml)
    theta = np.array([0.3, 0.8])
    state = model.pls_state(theta)
    dof = model.n - model.p if reml else model.n
    deviance = state.ldL2 + dof * (1 + np.log(2 * np.pi * state.pwrss / dof)) + (state.ldRX2 if reml else 0.0)
    assert deviance == pytest.approx(model.deviance(theta), abs=1e-9)
    assert state.ldRX2 == pytest.approx(np.linalg.slogdet(state.xtvx)[1], abs=1e-9)


@pytest.fixture(scope="module")
def ragged_gpa(gpa):
    """gpa with 40% of rows dropped at random: 1 to 6 observations per student."""
    keep = np.random.default_rng(8).random(len(gpa)) > 0.4
    data = gpa[keep].reset_index(drop=True)
    assert data.groupby("student", observed=True).size().nunique() > 3
    return data


def _statsmodels_loglik(design, theta, reml):
    """statsmodels' profiled log-likelihood (beta and scale profiled out) at our covariance factor."""
    block = design.blocks[0]
    model = sm.MixedLM(design.y, design.X, groups=design.group_codes, exog_re=block.Z)
    (T,) = theta_to_factors(theta, [block.n_effects])
    # loglike reads what fit() would set: the criterion and (absent) penalties.
    model.reml, model.cov_pen, model.fe_pen = reml, None, None
    params = MixedLMParams.from_components(fe_params=np.zeros(design.X.shape[1]), cov_re=T @ T.T)
    return model.loglike(params, profile_fe=True)


@pytest.mark.parametrize("reml", [True, False])
def test_ragged_design_matches_statsmodels(ragged_gpa, reml):
    design = build_design("gpa ~ occasion + (1 + occasion | student)", ragged_gpa)
    fit = fit_groups_last(design, reml=reml)
    assert fit.converged, fit.attempts
    (winner,) = [attempt for attempt in fit.attempts if attempt["optimizer"] == fit.optimizer]
    assert abs(fit.loglik - _statsmodels_loglik(design, np.array(winner["theta"]), reml)) < 1e-6
    # and away from the optimum, where the deviance surface is not flat
    theta = np.array([0.7, -0.2, 0.4])
    assert (
        abs(-GroupsLastCriterion(design, reml=reml).deviance(theta) / 2 - _statsmodels_loglik(design, theta, reml))
        < 1e-6
    )
