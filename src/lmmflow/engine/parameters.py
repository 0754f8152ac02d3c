"""lme4's scales for the variance parameters and the conversions between them (lme4's R/vcconv.R).

Per random-effects block (term) of q effects:

* theta: the q(q+1)/2 entries of the lower-triangular relative Cholesky factor T, column-major
  (lme4's ``getME(fit, "theta")``); the diagonal is bounded below by 0, the rest is free;
* covariance: the absolute (q x q) covariance sigma^2 T T' of the block's random effects;
* sdcor: the block's SDs and correlations, lower triangle column-major (SDs on the diagonal,
  correlations below it), lme4's profile and bootstrap scale (``Cv_to_Sv``), then sigma.

A zero SD leaves its correlations undefined: they are NaN, as in lme4 (``VarCorr`` divides
0 by 0; ``cov2sdcor`` calls R's ``cov2cor``, which does the same). Every correlation in lmmflow
comes from ``correlation_matrix``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for annotations: readers of a fit's solution need not load the design code
    from lmmflow.model.design import Design


def block_theta_size(q: int) -> int:
    return q * (q + 1) // 2


@cache
def lower_triangle_indices(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each theta entry of a q x q factor, column-major as lme4 orders them.

    Cached (profiles convert thousands of times): callers must not modify the arrays.
    """
    cols, rows = np.triu_indices(q)  # upper triangle row-major == lower triangle column-major, swapped
    return rows, cols


def theta_lower_bounds(sizes: list[int]) -> np.ndarray:
    """Diagonal entries of the factors are >= 0, off-diagonal ones unbounded (as in lme4)."""
    bounds = []
    for q in sizes:
        rows, cols = lower_triangle_indices(q)
        bounds.append(np.where(rows == cols, 0.0, -np.inf))
    return np.concatenate(bounds) if bounds else np.zeros(0)


def default_start(sizes: list[int]) -> np.ndarray:
    """lme4's starting value: identity factors (diagonal 1, off-diagonal 0)."""
    return np.where(np.isfinite(theta_lower_bounds(sizes)), 1.0, 0.0)


