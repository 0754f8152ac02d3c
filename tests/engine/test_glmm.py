"""The GLMM engine's general rules, on simulated data: the exact gradient of the Laplace
deviance (every link, scalar and vector-valued, nested and crossed terms) against central
differences, the blocked factor against a dense Laplace computation written here, adaptive
quadrature against per-group numerical integration, the fit's optimum, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from lmmflow.engine.families import GLMMError, get_family
from lmmflow.engine.glmm import GLMMProblem, SeparationWarning, glmer, glmm_design
from lmmflow.engine.quadrature import agq_deviance, gh_rule
from lmmflow.verify.glmm_laplace import integrated_loglik, z_lambda


def simulated(n_g=12, n_h=7, per=6, link="logit", family="binomial", seed=1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), per * n_h // n_h)[: n_g * per]
    n = len(g)
    h = rng.integers(0, n_h, n)
    x = rng.normal(size=n)
    b0 = rng.normal(0, 0.8, n_g)
    b1 = rng.normal(0, 0.5, n_g)
    c = rng.normal(0, 0.6, n_h)
    eta = -0.3 + 0.7 * x + b0[g] + b1[g] * x + c[h]
    if family == "binomial":
        mu = {"logit": special.expit, "probit": special.ndtr, "cloglog": lambda e: -np.expm1(-np.exp(e))}[link](eta)
        y = rng.binomial(1, mu).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g], "h": [f"h{i}" for i in h]})


def finite_difference_gradient(problem, x, h=1e-6):
    g = np.empty_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (problem.deviance(x + e) - problem.deviance(x - e)) / (2 * h)
    return g


CASES = [
    ("y ~ x + (1 | g) + (1 | h)", "binomial", "logit"),
    ("y ~ x + (1 | g) + (1 | h)", "binomial", "probit"),
    ("y ~ x + (1 | g)", "binomial", "cloglog"),
    ("y ~ x + (1 + x | g) + (1 | h)", "binomial", "logit"),
    ("y ~ x + (1 | h) + (1 + x | g)", "poisson", "log"),
    ("y ~ x + (x || g)", "binomial", "probit"),
    ("y ~ x + (1 | g) + (1 + x | h)", "binomial", "cloglog"),
    ("y ~ x + (1 + x | g) + (1 + x | h)", "poisson", "log"),
]


@pytest.mark.parametrize(("formula", "family", "link"), CASES)
def test_exact_gradient_matches_central_differences(formula, family, link):
    data = simulated(link=link, family=family)
    problem = GLMMProblem(glmm_design(formula, data, family, link))
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(0.3, 1.2, problem.n_theta), rng.normal(0, 0.4, problem.p)])
    x[: problem.n_theta][problem.lower[: problem.n_theta] == -np.inf] = 0.2  # off-diagonal entries
    f, g = problem.value_and_gradient(x)
    assert np.allclose(g, finite_difference_gradient(problem, x), rtol=1e-5, atol=1e-5)


def dense_laplace(gd, theta, beta):
    """The Laplace deviance computed densely: Newton on u with numpy, log det by slogdet."""
    M = z_lambda(gd.design, theta).toarray()
    fam = gd.family
    fixed = gd.design.X @ beta + gd.offset
    u = np.zeros(M.shape[1])
    for _ in range(100):
        mu, mu_eta, *_ = fam.link.inverse(fixed + M @ u)
        var = fam.variance(mu)
        w = gd.weights * mu_eta**2 / var
        A = M.T @ (w[:, None] * M) + np.eye(len(u))
        step = np.linalg.solve(A, M.T @ (gd.weights * (gd.y - mu) * mu_eta / var) - u)
        u += step
        if np.max(np.abs(step)) < 1e-13:
            break
    mu, mu_eta, *_ = fam.link.inverse(fixed + M @ u)
    w = gd.weights * mu_eta**2 / fam.variance(mu)
    logdet = np.linalg.slogdet(M.T @ (w[:, None] * M) + np.eye(len(u)))[1]
    return float(np.sum(fam.aic_terms(gd.y, mu, gd.weights, gd.trials)) + u @ u + logdet)


@pytest.mark.parametrize(("formula", "family", "link"), CASES)
def test_blocked_laplace_deviance_equals_dense_computation(formula, family, link):
    gd = glmm_design(formula, simulated(link=link, family=family), family, link)
    problem = GLMMProblem(gd)
    theta = np.where(problem.lower[: problem.n_theta] == 0, 0.9, -0.3)
    beta = np.array([-0.2, 0.5])
    assert problem.state(theta, beta).deviance == pytest.approx(dense_laplace(gd, theta, beta), abs=1e-8)


def test_vector_valued_fit_reaches_a_verified_optimum():
    data = simulated(n_g=30, per=10, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + (1 + x | g) + (1 | h)", data, family="binomial")
    assert fit.optimizer["max_abs_gradient"] < 1e-5
    assert fit.verification["agrees"]
    assert list(fit.theta_names) == ["g.(Intercept)", "g.x.(Intercept)", "g.x", "h.(Intercept)"]
    assert [r["var2"] for r in fit.varcorr][:3] == [None, None, "x"]
    assert fit.ranef["g"].shape == (30, 2)
    # no other start finds a lower deviance
    gd = glmm_design("y ~ x + (1 + x | g) + (1 | h)", data, "binomial")
    problem = GLMMProblem(gd)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = np.concatenate([fit.theta, fit.beta]) + rng.normal(0, 0.05, len(fit.theta) + len(fit.beta))
        assert problem.deviance(x) >= fit.objective - 1e-9


def test_one_node_quadrature_is_the_laplace_deviance_without_constant():
    gd = glmm_design("y ~ x + (1 | g)", simulated(), "binomial")
    problem = GLMMProblem(gd)
    x = np.array([0.8, -0.2, 0.5])
    state = problem.state(x[:1], x[1:])
    laplace = state.deviance
    constant = float(
        np.sum(gd.family.aic_terms(gd.y, state.mu, gd.weights, gd.trials))
        - np.sum(gd.family.unit_deviance(gd.y, state.mu, gd.weights))
    )
    nodes, weights = gh_rule(1)
    assert agq_deviance(problem, x, nodes, weights) == pytest.approx(laplace - constant, abs=1e-9)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_adaptive_quadrature_matches_numerical_integration(family):
    data = simulated(family=family, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + (1 | g)", data, family=family, nAGQ=15)
    gd = glmm_design("y ~ x + (1 | g)", data, family)
    assert fit.logLik == pytest.approx(integrated_loglik(gd, fit.theta, fit.beta), abs=1e-7)
    assert fit.verification["agrees"]
    assert fit.logLik_lme4 - fit.logLik == pytest.approx(
        0.5 * float(np.sum(gd.family.saturated_aic_terms(gd.y, gd.weights, gd.trials)))
    )


def test_nagq_needs_a_single_scalar_term():
    data = simulated()
    for formula in ["y ~ x + (1 + x | g)", "y ~ x + (1 | g) + (1 | h)"]:
        with pytest.raises(GLMMError, match="single scalar random-effect term"):
            glmer(formula, data, family="binomial", nAGQ=5)


@pytest.mark.parametrize(("family", "link"), [("gamma", None), ("binomial", "log"), ("poisson", "logit")])
def test_unknown_family_or_link(family, link):
    with pytest.raises(GLMMError, match="not supported"):
        get_family(family, link)


def test_poisson_with_negative_counts_is_refused_before_fitting():
    data = simulated(family="poisson")
    data.loc[3, "y"] = -1
    with pytest.raises(GLMMError, match="Poisson response 'y' has negative values"):
        glmer("y ~ x + (1 | g)", data, family="poisson")


def test_complete_separation_warns_naming_the_term():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=80)
    data = pd.DataFrame({"y": (x > 0).astype(float), "x": x, "g": g.astype(str)})
    with pytest.warns(SeparationWarning, match="'x'"):
        fit = glmer("y ~ x + (1 | g)", data, family="binomial", verify=False)
    assert any("'x'" in w for w in fit.warnings)


def test_offset_enters_the_linear_predictor():
    data = simulated(family="poisson")
    data["exposure"] = np.linspace(1, 3, len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + offset(log(exposure)) + (1 | g)", data, family="poisson")
    assert np.allclose(
        fit.eta - np.log(data["exposure"].to_numpy()),
        glmm_design("y ~ x + (1 | g)", data, "poisson").design.X @ fit.beta
        + fit.ranef["g"].to_numpy()[pd.factorize(data["g"], sort=True)[0], 0],
    )


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_non_canonical_links_reach_a_verified_optimum(link):
    """Fisher weights in PIRLS and log det as lme4; the exact gradient uses the observed Hessian."""
    data = simulated(n_g=25, per=8, link=link, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + (1 | g) + (1 | h)", data, family="binomial", link=link)
    assert fit.link == link
    assert fit.optimizer["max_abs_scaled_gradient"] < 1e-6
    assert fit.verification["agrees"]
    problem = GLMMProblem(glmm_design("y ~ x + (1 | g) + (1 | h)", data, "binomial", link))
    x = np.concatenate([fit.theta, fit.beta])
    rng = np.random.default_rng(1)
    for _ in range(10):
        assert problem.deviance(x + rng.normal(0, 1e-3, len(x))) >= fit.objective - 1e-10


def test_proportion_with_weights_is_the_cbind_fit():
    """R: glmer(cbind(s, n - s) ~ ...) and glmer(s / n ~ ..., weights = n) are the same model."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(15), 4)
    n = rng.integers(1, 20, len(g)).astype(float)
    s = rng.binomial(n.astype(int), 0.3).astype(float)
    data = pd.DataFrame({"s": s, "n": n, "p": s / n, "g": g.astype(str), "x": rng.normal(size=len(g))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = glmer("cbind(s, n - s) ~ x + (1 | g)", data, family="binomial", verify=False)
        b = glmer("p ~ x + (1 | g)", data, family="binomial", weights="n", verify=False)
    assert a.logLik == pytest.approx(b.logLik, abs=1e-9)
    assert np.allclose(a.beta, b.beta, atol=1e-7) and np.allclose(a.se, b.se, rtol=1e-5)


def test_cbind_with_prior_weights_counts_each_row_weight_times():
    """R: cbind(s, n - s) with weights w is the binomial likelihood of each row w times
    (binomial()$aic: m = n, wt / m = w), the same as the rows repeated w times."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(12), 3)
    n = rng.integers(2, 9, len(g)).astype(float)
    s = rng.binomial(n.astype(int), 0.4).astype(float)
    w = rng.integers(1, 3, len(g)).astype(float)
    data = pd.DataFrame({"s": s, "n": n, "w": w, "g": g.astype(str), "x": rng.normal(size=len(g))})
    repeated = data.loc[np.repeat(np.arange(len(data)), w.astype(int))].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = glmer("cbind(s, n - s) ~ x + (1 | g)", data, family="binomial", weights="w", verify=False)
        b = glmer("cbind(s, n - s) ~ x + (1 | g)", repeated, family="binomial", verify=False)
    assert a.logLik == pytest.approx(b.logLik, abs=1e-8)


def test_design_errors_name_the_users_formula_and_column():
    data = simulated()
    with pytest.raises(GLMMError, match=r"'y ~ x \+ \(1 \| nope\)'.*'nope'"):
        glmer("y ~ x + (1 | nope)", data, family="binomial")
    with pytest.raises(GLMMError, match="'g' has only one level"):
        glmer("y ~ x + (1 | g)", data.assign(g="a"), family="binomial")


def test_nagq0_is_lme4s_first_stage_and_two_stages_reach_the_same_optimum():
    """nAGQ = 0: beta from joint PIRLS (the penalized deviance's beta score is 0 at the modes);
    lme4's two stages (start="nAGQ0") end at the optimum of the default single-stage fit."""
    from lmmflow.engine.glmm import fit_glmm

    data = simulated(n_g=20, per=8, seed=9)
    gd = glmm_design("y ~ x + (1 | g) + (1 | h)", data, "binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zero = fit_glmm(gd, nAGQ=0)
        two = fit_glmm(gd, nAGQ=1, start="nAGQ0")
        one = fit_glmm(gd, nAGQ=1)
    mu = gd.family.link.inverse(zero.eta)[0]
    assert np.max(np.abs(gd.design.X.T @ (gd.y - mu))) < 1e-8
    assert zero.optimizer["max_abs_gradient"] < 1e-3
    assert two.logLik == pytest.approx(one.logLik, abs=1e-9)
    assert two.optimizer["runs"][0]["method"].startswith("nAGQ = 0 stage")


def test_singular_fit_reports_a_zero_variance_as_lme4():
    """No group variation in the data: the SD of g is 0 at the optimum (lme4: boundary (singular) fit)."""
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=200)
    y = rng.binomial(1, special.expit(0.3 + 0.5 * x)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g.astype(str)}), family="binomial")
    assert fit.theta[0] == 0.0 and fit.is_singular
    assert fit.verification["agrees"]
    assert np.all(np.isfinite(fit.se))
