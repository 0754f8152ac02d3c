"""lme4's parameter scales (theta, covariances, SDs and correlations) and their conversions."""

import numpy as np
import pandas as pd
import pytest

from lmmflow.engine.estimates import Estimates, parameter_vector
from lmmflow.engine.parameters import (
    correlation_matrix,
    cov_to_sdcor,
    covariances_to_theta,
    default_start,
    parameter_names,
    safe_cholesky,
    sdcor_bounds,
    sdcor_to_theta,
    theta_lower_bounds,
    theta_to_covariances,
    theta_to_factors,
    theta_to_sdcor,
)
from lmmflow.model.design import build_design
from lmmflow.outputs import tables

THETA = np.array([0.93, 0.018, 0.22, 0.5])  # a 2 x 2 block (sleep_slopes' theta) and a scalar one
SIZES = [2, 1]


def test_theta_is_the_lower_triangle_column_major():
    T, scalar = theta_to_factors(np.array([1.0, 2.0, 3.0, 4.0]), SIZES)
    np.testing.assert_array_equal(T, [[1.0, 0.0], [2.0, 3.0]])
    np.testing.assert_array_equal(scalar, [[4.0]])
    np.testing.assert_array_equal(theta_lower_bounds(SIZES), [0.0, -np.inf, 0.0, 0.0])
    np.testing.assert_array_equal(default_start(SIZES), [1.0, 0.0, 1.0, 1.0])


def test_theta_covariance_round_trip():
    covariances = theta_to_covariances(THETA, SIZES, sigma2=4.0)
    np.testing.assert_allclose(
        covariances[0], 4.0 * np.array([[0.93**2, 0.93 * 0.018], [0.93 * 0.018, 0.018**2 + 0.22**2]])
    )
    np.testing.assert_allclose(covariances_to_theta(covariances, 4.0), THETA, rtol=1e-14)


def test_sdcor_theta_round_trip():
    pars = theta_to_sdcor(THETA, SIZES, sigma=25.6)
    assert pars[-1] == 25.6
    assert pars[0] == pytest.approx(25.6 * 0.93)  # the first SD: sigma T_11
    np.testing.assert_allclose(sdcor_to_theta(pars, SIZES), THETA, rtol=1e-12)


def test_safe_cholesky_takes_semidefinite_matrices():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])  # correlation +1
    np.testing.assert_allclose(safe_cholesky(singular), [[1.0, 0.0], [1.0, 0.0]])
    zero_first = np.array([[0.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(safe_cholesky(zero_first), [[0.0, 0.0], [0.0, np.sqrt(2.0)]])


def test_a_zero_sd_leaves_its_correlations_undefined_everywhere():
    """lme4's answer: VarCorr and cov2sdcor both divide 0 by 0 (NaN). One formula serves the
    fit tables, the profile and the bootstrap."""
    cov = np.array([[0.0, 0.0, 0.0], [0.0, 4.0, 1.0], [0.0, 1.0, 1.0]])
    correlations = correlation_matrix(cov)
    assert np.isnan(correlations[0, 1]) and np.isnan(correlations[2, 0])
    assert correlations[1, 2] == 0.5
    np.testing.assert_array_equal(cov_to_sdcor(cov), [0.0, np.nan, np.nan, 2.0, 0.5, 1.0])
    design = build_design("y ~ x + (1 + x + z | g)", _three_effect_data())
    fit = Estimates(np.zeros(2), np.eye(2), 1.0, [cov], [], [], 0.0, "groups-last", "x", True)
    assert tables.re_correlations(design, fit)["correlation"].isna().tolist() == [True, True, False]
    vector = parameter_vector(design, fit)
    assert np.isnan(vector["cor_x.(Intercept)|g"]) and vector["cor_z.x|g"] == 0.5


def test_parameter_names_and_bounds_follow_lme4(sleepstudy):
    design = build_design("Reaction ~ Days + (Days | Subject) + (1 | Subject)", sleepstudy)
    assert parameter_names(design) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
        "sd_(Intercept)|Subject",
        "sigma",
        "(Intercept)",
        "Days",
    ]
    lower, upper = sdcor_bounds([2, 1])
    np.testing.assert_array_equal(lower, [0.0, -1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(upper, [np.inf, 1.0, np.inf, np.inf, np.inf])


def _three_effect_data():
    rng = np.random.default_rng(0)
    columns = {name: rng.normal(size=24) for name in ("y", "x", "z")}  # more rows than the 18 random effects
    return pd.DataFrame(columns | {"g": pd.Categorical(list("aaaabbbbccccddddeeeeffff"))})
