"""lme4's profile-likelihood confidence intervals for every parameter of a fit.

Profile intervals (``profile_intervals``) reproduce ``confint(fit, method = "profile")`` of lme4
1.1-31 for a REML fit. What lme4 actually profiles (``profile.merMod`` -> ``devfun2``):

* ``devfun2`` starts with ``refitML(fit)``: the profile is of the **ML** deviance
  (-2 log-likelihood), centred at the ML estimates, even though the model was fitted by REML.
  Nothing in it is a REML criterion.
* Variance parameters are profiled on lme4's "sdcor" scale: per random term the SDs and
  correlations on the absolute scale (``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
  ...), then ``sigma``. Profiling one of them fixes it and minimizes the ML deviance
  ``log|L|^2 + r2(theta)/sigma^2 + n log(2 pi sigma^2)`` (beta profiled out) over all the others,
  sigma included; theta = chol(covariance) / sigma. SDs are bounded below by 0, correlations
  by [-1, 1]; when the profile does not reach zeta = -1.96 before the bound, the bound is the
  interval end (lme4 returns ``lower[i]`` for an NA spline prediction).
* A fixed effect beta_j is profiled by refitting with its column moved into an offset and
  minimizing over theta and sigma: lme4 builds a fresh ``lmerResp`` whose REML flag is 0, so
  this is again the ML deviance (the REML criterion of the reduced model, which would change
  with the offset column, is never used). We compute the same quantity without refitting:
  for given theta the ML deviance with beta_j fixed at b is
  ``log|L|^2 + n (1 + log(2 pi (r2 + (b - beta_j(theta))^2 / [F^-1]_jj) / n))`` with
  F = X'V^-1 X, which is exactly the deviance of the offset model (tested).
* zeta(x) = sign(x - x_ML) sqrt(deviance(x) - deviance_ML); the interval is where zeta = -+1.96.
  lme4 samples each profile at ~10-20 points and reads the bounds off an interpolating spline;
  we find them by root finding (Brent) on zeta itself, i.e. the exact ends of lme4's interval.

The ``estimate`` column holds the fitted model's (REML) estimates, which is what the model
reports; the profile's own centre (the ML estimates, which lme4 does not print) is in
``profile_center``.

``profile_intervals`` starts from a fit (in the workflow, rebuilt from the fit stage's
solution.json by ``lmmflow.outputs.solution``, not refitted). The ML criterion comes from
``lmmflow.engine.choice.profiled_criterion`` (either engine) and is used through ``solve``,
``lower_bounds`` and ``lmmflow.engine.choice.optimize_criterion`` only, so crossed models are profiled
like nested ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import ndtri  # the normal quantile, without scipy.stats' ~1 s import

from lmmflow.engine.choice import optimize_criterion, profiled_criterion
from lmmflow.engine.criterion import LOG_2PI
from lmmflow.engine.estimates import Estimates, parameter_vector
from lmmflow.engine.parameters import (
    covariances_to_theta,
    parameter_names,
    sdcor_bounds,
    sdcor_to_theta,
    theta_to_sdcor,
)
from lmmflow.model.design import Design

LEVEL = 0.95
# Profile deviances below the ML optimum by more than this mean the optimum was not found.
DEVIANCE_TOLERANCE = 1e-6
MAX_SEARCH_STEPS = 60
# Inner optimizer of each profile point. SLSQP, not L-BFGS-B: scipy's L-BFGS-B calls BLAS on
# tiny vectors and, with a multi-threaded OpenBLAS on a busy machine, each of its iterations
# costs ~1 ms of thread synchronization (5x slower profiles).
INNER_OPTIONS = dict(ftol=1e-12, maxiter=500)


# --------------------------------------------------------------------------- the ML deviance lme4 profiles


class MLProfile:
    """lme4's ``devfun2``: the ML deviance as a function of the sdcor parameters (beta profiled
    out), and the ML deviance with one fixed effect held at a value (theta and sigma free).

    Built on the ML criterion of ``profiled_criterion(design, reml=False)``: its ``solve(theta)``
    gives the ML sigma^2 = r2/n, beta(theta), vcov and the profiled deviance, from which the
    log-determinant and r2 are recovered.
    """

    def __init__(self, design: Design, start: np.ndarray | None = None):
        self.design = design
        self.model = profiled_criterion(design, reml=False)
        self.sizes = [block.n_effects for block in design.blocks]
        self.n = design.n_obs
        theta, _ = optimize_criterion(self.model, start)
        solution = self.model.solve(theta)
        self.theta_hat = theta
        self.base = solution.deviance
        self.sigma_hat = float(np.sqrt(solution.sigma2))
        # A correlation with a zero-SD effect is undefined (NaN) and leaves the deviance unchanged;
        # 0 is as good a centre as any, and a number lets the profiles start from it.
        vc_hat = theta_to_sdcor(theta, self.sizes, self.sigma_hat)
        self.vc_hat = np.where(np.isnan(vc_hat), 0.0, vc_hat)
        self.beta_hat = solution.beta
        self.beta_se = np.sqrt(np.diag(solution.beta_cov))
        self.names = parameter_names(design)
        self.vc_lower, self.vc_upper = sdcor_bounds(self.sizes)

    @property
    def optimum(self) -> np.ndarray:
        return np.concatenate([self.vc_hat, self.beta_hat])

    def _pieces(self, theta: np.ndarray):
        """log|L|^2, r2 (penalized RSS) and the solution at theta; None where theta is infeasible.

        Recovered from the criterion's ``solve`` (ML: sigma^2 = r2 / n, deviance = log|L|^2 +
        n (1 + log(2 pi r2 / n))), which every engine has; it also computes the conditional
        modes, which the profile does not need.
        """
        try:
            solution = self.model.solve(np.asarray(theta, float))
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return None
        if not (np.isfinite(solution.deviance) and solution.sigma2 > 0):
            return None
        logdet = solution.deviance - self.n * (1.0 + LOG_2PI + np.log(solution.sigma2))
        return logdet, self.n * solution.sigma2, solution

    def vc_deviance(self, pars: np.ndarray) -> float:
        """ML deviance at sdcor parameters ``pars`` (ending with sigma), beta profiled out."""
        sigma = pars[-1]
        if not sigma > 0:
            return np.inf
        pieces = self._pieces(sdcor_to_theta(pars, self.sizes))
        if pieces is None:
            return np.inf
        logdet, r2, _ = pieces
        return float(logdet + r2 / sigma**2 + self.n * (LOG_2PI + 2.0 * np.log(sigma)))

    def fixed_deviance(self, theta: np.ndarray, j: int, value: float) -> float:
        """ML deviance with beta_j = value, at theta, sigma and the other betas profiled out."""
        pieces = self._pieces(theta)
        if pieces is None:
            return np.inf
        logdet, r2, solution = pieces
        f_inv_jj = solution.beta_cov[j, j] / solution.sigma2  # [(X'V^-1 X)^-1]_jj
        r2_fixed = r2 + (value - solution.beta[j]) ** 2 / f_inv_jj
        return float(logdet + self.n * (1.0 + LOG_2PI + np.log(r2_fixed / self.n)))

    # -- zeta functions: one per parameter, with warm starts from the nearest evaluated point

    def zeta_function(self, index: int) -> Callable[[float], float]:
        n_vc = len(self.vc_hat)
        if index < n_vc:
            return _VarianceZeta(self, index)
        return _FixedZeta(self, index - n_vc)


class Zeta:
    """zeta(x) for one parameter; remembers nuisance solutions to warm-start the next optimization.

    ``profile`` is any profile with the deviance ``base`` at its optimum (this module's
    ``MLProfile``, ``lmmflow.inference.glmm_profile_intervals.LaplaceProfile``); subclasses
    give ``_minimize(x)``: the deviance minimized over the nuisance parameters, and its minimizer.
    """

    def __init__(self, profile, center: float, start: np.ndarray):
        self.profile = profile
        self.center = center
        self.points: list[tuple[float, np.ndarray]] = [(center, start)]

    def _start(self, x: float) -> np.ndarray:
        """Nuisance solution at the nearest evaluated point, extrapolated linearly from the two
        nearest (profile traces are smooth), which leaves the optimizer a few iterations."""
        nearest = sorted(self.points, key=lambda point: abs(point[0] - x))[:2]
        if len(nearest) < 2 or nearest[0][0] == nearest[1][0]:
            return nearest[0][1]
        (x0, n0), (x1, n1) = nearest
        return n0 + (n1 - n0) * (x - x0) / (x1 - x0)

    def _minimize(self, x: float) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def __call__(self, x: float) -> float:
        value, nuisance = self._minimize(x)
        self.points.append((x, nuisance))
        difference = value - self.profile.base
        if difference < -DEVIANCE_TOLERANCE:
            warnings.warn(
                f"profiling found a deviance {-difference:.3g} below the ML optimum; the ML fit was not at its optimum",
                stacklevel=2,
            )
        return float(np.sign(x - self.center) * np.sqrt(max(difference, 0.0)))


def bounded_minimize(fun, start, lower, upper, scale, gradient=False, tolerance=0.0):
    """Minimize ``fun`` over a box, on a copy of the variables scaled to order 1.

    SLSQP from the warm start (on ``fun``'s own gradient when ``gradient``: then ``fun`` returns
    the value and the gradient); if it fails or ends more than ``tolerance`` above the start
    (a gradient from finite differences can end a run just above a start that was already
    optimal), Nelder-Mead from the better of its end and the start. Returns the minimum and the
    minimizer.
    """
    scale = np.where(scale > 0, scale, 1.0)
    bounds = list(zip(lower / scale, upper / scale))

    def scaled(z):
        if not gradient:
            return fun(z * scale)
        value, slope = fun(z * scale)
        return value, slope * scale

    def value_only(z):
        return scaled(z)[0] if gradient else scaled(z)

    z0 = np.clip(start / scale, lower / scale, upper / scale)
    if len(z0) == 0:
        return value_only(z0), start
    f0 = value_only(z0)
    result = optimize.minimize(scaled, z0, jac=gradient, method="SLSQP", bounds=bounds, options=INNER_OPTIONS)
    improved = bool(np.isfinite(result.fun) and result.fun <= f0)
    best_z, best_f = (result.x, result.fun) if improved else (z0, f0)
    if not (result.success and np.isfinite(result.fun) and result.fun <= f0 + tolerance):
        polish = optimize.minimize(
            value_only,
            best_z,
            method="Nelder-Mead",
            bounds=bounds,
            options=dict(xatol=1e-9, fatol=1e-12, maxfev=4000),
        )
        if polish.fun < best_f:
            best_z, best_f = polish.x, polish.fun
    return float(best_f), np.clip(best_z, lower / scale, upper / scale) * scale


class _VarianceZeta(Zeta):
    def __init__(self, profile: MLProfile, w: int):
        self.w = w
        self.others = np.delete(np.arange(len(profile.vc_hat)), w)
        super().__init__(profile, profile.vc_hat[w], profile.vc_hat[self.others])

    def _minimize(self, x):
        p = self.profile
        pars = p.vc_hat.copy()
        pars[self.w] = x

        def deviance(others):
            pars[self.others] = others
            return p.vc_deviance(pars)

        scale = np.where(p.vc_upper[self.others] == 1.0, 1.0, np.abs(p.vc_hat[self.others]))
        scale = np.where(scale > 0, scale, p.sigma_hat)
        return bounded_minimize(deviance, self._start(x), p.vc_lower[self.others], p.vc_upper[self.others], scale)


class _FixedZeta(Zeta):
    def __init__(self, profile: MLProfile, j: int):
        self.j = j
        super().__init__(profile, profile.beta_hat[j], profile.theta_hat)

    def _minimize(self, x):
        p = self.profile
        lower = p.model.lower_bounds
        upper = np.full(len(lower), np.inf)
        return bounded_minimize(
            lambda theta: p.fixed_deviance(theta, self.j, x), self._start(x), lower, upper, np.ones(len(lower))
        )


# --------------------------------------------------------------------------- root finding


def _profile_bound(zeta: Callable[[float], float], center: float, target: float, step: float, cut: float) -> float:
    """x beyond ``center`` (towards sign(target)) where zeta(x) = target; ``cut`` if zeta never gets there.

    Secant steps outwards (zeta is close to linear in x) until the target is bracketed, then Brent.
    """
    direction = np.sign(target)
    x_prev, z_prev = center, 0.0
    x = center + direction * step
    for _ in range(MAX_SEARCH_STEPS):
        if direction * (x - cut) >= 0:
            x = cut
        z = zeta(x)
        if direction * (z - target) >= 0:
            return optimize.brentq(
                lambda v: zeta(v) - target, min(x_prev, x), max(x_prev, x), xtol=1e-9 * max(1.0, abs(x)), rtol=1e-9
            )
        if x == cut:
            return cut
        slope = (z - z_prev) / (x - x_prev)
        distance = abs(x - x_prev)
        # Aim 10% beyond the linear prediction so the next point brackets; never shrink, cap growth.
        move = 1.1 * (target - z) / slope if slope * direction > 0 else 4 * distance
        move = direction * min(max(abs(move), 0.25 * distance), 10 * distance)
        x_prev, z_prev, x = x, z, x + move
    raise RuntimeError(f"profile did not reach zeta = {target} within {MAX_SEARCH_STEPS} steps")


def profile_intervals(
    design: Design, estimates: Estimates, level: float = LEVEL, which: Sequence[str] | None = None
) -> pd.DataFrame:
    """lme4's ``confint(fit, method = "profile")`` for the REML fit ``estimates`` of ``design``
    (see module docstring); ``which`` names the parameters to profile (default: all).

    Columns: parameter (lme4 names), estimate (the REML fit's value), lower_2.5 and upper_97.5
    (named for level 0.95), method, profile_center (the ML estimate at which zeta = 0).
    """
    with np.errstate(all="ignore"):  # infeasible trial points evaluate to inf; that is expected
        return _profile_table(design, estimates, level, which)


def _profile_table(design: Design, estimates: Estimates, level: float, which: Sequence[str] | None) -> pd.DataFrame:
    # The ML fit starts from the REML theta as the covariances give it, which every path reports
    # (statsmodels' Estimates carry no theta).
    profile = MLProfile(design, start=covariances_to_theta(estimates.covariances, estimates.sigma2))
    return profile_table(profile, parameter_vector(design, estimates), level, which)


def profile_table(profile, reported: dict[str, float], level: float, which: Sequence[str] | None) -> pd.DataFrame:
    """The intervals of ``profile`` (``MLProfile`` or a profile with the same attributes: names,
    optimum, vc_hat, vc_lower, vc_upper, beta_se, sigma_hat, zeta_function) for the parameters
    ``which`` (default all); ``reported`` holds the estimates the model reports, by name."""
    names = profile.names
    which = names if which is None else list(which)
    unknown = sorted(set(which) - set(names))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; this model has {names}")
    z = ndtri((1 + level) / 2)
    bound_columns = interval_columns(level)
    rows = [
        {
            "parameter": name,
            "estimate": reported[name],
            **dict(zip(bound_columns, _interval(profile, index, z))),
            "method": "profile",
            "profile_center": profile.optimum[index],
        }
        for index, name in enumerate(names)
        if name in which
    ]
    return pd.DataFrame(rows, columns=["parameter", "estimate", *bound_columns, "method", "profile_center"])


def interval_columns(level: float) -> tuple[str, str]:
    """The bound columns of intervals at ``level``, named for their percentiles as lme4's
    ``confint`` names them: ``lower_2.5``, ``upper_97.5`` at 0.95."""
    return f"lower_{100 * (1 - level) / 2:g}", f"upper_{100 * (1 + level) / 2:g}"


def _interval(profile, index: int, z: float) -> tuple[float, float]:
    """Where parameter ``index``'s zeta is -z and +z, or the parameter's limit it stops at."""
    n_vc = len(profile.vc_hat)
    n_beta = len(profile.beta_hat)
    lower_cut = np.concatenate([profile.vc_lower, np.full(n_beta, -np.inf)])[index]
    upper_cut = np.concatenate([profile.vc_upper, np.full(n_beta, np.inf)])[index]
    center = profile.optimum[index]
    if index < n_vc:
        is_cor = profile.vc_upper[index] == 1.0
        step = 0.05 if is_cor else 0.1 * max(abs(center), 1e-3 * profile.sigma_hat)
    else:
        step = 0.5 * profile.beta_se[index - n_vc]
    bounds = []
    for target, cut in ((-z, lower_cut), (z, upper_cut)):
        if center == cut:
            bounds.append(cut)
            continue
        first_step = min(step, 0.5 * abs(center - cut)) if np.isfinite(cut) else step
        bounds.append(_profile_bound(profile.zeta_function(index), center, target, first_step, cut))
    return bounds[0], bounds[1]
