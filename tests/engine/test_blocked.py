"""The blocked Cholesky engine: against a dense evaluation, the groups-last engine and lme4."""

import numpy as np
import pandas as pd
import pytest
from conftest import EXTENSIONS, MIRROR, PUPILS_CROSSED
from dense_reference import SHAPES, dense_fit, small_crossed_data
from lme4_agreement import (
    CHAPTER_MODELS,
    assert_correlations,
    assert_fixed_effects,
    assert_parameters_match_lme4,
    assert_random_effects,
    assert_variance_components,
)

from lmmflow.engine import blocked, blocked_factors
from lmmflow.engine.blocked import BlockedCriterion, DesignTooLarge, fit_blocked
from lmmflow.engine.groups_last import GroupsLastCriterion
from lmmflow.engine.parameters import default_start
from lmmflow.engine.start_values import curvature_scales, moment_start
from lmmflow.model.design import build_design
from lmmflow.outputs import tables

INSTEVAL = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


@pytest.fixture(scope="module")
def small_crossed():
    return small_crossed_data()


def _trial_thetas(model) -> list[np.ndarray]:
    """lme4's start, a generic interior point with negative off-diagonals, and one variance at zero."""
    start = default_start(model.sizes)
    generic = start * (0.4 + 0.1 * np.arange(model.n_theta)) + (start == 0) * -0.15
    zeroed = generic.copy()
    zeroed[0] = 0.0
    return [start, generic, zeroed]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reml", [True, False])
def test_criterion_equals_the_dense_evaluation(small_crossed, shape, reml):
    design = build_design(SHAPES[shape], small_crossed)
    model = BlockedCriterion(design, reml=reml)
    for theta in _trial_thetas(model):
        assert abs(model.deviance(theta) - dense_fit(design, theta, reml)["deviance"]) < 1e-8


@pytest.mark.parametrize("shape", SHAPES)
def test_estimates_equal_the_dense_formulas(small_crossed, shape):
    design = build_design(SHAPES[shape], small_crossed)
    model = BlockedCriterion(design)
    theta = _trial_thetas(model)[1]
    ours, dense = model.solve(theta), dense_fit(design, theta)
    np.testing.assert_allclose(ours.beta, dense["beta"], rtol=1e-9)
    np.testing.assert_allclose(ours.beta_cov, dense["beta_cov"], rtol=1e-8)
    assert ours.sigma2 == pytest.approx(dense["sigma2"], rel=1e-10)
    for mine, theirs in zip(ours.modes, dense["modes"]):
        np.testing.assert_allclose(mine, theirs, atol=1e-10)
    for mine, theirs in zip(ours.conditional_sds, dense["conditional_sds"]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9)


@pytest.fixture(scope="module", params=sorted(CHAPTER_MODELS))
def chapter_design(request):
    dataset, formula = CHAPTER_MODELS[request.param]
    return build_design(formula, request.getfixturevalue(dataset))


@pytest.mark.parametrize("reml", [True, False])
def test_blocked_equals_groups_last_on_every_chapter_model(chapter_design, reml):
    ours, theirs = BlockedCriterion(chapter_design, reml=reml), GroupsLastCriterion(chapter_design, reml=reml)
    for theta in _trial_thetas(ours):
        assert abs(ours.deviance(theta) - theirs.deviance(theta)) < 1e-8
    theta = _trial_thetas(ours)[1]
    a, b = ours.solve(theta), theirs.solve(theta)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-9)
    np.testing.assert_allclose(a.beta_cov, b.beta_cov, rtol=1e-8)
    for mine, theirs_ in zip(a.modes + a.conditional_sds, b.modes + b.conditional_sds):
        np.testing.assert_allclose(mine, theirs_, atol=1e-10)


def test_pupils_crossed_fit_matches_lme4(pupils):
    oracle = EXTENSIONS["pupils_crossed"]
    design = build_design(PUPILS_CROSSED, pupils)
    fit = fit_blocked(design)
    assert fit.engine == "blocked" and fit.converged, fit.attempts
    assert abs(fit.loglik - oracle["logLik"]) < 1e-4
    assert design.n_random_effects == oracle["n_random_effects"] == 80
    assert_fixed_effects(tables.fixed_effects(design, fit), oracle)
    assert_variance_components(tables.variance_components(design, fit), oracle)
    assert_correlations(tables.re_correlations(design, fit), oracle)
    assert_random_effects(tables.random_effects(design, fit), oracle)
    np.testing.assert_allclose(fit.attempts[-1]["theta"], oracle["theta"], rtol=1e-3)


