"""lme4's profile-likelihood confidence intervals of a GLMM, ``confint(glmer_fit, method = "profile")``.

What lme4 1.1-31 profiles for a ``glmer`` fit (``profile.merMod`` with ``devfun2``, which has no
scale parameter for the binomial and Poisson families): the deviance the fit minimized, as a
function of the random-effect SDs and correlations (absolute scale, ``sd_(Intercept)|herd``;
no ``sigma``) and the fixed effects:

* the Laplace deviance for nAGQ = 1, the adaptive Gauss-Hermite deviance of the fit's nAGQ for
  nAGQ > 1 (both in ``lmmflow.engine``; the profile compares deviances of one kind only, so
  lme4's missing binomial constant at nAGQ > 1 cancels);
* one parameter fixed, minimized over all the others: an SD or correlation over the other SDs
  and correlations and beta; a fixed effect beta_j over theta and the other betas (lme4 refits
  with column j moved into the offset: the same minimum);
* zeta(x) = sign(x - x_hat) sqrt(deviance(x) - deviance_hat), the interval where zeta = -+1.96,
  found by root finding on zeta itself (``lmmflow.inference.profile_intervals``, shared with the
  LMMs); lme4 reads the same points off an interpolating spline of ~10-20 profile points.

Each inner minimization uses the exact gradient of the Laplace deviance (implicit
differentiation of the conditional modes; forward differences for the quadrature deviance), so a
profile point costs a few PIRLS runs, and PIRLS starts from the modes of the previous point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmmflow.engine.blas import single_thread
from lmmflow.engine.glmm_design import GLMMDesign, glmm_design
from lmmflow.engine.glmm_results import fixed_vcov
from lmmflow.engine.parameters import parameter_names, sdcor_bounds, sdcor_to_theta, theta_to_sdcor
from lmmflow.engine.pirls import GLMMProblem
from lmmflow.engine.quadrature import agq_deviance, forward_gradient, gh_rule
from lmmflow.inference.profile_intervals import DEVIANCE_TOLERANCE, LEVEL, Zeta, bounded_minimize, profile_table

# Central-difference step of the sdcor -> theta Jacobian (the map is smooth inside its bounds).
JACOBIAN_STEP = 1e-7


class LaplaceProfile:
    """The deviance of a fitted GLMM on lme4's profile scale (SDs and correlations, then beta)
    and the zeta function of each parameter; the attributes ``profile_table`` reads."""

    def __init__(self, gd: GLMMDesign, theta: np.ndarray, beta: np.ndarray, nAGQ: int = 1):
        self.problem = GLMMProblem(gd)
        self.sizes = self.problem.sizes
        self.n_theta = self.problem.n_theta
        self.nAGQ = nAGQ
        self.rule = gh_rule(nAGQ) if nAGQ > 1 else None
        # An inner minimum within this of its start is accepted (finite-difference gradients at nAGQ > 1).
        self.tolerance = DEVIANCE_TOLERANCE
        self.names = glmm_parameter_names(gd)
        self.theta_hat = np.asarray(theta, float)
        self.beta_hat = np.asarray(beta, float)
        self.sigma_hat = 1.0  # the scale of SD steps; binomial and Poisson GLMMs have no sigma
        # A correlation of a zero SD is undefined (NaN); 0 is as good a centre as any.
        self.vc_hat = np.nan_to_num(theta_to_sdcor(self.theta_hat, self.sizes, 1.0)[:-1])
        lower, upper = sdcor_bounds(self.sizes)
        self.vc_lower, self.vc_upper = lower[:-1], upper[:-1]
        at_optimum = np.concatenate([self.theta_hat, self.beta_hat])
        self.base = self.value_and_gradient(at_optimum)[0]
        vcov, _ = fixed_vcov(self.problem.hessian(at_optimum), self.n_theta)
        self.beta_se = np.sqrt(np.diag(vcov)) if vcov is not None else np.ones(len(self.beta_hat))

    @property
    def optimum(self) -> np.ndarray:
        return np.concatenate([self.vc_hat, self.beta_hat])

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """The fit's deviance at (theta, beta) and its gradient."""
        if self.rule is None:
            return self.problem.value_and_gradient(params)

        def deviance(x):
            return agq_deviance(self.problem, x, *self.rule) if np.all(x >= self.problem.lower) else np.inf

        value = deviance(params)
        return value, forward_gradient(deviance, params, value)

    def theta_of(self, vc: np.ndarray) -> np.ndarray:
        return sdcor_to_theta(np.append(vc, 1.0), self.sizes)

    def theta_jacobian(self, vc: np.ndarray) -> np.ndarray:
        """d theta / d sdcor at ``vc``: identity for scalar terms, central differences (one-sided at
        a bound) for vector-valued ones."""
        if all(q == 1 for q in self.sizes):
            return np.eye(len(vc))
        columns = []
        for k in range(len(vc)):
            up, down = vc.copy(), vc.copy()
            up[k] = min(vc[k] + JACOBIAN_STEP, self.vc_upper[k])
            down[k] = max(vc[k] - JACOBIAN_STEP, self.vc_lower[k])
            columns.append((self.theta_of(up) - self.theta_of(down)) / (up[k] - down[k]))
        return np.column_stack(columns)

    def zeta_function(self, index: int) -> Zeta:
        n_vc = len(self.vc_hat)
        if index < n_vc:
            return _VarianceZeta(self, index)
        return _FixedZeta(self, index - n_vc)


