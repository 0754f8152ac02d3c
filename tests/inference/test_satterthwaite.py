"""Satterthwaite df and t tests (lmmflow.inference.satterthwaite) against lmerTest, on both fitting paths.

The oracle is lme4_extensions.json (lmerTest 3.1-3). Acceptance tolerances: df within 1%
relative, p-values within 2% relative or 1e-12 absolute.
"""

import numpy as np
import pytest
from scipy.special import ndtr

from lmmflow.engine.criterion import PLSState
from lmmflow.engine.groups_last import GroupsLastCriterion
from lmmflow.inference.satterthwaite import (
    Satterthwaite,
    fixed_effect_tests,
    pseudo_inverse,
    satterthwaite,
    theta_derivatives,
)

# oracle key -> (chapter model, REML)
ORACLE_FITS = {
    "gpa_mixed_satterthwaite": ("gpa_mixed", True),
    "ach_cat_re_3_satterthwaite": ("ach_cat_re_3", True),
    "ach_cat_re_1_ML": ("ach_cat_re_1", False),
}
# this file's fitting path -> conftest's: fit_groups_last, and fit_model's statsmodels path (fit_statsmodels, verified)
FIT_PATHS = {"fast": "fit_groups_last", "statsmodels": "statsmodels"}


def oracle_sigma(oracle):
    (residual,) = [row["sd"] for row in oracle["variance_components"] if row["group"] == "Residual"]
    return residual


def assert_tests_match_lmertest(table, oracle):
    fixed = oracle["fixed_effects"]
    assert list(table["term"]) == [row["term"] for row in fixed]
    np.testing.assert_allclose(table["df"], [row["df_satterthwaite"] for row in fixed], rtol=1e-2)
    np.testing.assert_allclose(table["p_value"], [row["p_satterthwaite"] for row in fixed], rtol=2e-2, atol=1e-12)
    np.testing.assert_allclose(
        table["p_value_z"], 2 * ndtr(-np.abs([row["t"] for row in fixed])), rtol=2e-2, atol=1e-12
    )


@pytest.mark.parametrize("key", ORACLE_FITS)
def test_df_at_lme4_optimum_equals_lmertest(key, chapter_design, lme4_extensions):
    """At lme4's own (theta, sigma) only the derivatives differ from lmerTest's: measured 1e-7."""
    model, reml = ORACLE_FITS[key]
    oracle = lme4_extensions[key]
    criterion = GroupsLastCriterion(chapter_design(model), reml=reml)
    result = satterthwaite(criterion, np.array(oracle["theta"]), oracle_sigma(oracle))
    assert result.warnings() == []
    expected = [row["df_satterthwaite"] for row in oracle["fixed_effects"]]
    np.testing.assert_allclose(result.coefficient_df(), expected, rtol=1e-5)


@pytest.mark.parametrize("path", FIT_PATHS)
@pytest.mark.parametrize("key", ["gpa_mixed_satterthwaite", "ach_cat_re_3_satterthwaite"])
def test_fixed_effect_tests_match_lmertest(key, path, chapter_fit, lme4_extensions):
    model, reml = ORACLE_FITS[key]
    table = fixed_effect_tests(*chapter_fit(model, FIT_PATHS[path], reml))
    assert table.attrs["warnings"] == []
    assert_tests_match_lmertest(table, lme4_extensions[key])


def test_ml_fit_tests_match_lmertest(chapter_fit, lme4_extensions):
    """An ML fit is tested with the ML deviance (lmerTest's devfun_vp without the REML terms)."""
    assert_tests_match_lmertest(
        fixed_effect_tests(*chapter_fit("ach_cat_re_1", "fit_groups_last", reml=False)),
        lme4_extensions["ach_cat_re_1_ML"],
    )


# --------------------------------------------------------------------------- the numerical machinery


class KnownCriterion:
    """A Criterion whose pieces have closed-form derivatives (p = 2, two theta entries)."""

    reml, n, p = True, 40, 2

    def pls_state(self, theta):
        t0, t1 = theta
        return PLSState(
            ldL2=float(np.sum(np.log1p(theta**2))),
            ldRX2=t0 + t1,
            pwrss=5.0 + np.exp(t0 * t1),
            xtvx=np.diag([np.exp(t0), np.exp(t1)]),
        )

    @staticmethod
    def derivatives(theta):
        t0, t1 = theta
        e = np.exp(t0 * t1)
        a_grad = 2 * theta / (1 + theta**2) + 1
        a_hess = np.diag(2 * (1 - theta**2) / (1 + theta**2) ** 2)
        r_grad = np.array([t1 * e, t0 * e])
        r_hess = e * np.array([[t1**2, 1 + t0 * t1], [1 + t0 * t1, t0**2]])
        inverse_grad = np.zeros((4, 2))
        inverse_grad[0, 0], inverse_grad[3, 1] = -np.exp(-t0), -np.exp(-t1)
        return np.vstack([a_grad, r_grad, inverse_grad]), np.stack([a_hess, r_hess])