def test_a_start_at_the_optimum_stays_there(pupils):
    design = build_design(PUPILS_CROSSED, pupils)
    theta = EXTENSIONS["pupils_crossed"]["theta"]
    fit = fit_blocked(design, start=theta)
    assert abs(fit.loglik - EXTENSIONS["pupils_crossed"]["logLik"]) < 1e-6
    assert {"optimizer", "criterion", "grad_norm", "newton_decrement", "converged"} <= set(fit.attempts[0])


@pytest.fixture(scope="module")
def insteval():
    data = pd.read_csv(MIRROR / "InstEval.csv")
    data["service"] = pd.Categorical(data["service"].astype(str), categories=["0", "1"])
    return build_design(INSTEVAL, data)


@pytest.mark.slow
def test_insteval_fit_matches_lme4(insteval):
    """The whole InstEval fit, conditional SDs included (timed in benchmarks/run.py --insteval)."""
    fit = fit_blocked(insteval)
    assert [a["optimizer"] for a in fit.attempts] == ["scaled L-BFGS-B"] and fit.converged
    assert_parameters_match_lme4(insteval, fit, EXTENSIONS["insteval_crossed"])
    assert_random_effects(tables.random_effects(insteval, fit), EXTENSIONS["insteval_crossed"])


def test_insteval_at_lme4s_theta_reproduces_lme4(insteval):
    """One evaluation and one solve at lme4's optimum."""
    oracle = EXTENSIONS["insteval_crossed"]
    assert insteval.n_random_effects == oracle["n_random_effects"] == 4114
    solution = BlockedCriterion(insteval).solve(np.array(oracle["theta"]))
    assert abs(-solution.deviance / 2 - oracle["logLik"]) < 1e-4
    table = pd.DataFrame(
        {
            "term": insteval.fixed_names,
            "value": solution.beta,
            "se": np.sqrt(np.diag(solution.beta_cov)),
        }
    )
    assert_fixed_effects(table, oracle)
    effects = []
    for block, modes, sds in zip(insteval.blocks, solution.modes, solution.conditional_sds):
        effects.append(
            pd.DataFrame(
                {"group_var": block.group_var, "effect": "Intercept", "group": block.levels}
                | {"value": modes[:, 0], "se": sds[:, 0]}
            )
        )
    assert_random_effects(pd.concat(effects, ignore_index=True), oracle)


def test_a_dense_block_too_large_is_refused_naming_the_factors(small_crossed, monkeypatch):
    monkeypatch.setattr(blocked, "DENSE_BLOCK_MAX_BYTES", 8 * 10**2)
    design = build_design(SHAPES["vector in the dense block, interaction first"], small_crossed)
    with pytest.raises(
        DesignTooLarge, match=r"after 'g1:f' \(g1 \(12\), g2 \(14\)\) form a dense 26 x 26 block of 5,408 bytes"
    ):
        BlockedCriterion(design)


def _gradient_error(model, theta) -> float:
    _, grad = model.deviance_and_gradient(theta)
    step = 1e-6 * np.eye(model.n_theta)
    numeric = np.array([(model.deviance(theta + h) - model.deviance(theta - h)) / 2e-6 for h in step])
    return float(np.max(np.abs(grad - numeric) / np.maximum(1.0, np.abs(numeric))))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(small_crossed, shape, reml):
    model = BlockedCriterion(build_design(SHAPES[shape], small_crossed), reml=reml)
    assert _gradient_error(model, _trial_thetas(model)[1]) < 1e-5


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_with_a_variance_at_zero_in_the_dense_block(small_crossed, reml):
    """A singular factor after the first one takes the explicit product instead of T^-1."""
    design = build_design(SHAPES["vector in the dense block, interaction first"], small_crossed)
    model = BlockedCriterion(design, reml=reml)
    theta = _trial_thetas(model)[1]
    theta[[b.label for b in design.blocks].index("g1")] = 0.0  # the scalar term on g1, a dense-block factor
    _, grad = model.deviance_and_gradient(theta)
    interior = np.isfinite(model.lower_bounds) & (theta > 0) | ~np.isfinite(model.lower_bounds)
    step = 1e-6 * np.eye(model.n_theta)
    numeric = np.array([(model.deviance(theta + h) - model.deviance(theta - h)) / 2e-6 for h in step])
    np.testing.assert_allclose(grad[interior], numeric[interior], rtol=1e-5, atol=1e-5)


