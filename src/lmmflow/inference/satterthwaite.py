"""Satterthwaite degrees of freedom and t tests for the fixed effects, as lmerTest computes them.

lmerTest (3.1-3, ``as_lmerModLmerTest`` and ``contest1D``) works on the variance parameters
varpar = (theta, sigma). With the deviance of lme4's PLS solution at theta evaluated at an
arbitrary sigma (``devfun_vp``)

    dev(theta, sigma) = ldL2 + pwrss / sigma^2 + n log(2 pi sigma^2)
                        [ + ldRX2 - p log(2 pi sigma^2) for REML ],

the asymptotic covariance of varpar is A = 2 H^-1, H the Hessian of dev at the optimum (a
Moore-Penrose inverse over eigenvalues above 1e-8, lmerTest's tolerance). With
vcov(beta) = sigma^2 inv(RX'RX) and g_j its gradient of Var(beta_j) with respect to varpar,

    df_j = 2 Var(beta_j)^2 / (g_j' A g_j),   p_j = 2 P(T_df_j > |beta_j| / SE_j).

lmerTest differentiates numerically (numDeriv, Richardson extrapolation). Here sigma enters in
closed form (the formulas in ``varpar_hessian`` and ``vcov_jacobian``), and only the theta
derivatives of the engine's PLS pieces (``lmmflow.engine.criterion.PLSState``) are numerical: central
differences refined by Richardson extrapolation (``RICHARDSON_LEVELS``), all from one stencil of
evaluations shared by every piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, stdtr

from lmmflow.engine.choice import criterion_of_engine, design_work
from lmmflow.engine.criterion import Criterion
from lmmflow.engine.estimates import Estimates
from lmmflow.model.design import Design

# lmerTest's threshold below which an eigenvalue of H counts as zero (not inverted).
EIGENVALUE_TOLERANCE = 1e-8
# Central differences with steps h, h/2, h/4, combined by Richardson extrapolation: the error of
# a central difference is a series in h^2 and each level removes one more term, so the result is
# accurate to O(h^6) with h large enough that the deviance's rounding (~1e-12 relative) is not
# amplified, which a single small-step difference cannot have both of.
# h = RELATIVE_STEP * max(|theta_j|, STEP_FLOOR): theta entries are relative SDs and Cholesky
# off-diagonals of order 0.01-1, and the deviance is smooth in them on that scale, even through 0
# (it is even in each column of Lambda). Measured at lme4's optima of gpa_mixed, ach_cat_re_3 and
# the ML ach_cat_re_1: df within 1e-7 of lmerTest's with 2 to 4 levels and RELATIVE_STEP 0.005
# to 0.1 alike, against up to 7e-5 for a single central difference with h = 1e-4 |theta_j|.
RICHARDSON_LEVELS = 3
RELATIVE_STEP = 0.05
STEP_FLOOR = 0.05
# The stencil costs levels x (2k + k(k - 1)) evaluations of the criterion (k theta entries). Where one
# level's estimated work (flops, the engines' ``evaluation_work``) exceeds SATTERTHWAITE_MAX_WORK
# the levels are cut to fit it, down to one; above SATTERTHWAITE_SKIP_WORK the df are not computed
# (NaN, with the reason in fit.json), where they would cost more than the fit: on a MovieLens-shaped
# crossing of 1M ratings one evaluation is ~1 s and the df of its few fixed effects are in the
# thousands (p_value_z, the normal approximation, is then as good). InstEval (k = 3, a dense block
# of 1,142) keeps all three levels; with its vector-valued term (k = 6) it gets one.
SATTERTHWAITE_MAX_WORK = 2e10
SATTERTHWAITE_SKIP_WORK = 5e10
# Positions in the vector of PLS pieces that is differentiated (``_pieces``).
LOG_DETERMINANTS, PWRSS, UNSCALED_VCOV = 0, 1, slice(2, None)


# --------------------------------------------------------------------------- numerical theta derivatives


def _pieces(criterion: Criterion, theta: np.ndarray) -> np.ndarray:
    """[ldL2 (+ ldRX2 for REML), pwrss, inv(RX'RX) row by row] at theta: what the derivatives need."""
    state = criterion.pls_state(theta)
    log_determinants = state.ldL2 + (state.ldRX2 if criterion.reml else 0.0)
    return np.concatenate([[log_determinants, state.pwrss], np.linalg.inv(state.xtvx).ravel()])


def _central_differences(fun, x: np.ndarray, steps: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (m, k) and Hessian (m, k, k) of a vector function by central differences.

    Mixed second derivatives from f(x + h_i + h_j) and f(x - h_i - h_j) (numDeriv's genD
    stencil); every difference is even in h, so Richardson extrapolation applies to all of them.
    """
    k = len(x)
    shifts = np.diag(steps)
    plus = [fun(x + shifts[i]) for i in range(k)]
    minus = [fun(x - shifts[i]) for i in range(k)]
    gradient = np.empty((len(centre), k))
    hessian = np.empty((len(centre), k, k))
    for i in range(k):
        gradient[:, i] = (plus[i] - minus[i]) / (2 * steps[i])
        hessian[:, i, i] = (plus[i] - 2 * centre + minus[i]) / steps[i] ** 2
        for j in range(i):
            both = fun(x + shifts[i] + shifts[j]) + fun(x - shifts[i] - shifts[j])
            singles = plus[i] + minus[i] + plus[j] + minus[j]
            hessian[:, i, j] = hessian[:, j, i] = (both - singles + 2 * centre) / (2 * steps[i] * steps[j])
    return gradient, hessian


def richardson_levels(evaluation_work: float, n_theta: int) -> int:
    """Richardson levels for a criterion of this work per evaluation (0: df not computed)."""
    per_level = (2 * n_theta + n_theta * (n_theta - 1)) * evaluation_work
    if per_level > SATTERTHWAITE_SKIP_WORK:
        return 0
    return int(np.clip(SATTERTHWAITE_MAX_WORK // max(per_level, 1.0), 1, RICHARDSON_LEVELS))


def skipped_reason(work: float, n_theta: int) -> str | None:
    """Why the df are not computed (``richardson_levels`` 0) for a criterion of this ``work`` per
    evaluation (``lmmflow.engine.choice.design_work``), or None."""
    if richardson_levels(work, n_theta):
        return None
    return (
        f"Satterthwaite df not computed: its {2 * n_theta + n_theta * (n_theta - 1)} evaluations of the "
        f"criterion (~{work:.1e} flops each) exceed {SATTERTHWAITE_SKIP_WORK:.0e}; df and p_value are NaN, "
        "p_value_z is the normal approximation"
    )


def theta_derivatives(
    criterion: Criterion, theta: np.ndarray, levels: int = RICHARDSON_LEVELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian in theta of the PLS pieces (``_pieces``), Richardson-refined over ``levels``."""
    theta = np.asarray(theta, dtype=float)
    steps = RELATIVE_STEP * np.maximum(np.abs(theta), STEP_FLOOR)
    centre = _pieces(criterion, theta)
    table = [
        _central_differences(lambda t: _pieces(criterion, t), theta, steps / 2**level, centre)
        for level in range(levels)
    ]
    # Richardson tableau: level m removes the h^(2m) error term of two successive estimates.
    for m in range(1, levels):
        weight = 4.0**m
        table = [
            tuple((weight * fine - coarse) / (weight - 1) for fine, coarse in zip(table[i + 1], table[i]))
            for i in range(len(table) - 1)
        ]
    gradient, hessian = table[0]
    return centre, gradient, hessian


# --------------------------------------------------------------------------- lmerTest's quantities


@dataclass(frozen=True)
class Satterthwaite:
    """lmerTest's ingredients at an optimum (theta, sigma); varpar order is (theta..., sigma).

    ``vcov_beta``: sigma^2 inv(RX'RX), (p x p). ``jacobian[:, :, i]``: d vcov_beta / d varpar_i.
    ``hessian``: of ``devfun_vp`` in varpar. ``vcov_varpar``: A = 2 H^+ (lmerTest's
    ``vcov_varpar``).
    """

    vcov_beta: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray

    def contrast_df(self, contrast: np.ndarray) -> float:
        """Satterthwaite df of L'beta (lmerTest's ``contest1D``): 2 Var(L'beta)^2 / (g' A g)."""
        contrast = np.asarray(contrast, dtype=float)
        variance = contrast @ self.vcov_beta @ contrast
        gradient = np.einsum("i,ijk,j->k", contrast, self.jacobian, contrast)
        return float(2 * variance**2 / (gradient @ self.vcov_varpar @ gradient))

    def coefficient_df(self) -> np.ndarray:
        """Satterthwaite df of each fixed effect on its own (the unit contrasts)."""
        return np.array([self.contrast_df(unit) for unit in np.eye(len(self.vcov_beta))])

    def warnings(self) -> list[str]:
        """lmerTest's warnings about H: negative or (near-)zero eigenvalues."""
        eigenvalues = np.linalg.eigvalsh(self.hessian)
        notes = []
        negative = eigenvalues[eigenvalues < -EIGENVALUE_TOLERANCE]
        if len(negative):
            notes.append(f"Satterthwaite: Hessian of the deviance has negative eigenvalue(s) {negative}")
        zero = eigenvalues[np.abs(eigenvalues) <= EIGENVALUE_TOLERANCE]
        if len(zero):
            notes.append(f"Satterthwaite: Hessian of the deviance has eigenvalue(s) close to zero {zero}")
        return notes


def varpar_hessian(
    value: np.ndarray, gradient: np.ndarray, hessian: np.ndarray, sigma: float, n_residual: int
) -> np.ndarray:
    """Hessian of dev(theta, sigma) = a(theta) + pwrss(theta) / sigma^2 + m log(2 pi sigma^2).

    ``value``, ``gradient`` and ``hessian`` are those of the pieces (``theta_derivatives``):
    a = ldL2 (+ ldRX2 for REML) and pwrss; m = n - p for REML, n for ML.
    """
    k = gradient.shape[1]
    out = np.empty((k + 1, k + 1))
    out[:k, :k] = hessian[LOG_DETERMINANTS] + hessian[PWRSS] / sigma**2
    out[:k, k] = out[k, :k] = -2 * gradient[PWRSS] / sigma**3
    out[k, k] = 6 * value[PWRSS] / sigma**4 - 2 * n_residual / sigma**2
    return out


def pseudo_inverse(matrix: np.ndarray) -> np.ndarray:
    """Moore-Penrose inverse of a symmetric matrix over its eigenvalues above lmerTest's tolerance."""
    eigenvalues, vectors = np.linalg.eigh(matrix)
    kept = eigenvalues > EIGENVALUE_TOLERANCE
    return (vectors[:, kept] / eigenvalues[kept]) @ vectors[:, kept].T


def vcov_jacobian(value: np.ndarray, gradient: np.ndarray, sigma: float, p: int) -> np.ndarray:
    """d [sigma^2 inv(RX'RX)] / d (theta, sigma), (p, p, k + 1)."""
    k = gradient.shape[1]
    unscaled = value[UNSCALED_VCOV].reshape(p, p)
    jacobian = np.empty((p, p, k + 1))
    jacobian[:, :, :k] = sigma**2 * gradient[UNSCALED_VCOV].reshape(p, p, k)
    jacobian[:, :, k] = 2 * sigma * unscaled
    return jacobian


def satterthwaite(
    criterion: Criterion, theta: np.ndarray, sigma: float, levels: int = RICHARDSON_LEVELS
) -> Satterthwaite:
    """lmerTest's Hessian, vcov(varpar) and Jacobian of vcov(beta) at (theta, sigma)."""
    value, gradient, hessian = theta_derivatives(criterion, theta, levels)
    n_residual = criterion.n - criterion.p if criterion.reml else criterion.n
    full_hessian = varpar_hessian(value, gradient, hessian, sigma, n_residual)
    return Satterthwaite(
        vcov_beta=sigma**2 * value[UNSCALED_VCOV].reshape(criterion.p, criterion.p),
        jacobian=vcov_jacobian(value, gradient, sigma, criterion.p),
        hessian=full_hessian,
        vcov_varpar=2 * pseudo_inverse(full_hessian),
    )


# --------------------------------------------------------------------------- per fixed effect


def fixed_effect_tests(design: Design, fit: Estimates, criterion: Criterion | None = None) -> pd.DataFrame:
    """Per fixed effect: ``term``, Satterthwaite ``df``, ``p_value`` (two-sided t test on df) and
    ``p_value_z`` (two-sided Wald z test), rows in ``design.fixed_names`` order.

    Evaluated at the fit's own solution whichever path produced it (``Estimates.lme4_theta``), so a
    statsmodels fit is tested at its own optimum.
    ``criterion`` defaults to the fitting engine's (``engines.criterion_of_engine``). ``table.attrs["warnings"]``
    lists lmerTest's warnings about the deviance's Hessian.
    """
    theta = fit.lme4_theta()
    t = np.asarray(fit.beta) / np.sqrt(np.diag(fit.beta_cov))
    work = design_work(design)
    reason = skipped_reason(work, len(theta))
    if reason is not None:
        table = pd.DataFrame(
            {"term": design.fixed_names, "df": np.nan, "p_value": np.nan, "p_value_z": 2 * ndtr(-np.abs(t))}
        )
        table.attrs["warnings"] = [reason]
        return table
    criterion = criterion_of_engine(design, fit.reml, fit.engine) if criterion is None else criterion
    levels = richardson_levels(work, len(theta))
    result = satterthwaite(criterion, theta, float(np.sqrt(fit.sigma2)), levels)
    df = result.coefficient_df()
    table = pd.DataFrame(
        {
            "term": design.fixed_names,
            "df": df,
            "p_value": 2 * stdtr(df, -np.abs(t)),  # scipy.special: scipy.stats costs ~1 s to import
            "p_value_z": 2 * ndtr(-np.abs(t)),
        }
    )
    table.attrs["warnings"] = result.warnings()
    return table
