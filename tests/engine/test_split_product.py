"""G H G' without pair products (``lmmflow.engine.split_product``): against the pair product and lme4."""

import importlib.util

import numpy as np
import pytest
from conftest import ROOT
from dense_reference import SHAPES, small_crossed_data

from lmmflow.engine import blocked_factors, split_product
from lmmflow.engine.blocked import BlockedCriterion, fit_blocked
from lmmflow.engine.split_product import SplitProduct
from lmmflow.model.design import build_design

_spec = importlib.util.spec_from_file_location("movielens", ROOT / "benchmarks" / "movielens.py")
movielens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(movielens)

# lme4 1.1.31 (R 4.2) on movielens.simulate_ratings(100_000, 800, 600, seed=1), written to CSV:
#   d <- read.csv("ml_small.csv", stringsAsFactors = TRUE)
#   m <- lmer(rating ~ 1 + (1 | user) + (1 | movie), data = d, REML = FALSE)
#   logLik(m); getME(m, "theta"); fixef(m); sigma(m)
ML_SMALL = dict(
    logLik=-130170.8833014383, theta=[0.4499874381, 0.5091933757], intercept=3.5494988279, sigma=0.8698252589
)


def _split(design, reml=True) -> BlockedCriterion:
    """The blocked engine made to use SplitProduct (no pair product allowed)."""
    limit = blocked_factors.PAIR_PRODUCT_MAX_ENTRIES
    blocked_factors.PAIR_PRODUCT_MAX_ENTRIES = 0
    try:
        model = BlockedCriterion(design, reml=reml)
    finally:
        blocked_factors.PAIR_PRODUCT_MAX_ENTRIES = limit
    assert model.split is not None
    return model


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_dense", [0, 5, None])
def test_split_equals_the_pair_product(shape, n_dense, monkeypatch):
    """Deviance, gradient, modes and conditional SDs as through the pair product, whatever the split
    (the sparse rows in chunks of 3, the columns of 4)."""
    monkeypatch.setattr(split_product, "CHUNK_ROWS", 3)
    monkeypatch.setattr(split_product, "CHUNK_COLUMNS", 4)
    design = build_design(SHAPES[shape], small_crossed_data())
    pairs, split = BlockedCriterion(design), _split(design)
    if n_dense is not None:
        split.split.use_dense_rows(n_dense)
    rng = np.random.default_rng(3)
    for theta in [0.3 + rng.random(pairs.n_theta), np.r_[0.0, 0.2 + rng.random(pairs.n_theta - 1)]]:
        theta = np.where(pairs.lower_bounds == 0, np.abs(theta), theta - 0.5)
        a, b = pairs.deviance_and_gradient(theta), split.deviance_and_gradient(theta)
        assert abs(a[0] - b[0]) < 1e-9
        np.testing.assert_allclose(a[1], b[1], atol=1e-8)
        sa, sb = pairs.solve(theta), split.solve(theta)
        for mine, theirs in zip(sb.modes + sb.conditional_sds, sa.modes + sa.conditional_sds):
            np.testing.assert_allclose(mine, theirs, atol=1e-10)


def test_dense_rows_are_the_busiest():
    design = build_design(SHAPES["crossed scalar"], small_crossed_data())
    product = _split(design).split
    met = np.diff(product.G.tocsr().indptr)
    assert isinstance(product, SplitProduct)
    assert met[product.dense_rows].min(initial=10**9) >= met[product.sparse_rows].max(initial=0)


def test_simulated_movielens_matches_lme4():
    """A MovieLens-shaped crossing (800 users x 600 movies, 100,000 distinct ratings), ML, through
    SplitProduct and its derivative-free optimizer: at lme4's optimum or above."""
    data = movielens.simulate_ratings(100_000, 800, 600, seed=1)
    design = build_design("rating ~ 1 + (1 | user) + (1 | movie)", data)
    model = _split(design, reml=False)
    limit = blocked_factors.PAIR_PRODUCT_MAX_ENTRIES
    blocked_factors.PAIR_PRODUCT_MAX_ENTRIES = 0
    try:
        fit = fit_blocked(design, reml=False)
    finally:
        blocked_factors.PAIR_PRODUCT_MAX_ENTRIES = limit
    assert model.q2 == 600 and fit.converged and fit.attempts[0]["optimizer"] == "scaled COBYQA", fit.attempts
    assert fit.loglik >= ML_SMALL["logLik"] - 1e-6
    np.testing.assert_allclose(fit.theta, ML_SMALL["theta"], rtol=1e-3)
    assert fit.beta[0] == pytest.approx(ML_SMALL["intercept"], abs=1e-5)
    assert np.sqrt(fit.sigma2) == pytest.approx(ML_SMALL["sigma"], rel=1e-5)


def test_simulator_has_movielens_shape():
    data = movielens.simulate_ratings(20_000, 300, 200, seed=2)
    per_user = data.groupby("user", observed=True).size()
    assert len(data) == 20_000 and data["user"].nunique() == 300 and data["movie"].nunique() == 200
    assert per_user.min() >= movielens.MIN_PER_USER and not data.duplicated(["user", "movie"]).any()
    assert data.equals(movielens.simulate_ratings(20_000, 300, 200, seed=2))


def test_fill_upper_mirrors_the_lower_triangle_in_blocks():
    matrix = np.random.default_rng(4).random((7, 7))
    expected = np.tril(matrix) + np.tril(matrix, -1).T
    np.testing.assert_array_equal(split_product.fill_upper(matrix, step=3), expected)