def test_gradient_on_chapter_models(chapter_design):
    model = BlockedCriterion(chapter_design)
    assert _gradient_error(model, _trial_thetas(model)[1]) < 1e-5


def test_a_large_all_scalar_dense_block_takes_scaled_lbfgsb_from_the_moment_start(pupils, monkeypatch):
    monkeypatch.setattr(blocked, "DERIVATIVE_FREE_MIN_DENSE", 10)  # pupils_crossed's block has 30
    fit = fit_blocked(build_design(PUPILS_CROSSED, pupils))
    assert [a["optimizer"] for a in fit.attempts] == ["scaled L-BFGS-B"] and fit.converged
    assert abs(fit.loglik - EXTENSIONS["pupils_crossed"]["logLik"]) < 1e-6


def test_scaled_lbfgsb_stalled_at_a_zero_variance_hands_over_to_the_gradient_optimizer(pupils, monkeypatch):
    """The deviance is even in each scalar theta: from 0, the gradient never moves it."""
    monkeypatch.setattr(blocked, "DERIVATIVE_FREE_MIN_DENSE", 10)
    start = np.array(EXTENSIONS["pupils_crossed"]["theta"]) * [1.0, 0.0]
    fit = fit_blocked(build_design(PUPILS_CROSSED, pupils), start=start)
    assert [a["optimizer"] for a in fit.attempts][:2] == ["scaled L-BFGS-B", "L-BFGS-B"] and fit.converged
    assert fit.attempts[0]["theta"][1] == 0.0
    assert abs(fit.loglik - EXTENSIONS["pupils_crossed"]["logLik"]) < 1e-6


def test_the_moment_start_and_curvature_scales_are_near_the_optimum(pupils):
    model = BlockedCriterion(build_design(PUPILS_CROSSED, pupils))
    optimum = np.array(EXTENSIONS["pupils_crossed"]["theta"])
    np.testing.assert_allclose(moment_start(model), optimum, rtol=0.05)
    _, grad = model.deviance_and_gradient(optimum)
    hessian_diagonal = [
        (model.deviance_and_gradient(optimum + h)[1] - grad)[j] / 1e-5 for j, h in enumerate(1e-5 * np.eye(2))
    ]
    np.testing.assert_allclose(curvature_scales(model, optimum), np.sqrt(hessian_diagonal), rtol=0.1)


VECTOR_IN_THE_DENSE_BLOCK = SHAPES["vector in the dense block, interaction first"]  # a dense block of 26


def test_a_large_dense_block_with_a_vector_term_is_optimized_by_scaled_lbfgsb(small_crossed, monkeypatch):
    """Issue 23: vector-valued terms get the moment start, the scales and the analytic gradient too."""
    design = build_design(VECTOR_IN_THE_DENSE_BLOCK, small_crossed)
    reference = fit_blocked(design)
    monkeypatch.setattr(blocked, "DERIVATIVE_FREE_MIN_DENSE", 10)
    fit = fit_blocked(design)
    assert [a["optimizer"] for a in fit.attempts] == ["scaled L-BFGS-B"] and fit.converged
    assert abs(fit.loglik - reference.loglik) < 1e-6


def test_cobyqa_stopped_short_hands_over_to_the_gradient_optimizer(small_crossed, monkeypatch):
    """COBYQA remains for vector-valued terms on crossings too large for a pair product."""
    design = build_design(VECTOR_IN_THE_DENSE_BLOCK, small_crossed)
    reference = fit_blocked(design)
    monkeypatch.setattr(blocked, "DERIVATIVE_FREE_MIN_DENSE", 10)
    monkeypatch.setattr(blocked, "COBYQA_OPTIONS", dict(maxfev=8))
    monkeypatch.setattr(blocked_factors, "PAIR_PRODUCT_MAX_ENTRIES", 0)
    fit = fit_blocked(design)
    assert [a["optimizer"] for a in fit.attempts][:2] == ["COBYQA", "L-BFGS-B"]
    assert not fit.attempts[0]["converged"] and fit.converged
    assert abs(fit.loglik - reference.loglik) < 1e-6
