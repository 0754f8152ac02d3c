"""The robust statsmodels REML path (lmmflow.verify.statsmodels_fit) against lme4's oracle for the chapter's models.

Tolerances are the project's (see lme4_agreement.py); never loosen them.
"""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import PUPILS_CROSSED
from lme4_agreement import CHAPTER_MODELS, assert_fit_matches_lme4, assert_parameters_match_lme4
from statsmodels.regression.mixed_linear_model import MixedLMParams

from lmmflow.engine.estimates import Estimates
from lmmflow.model.design import build_design
from lmmflow.verify.statsmodels_fit import (
    OPTIMIZERS,
    Attempt,
    UnsupportedByStatsmodels,
    _confirmed,
    evaluate_attempt,
    fit_statsmodels,
    gls,
    statsmodels_loglike,
    to_mixedlm,
)


@pytest.fixture(params=sorted(CHAPTER_MODELS))
def fitted(request, chapter_fit):
    return request.param, *chapter_fit(request.param, "statsmodels")


def test_statsmodels_path_matches_lme4(fitted, lme4):
    name, design, fit = fitted
    for block, cov, modes in zip(design.blocks, fit.covariances, fit.modes):
        assert cov.shape == (block.n_effects, block.n_effects)
        assert modes.shape == (block.n_levels, block.n_effects)
    assert_fit_matches_lme4(design, fit, lme4[name])


def test_ml_fit_matches_lme4(chapter_fit, lme4_extensions):
    """fit_statsmodels(reml=False) is update(ach_cat_re_1, REML = FALSE), and verifies as ML."""
    design, fit = chapter_fit("ach_cat_re_1", "statsmodels", reml=False)
    assert (fit.engine, fit.converged) == ("statsmodels", True)
    assert_parameters_match_lme4(design, fit, lme4_extensions["ach_cat_re_1_ML"])
    assert statsmodels_loglike(design, fit) == pytest.approx(fit.loglik, abs=1e-6)


def test_every_attempt_is_recorded_and_the_best_wins(fitted):
    _, _, fit = fitted
    assert (fit.engine, fit.converged) == ("statsmodels", True)
    assert [a["optimizer"] for a in fit.attempts[: len(OPTIMIZERS)]] == list(OPTIMIZERS)
    assert fit.attempts[-1]["optimizer"].startswith("bfgs(gtol=1e-08) from ")
    assert set(fit.attempts[0]) == {"optimizer", "criterion", "grad_norm", "converged"}
    best = min(a["criterion"] for a in fit.attempts)
    assert fit.loglik == -best / 2
    assert fit.optimizer in [a["optimizer"] for a in fit.attempts if a["criterion"] == best]
    assert all(isinstance(w, str) for w in fit.warnings)


def test_statsmodels_loglike_reproduces_the_fit(fitted):
    _, design, fit = fitted
    assert abs(statsmodels_loglike(design, fit) - fit.loglik) < 1e-6


def _lme4_estimates(design, oracle) -> Estimates:
    """lme4's solution as Estimates (only what statsmodels_loglike reads)."""
    beta = np.array([row["value"] for row in oracle["fixed_effects"]])
    variance = {(r["group"], r["effect"]): r["variance"] for r in oracle["variance_components"]}
    correlation = {(r["group"], r["effect_1"], r["effect_2"]): r["correlation"] for r in oracle["re_correlations"]}
    covariances = []
    for block in design.blocks:
        sd = np.sqrt([variance[(block.label, e)] for e in block.effects])
        cor = np.eye(block.n_effects)
        for j, k in zip(*np.triu_indices(block.n_effects, 1)):
            cor[j, k] = cor[k, j] = correlation[(block.label, block.effects[j], block.effects[k])]
        covariances.append(cor * np.outer(sd, sd))
    return Estimates(
        beta, np.eye(len(beta)), variance[("Residual", "")], covariances, [], [], oracle["logLik"], "lme4", "", True
    )


@pytest.mark.parametrize("name", sorted(CHAPTER_MODELS))
def test_statsmodels_loglike_at_lme4_solution_is_lme4_loglik(name, chapter_design, lme4):
    """Includes lme4's exactly singular covariances (ach_cat_re_1, ach_cat_re_2)."""
    design = chapter_design(name)
    assert statsmodels_loglike(design, _lme4_estimates(design, lme4[name])) == pytest.approx(
        lme4[name]["logLik"], abs=1e-6
    )