class _VarianceZeta(Zeta):
    """An SD or correlation held at x; the other SDs and correlations and beta free."""

    def __init__(self, profile: LaplaceProfile, w: int):
        self.w = w
        n_vc = len(profile.vc_hat)
        self.free = np.delete(np.arange(n_vc + len(profile.beta_hat)), w)  # positions in (sdcor, beta)
        super().__init__(profile, profile.vc_hat[w], profile.optimum[self.free])

    def _minimize(self, x):
        p = self.profile
        n_vc = len(p.vc_hat)
        point = p.optimum
        point[self.w] = x

        def deviance(free):
            point[self.free] = free
            vc = point[:n_vc]
            value, gradient = p.value_and_gradient(np.concatenate([p.theta_of(vc), point[n_vc:]]))
            by_vc = gradient[: p.n_theta] @ p.theta_jacobian(vc)
            return value, np.concatenate([by_vc, gradient[p.n_theta :]])[self.free]

        lower = np.concatenate([p.vc_lower, np.full(len(p.beta_hat), -np.inf)])[self.free]
        upper = np.concatenate([p.vc_upper, np.full(len(p.beta_hat), np.inf)])[self.free]
        scale = np.concatenate([np.maximum(np.abs(p.vc_hat), 0.1), p.beta_se])[self.free]
        return bounded_minimize(deviance, self._start(x), lower, upper, scale, gradient=True, tolerance=p.tolerance)


class _FixedZeta(Zeta):
    """beta_j held at x; theta and the other betas free."""

    def __init__(self, profile: LaplaceProfile, j: int):
        self.j = profile.n_theta + j  # position in (theta, beta)
        self.free = np.delete(np.arange(profile.n_theta + len(profile.beta_hat)), self.j)
        start = np.concatenate([profile.theta_hat, profile.beta_hat])[self.free]
        super().__init__(profile, profile.beta_hat[j], start)

    def _minimize(self, x):
        p = self.profile
        point = np.concatenate([p.theta_hat, p.beta_hat])
        point[self.j] = x

        def deviance(free):
            point[self.free] = free
            value, gradient = p.value_and_gradient(point)
            return value, gradient[self.free]

        lower = p.problem.lower[self.free]
        upper = np.full(len(lower), np.inf)
        scale = np.concatenate([np.maximum(np.abs(p.theta_hat), 0.1), p.beta_se])[self.free]
        return bounded_minimize(deviance, self._start(x), lower, upper, scale, gradient=True, tolerance=p.tolerance)


def glmm_parameter_names(gd: GLMMDesign) -> list[str]:
    """lme4's names of a GLMM's parameters on the profile scale: each term's SDs and correlations
    (``sd_(Intercept)|herd``), then the fixed effects; no sigma (binomial and Poisson have none)."""
    names = parameter_names(gd.design)
    n_variance = len(names) - len(gd.design.fixed_names) - 1
    return names[:n_variance] + names[n_variance + 1 :]


def glmm_profile_intervals(
    gd: GLMMDesign,
    theta: np.ndarray,
    beta: np.ndarray,
    nAGQ: int = 1,
    level: float = LEVEL,
    which: Sequence[str] | None = None,
) -> pd.DataFrame:
    """lme4's ``confint(fit, method = "profile")`` for the GLMM of ``gd`` fitted at (``theta``,
    ``beta``) with ``nAGQ`` (see the module docstring); ``which`` names the parameters (default all).

    Columns as the LMMs' profile intervals: parameter (lme4 names), estimate, lower_2.5 and
    upper_97.5 (named for level 0.95), method, profile_center (= estimate: a GLMM is an ML fit).
    """
    with single_thread(), np.errstate(all="ignore"):  # infeasible trial points evaluate to inf
        profile = LaplaceProfile(gd, theta, beta, nAGQ)
        return profile_table(profile, dict(zip(profile.names, profile.optimum)), level, which)


def glmm_profile_from_solution(
    data: pd.DataFrame, formula: str, solution: dict, weights: str | None = None, level: float = LEVEL
) -> pd.DataFrame:
    """The profile intervals of a GLMM fitted by the workflow, from its solution.json content
    (``lmmflow.outputs.glmm_tables.solution``: family, link, nAGQ, theta, beta); no refit."""
    gd = glmm_design(formula, data, solution["family"], solution["link"], weights)
    return glmm_profile_intervals(
        gd, np.asarray(solution["theta"]), np.asarray(solution["beta"]), int(solution["nAGQ"]), level
    )