def test_richardson_derivatives_are_exact_to_1e8():
    theta = np.array([0.7, -0.3])
    value, gradient, hessian = theta_derivatives(KnownCriterion(), theta)
    assert value[1] == pytest.approx(5.0 + np.exp(-0.21), rel=1e-15)
    expected_gradient, expected_hessian = KnownCriterion.derivatives(theta)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(hessian[:2], expected_hessian, rtol=1e-8, atol=1e-10)


def devfun_vp(criterion, varpar):
    """lmerTest's devfun_vp, written out: the deviance at (theta, sigma)."""
    state = criterion.pls_state(varpar[:-1])
    sigma2 = varpar[-1] ** 2
    deviance = state.ldL2 + state.pwrss / sigma2 + criterion.n * np.log(2 * np.pi * sigma2)
    return deviance + (state.ldRX2 - criterion.p * np.log(2 * np.pi * sigma2) if criterion.reml else 0.0)


@pytest.mark.parametrize("reml", [True, False])
def test_closed_form_sigma_terms_equal_differences_of_lmertest_functions(chapter_design, reml):
    """Hessian of devfun_vp and Jacobian of vcov(beta) in (theta, sigma) by plain differences."""
    criterion = GroupsLastCriterion(chapter_design("ach_cat_re_3"), reml=reml)
    varpar = np.array([0.16, 0.57, 0.74])
    result = satterthwaite(criterion, varpar[:-1], varpar[-1])
    h = 1e-4 * np.eye(3)
    numeric_hessian = [
        [
            (
                devfun_vp(criterion, varpar + h[i] + h[j])
                - devfun_vp(criterion, varpar + h[i] - h[j])
                - devfun_vp(criterion, varpar - h[i] + h[j])
                + devfun_vp(criterion, varpar - h[i] - h[j])
            )
            / 4e-8
            for j in range(3)
        ]
        for i in range(3)
    ]
    np.testing.assert_allclose(result.hessian, numeric_hessian, rtol=1e-4)

    def vcov(point):
        return point[-1] ** 2 * np.linalg.inv(criterion.pls_state(point[:-1]).xtvx)

    numeric_jacobian = np.stack([(vcov(varpar + h[i]) - vcov(varpar - h[i])) / 2e-4 for i in range(3)], axis=-1)
    np.testing.assert_allclose(result.jacobian, numeric_jacobian, rtol=1e-6)


def test_zero_eigenvalues_are_not_inverted_and_are_reported():
    """lmerTest's Moore-Penrose inverse: a flat direction gets no variance, and a warning."""
    rotation = np.linalg.qr(np.array([[1.0, 2.0], [3.0, -1.0]]))[0]
    hessian = rotation @ np.diag([4.0, 0.0]) @ rotation.T
    np.testing.assert_allclose(pseudo_inverse(hessian), rotation @ np.diag([0.25, 0.0]) @ rotation.T, atol=1e-15)
    flat = Satterthwaite(np.eye(1), np.zeros((1, 1, 2)), hessian, 2 * pseudo_inverse(hessian))
    assert "close to zero" in flat.warnings()[0]
    curved_down = Satterthwaite(np.eye(1), np.zeros((1, 1, 2)), -hessian, np.zeros((2, 2)))
    assert "negative" in curved_down.warnings()[0]


def test_contrast_df_does_not_depend_on_the_contrast_scale():
    result = Satterthwaite(
        vcov_beta=np.array([[2.0, 0.3], [0.3, 1.0]]),
        jacobian=np.arange(12.0).reshape(2, 2, 3) / 10,
        hessian=np.eye(3),
        vcov_varpar=np.diag([0.5, 0.2, 0.1]),
    )
    assert result.contrast_df(np.array([0.0, -3.0])) == pytest.approx(result.coefficient_df()[1], rel=1e-14)


def test_a_fit_is_tested_at_its_own_solution(chapter_fit):
    """The criterion comes from the caller when given (e.g. a crossed-design engine)."""
    design, fit = chapter_fit("ach_cat_re_3", "fit_groups_last")
    calls = []

    class Recording(GroupsLastCriterion):
        def pls_state(self, theta):
            calls.append(np.array(theta))
            return super().pls_state(theta)

    table = fixed_effect_tests(design, fit, criterion=Recording(design, reml=True))
    assert len(table) == 3 and calls
    np.testing.assert_allclose(calls[0], [np.sqrt(c[0, 0] / fit.sigma2) for c in fit.covariances], rtol=1e-12)