def test_nested_block_becomes_cell_variance_component(chapter_design):
    design = chapter_design("ach_cat_re_3")
    model = to_mixedlm(design)
    assert (model.k_re, model.k_vc) == (1, 1)
    assert sum(m.shape[1] for m in model.exog_vc.mats[0]) == 148
    columns = [name for names in model.exog_vc.colnames[0] for name in names]
    assert sorted(columns) == sorted(design.blocks[0].levels)


def test_unsupported_blocks_raise_naming_the_block(chapter_design):
    slopes = chapter_design("sleep_slopes")
    twice = replace(slopes, blocks=(slopes.blocks[0], replace(slopes.blocks[0], label="Subject.1")))
    with pytest.raises(UnsupportedByStatsmodels, match=r"'Subject\.1'.*second term"):
        to_mixedlm(twice)
    nested = chapter_design("ach_cat_re_3")
    cell = nested.blocks[0]
    wide = replace(cell, effects=("Intercept", "x"), Z=np.column_stack([cell.Z, cell.Z]))
    with pytest.raises(ValueError, match=r"'primary_school_id:ses'.*nested"):
        to_mixedlm(replace(nested, blocks=(wide, nested.blocks[1])))


def test_statsmodels_refuses_crossed_designs_naming_the_factors(pupils):
    with pytest.raises(UnsupportedByStatsmodels, match="primary_school_id, secondary_school_id are crossed"):
        fit_statsmodels(build_design(PUPILS_CROSSED, pupils))


@pytest.fixture(scope="module")
def collapsed():
    """A random intercept whose REML variance collapses to ~0, with a group-constant regressor."""
    rng = np.random.default_rng(1)
    groups, size = 30, 5
    data = pd.DataFrame(
        {
            "g": pd.Categorical(np.repeat(np.arange(groups), size).astype(str)),
            "between": np.repeat(rng.normal(size=groups), size),
            "within": rng.normal(size=groups * size),
        }
    )
    data["y"] = 1 + 2 * data["between"] + rng.normal(size=len(data))
    return build_design("y ~ between + within + (1 | g)", data)


def test_gls_guard_repairs_statsmodels_zeroed_fixed_effects(collapsed):
    """statsmodels issue 10239: at a variance below 1e-10 its GLS zeroes group-constant effects."""
    model = to_mixedlm(collapsed)
    params = MixedLMParams.from_components(np.zeros(3), np.array([[1e-12]]))
    zeroed, _ = model.get_fe_params(params.cov_re, params.vcomp)
    ols = np.linalg.lstsq(collapsed.X, collapsed.y, rcond=None)[0]
    np.testing.assert_allclose(gls(model, params).beta, ols, rtol=1e-9)
    reported = SimpleNamespace(params_object=params, fe_params=zeroed, converged=True)
    attempt = evaluate_attempt(collapsed, model, "lbfgs", reported)
    assert attempt.fe_repaired
    np.testing.assert_allclose(attempt.params.fe_params, ols, rtol=1e-9)
    params.fe_params = ols
    assert attempt.criterion == pytest.approx(-2 * model.loglike(params, profile_fe=False))


def test_fit_survives_a_collapsing_variance(collapsed):
    fit = fit_statsmodels(collapsed)
    ols = np.linalg.lstsq(collapsed.X, collapsed.y, rcond=None)[0]
    assert fit.converged and fit.covariances[0][0, 0] < 1e-6
    np.testing.assert_allclose(fit.beta, ols, rtol=1e-5)
    assert abs(statsmodels_loglike(collapsed, fit) - fit.loglik) < 1e-6


def test_gradient_tolerance_grows_with_the_number_of_observations():
    """Measured at 20,000 students x 6 (120,000 rows): attempts at the optimum had gradient norms
    0.02-0.17 (rounding noise of a sum over rows); one 0.004 short of it had 9.8."""
    at_optimum = Attempt("lbfgs", None, 24666.668756, 0.17, True)
    short = Attempt("powell", None, 24666.672827, 9.8, True)
    assert _confirmed(at_optimum, [at_optimum, short], n_obs=120_000)
    assert not _confirmed(short, [short], n_obs=120_000)
    assert not _confirmed(at_optimum, [at_optimum], n_obs=1_000)