def theta_to_factors(theta: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Relative Cholesky factors T_b (lower triangular) of each block from lme4's theta vector."""
    factors, start = [], 0
    for q in sizes:
        rows, cols = lower_triangle_indices(q)
        T = np.zeros((q, q))
        T[rows, cols] = theta[start : start + block_theta_size(q)]
        factors.append(T)
        start += block_theta_size(q)
    return factors


def theta_to_covariances(theta: np.ndarray, sizes: list[int], sigma2: float) -> list[np.ndarray]:
    """Absolute covariance sigma2 T_b T_b' of each block's random effects."""
    return [sigma2 * T @ T.T for T in theta_to_factors(np.asarray(theta, float), sizes)]


def safe_cholesky(matrix: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor tolerating positive semi-definite input (lme4's safe_chol)."""
    q = len(matrix)
    lower = np.zeros_like(matrix)
    for j in range(q):
        pivot = matrix[j, j] - lower[j, :j] @ lower[j, :j]
        lower[j, j] = np.sqrt(max(pivot, 0.0))
        for i in range(j + 1, q):
            off = matrix[i, j] - lower[i, :j] @ lower[j, :j]
            lower[i, j] = off / lower[j, j] if lower[j, j] > 0 else 0.0
    return lower


def covariances_to_theta(covariances: list[np.ndarray], sigma2: float) -> np.ndarray:
    """lme4's theta of absolute block covariances: the inverse of ``theta_to_covariances``."""
    parts = []
    for cov in covariances:
        rows, cols = lower_triangle_indices(len(cov))
        parts.append(safe_cholesky(cov / sigma2)[rows, cols])
    return np.concatenate(parts) if parts else np.zeros(0)


def standard_deviations(cov: np.ndarray) -> np.ndarray:
    """SDs of a covariance matrix (a rounding-negative variance counts as 0)."""
    return np.sqrt(np.maximum(np.diag(cov), 0.0))


def correlation_matrix(cov: np.ndarray) -> np.ndarray:
    """cov[i, j] / (sd_i sd_j); NaN where an SD is zero (undefined, as lme4 leaves it).

    The diagonal is left as computed (1, or NaN for a zero SD); callers read off-diagonal entries.
    """
    sd = standard_deviations(cov)
    scale = np.outer(sd, sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, cov / scale, np.nan)


def cov_to_sdcor(cov: np.ndarray) -> np.ndarray:
    """lme4's ``cov2sdcor``, lower triangle column-major: SDs on the diagonal, correlations below."""
    rows, cols = lower_triangle_indices(len(cov))
    sdcor = correlation_matrix(cov)
    sdcor[np.diag_indices(len(cov))] = standard_deviations(cov)
    return sdcor[rows, cols]


def theta_to_sdcor(theta: np.ndarray, sizes: list[int], sigma: float) -> np.ndarray:
    """lme4's ``Cv_to_Sv(theta, s = sigma)``: absolute SDs and correlations of every term, then sigma."""
    parts = [cov_to_sdcor(cov) for cov in theta_to_covariances(theta, sizes, sigma**2)]
    return np.concatenate(parts + [np.array([sigma])])


def sdcor_to_theta(pars: np.ndarray, sizes: list[int]) -> np.ndarray:
    """lme4's ``Sv_to_Cv(pars, s = sigma)``; ``pars`` ends with sigma."""
    sigma, theta, start = pars[-1], [], 0
    for q in sizes:
        rows, cols = lower_triangle_indices(q)
        block = pars[start : start + len(rows)]
        start += len(rows)
        if q == 1:
            theta.append(block / sigma)
            continue
        lower = np.zeros((q, q))
        lower[rows, cols] = block
        sd = np.diag(lower).copy()
        corr = lower + lower.T
        corr[np.diag_indices(q)] = 1.0
        relative = corr * np.outer(sd, sd) / sigma**2
        try:
            T = np.linalg.cholesky(relative)
        except np.linalg.LinAlgError:
            T = safe_cholesky(relative)
        theta.append(T[rows, cols])
    return np.concatenate(theta) if theta else np.zeros(0)


def sdcor_bounds(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits on the sdcor scale: SD in [0, inf), correlation in [-1, 1], sigma > 0."""
    is_sd = np.isfinite(theta_lower_bounds(sizes))
    lower = np.concatenate([np.where(is_sd, 0.0, -1.0), [0.0]])
    upper = np.concatenate([np.where(is_sd, np.inf, 1.0), [np.inf]])
    return lower, upper


# --------------------------------------------------------------------------- lme4's named parameter vector


def _lme4_effect(name: str) -> str:
    """The design names the intercept ``Intercept``; lme4's parameter names say ``(Intercept)``."""
    return "(Intercept)" if name == "Intercept" else name


def variance_parameter_names(design: Design) -> list[str]:
    """lme4's ``profnames(signames = FALSE)``: per term sd_/cor_ entries (lower triangle,
    column-major, named by the term's grouping factor), then ``sigma``."""
    names = []
    for block in design.blocks:
        effects = [_lme4_effect(e) for e in block.effects]
        rows, cols = lower_triangle_indices(len(effects))
        for i, j in zip(rows, cols):
            if i == j:
                names.append(f"sd_{effects[i]}|{block.group_var}")
            else:
                names.append(f"cor_{effects[i]}.{effects[j]}|{block.group_var}")
    return names + ["sigma"]


def parameter_names(design: Design) -> list[str]:
    """Names of ``parameter_values``: the variance parameters, then the fixed effects."""
    return variance_parameter_names(design) + [_lme4_effect(e) for e in design.fixed_names]


def parameter_values(covariances: list[np.ndarray], sigma2: float, beta: np.ndarray) -> np.ndarray:
    """Every block's sdcor entries, sigma, then beta: lme4's profile/bootstrap scale
    (``bootFun`` of ``confint.merMod``)."""
    values = [cov_to_sdcor(cov) for cov in covariances] + [np.array([np.sqrt(sigma2)]), beta]
    return np.concatenate(values)
