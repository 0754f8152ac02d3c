"""A start and a scaling for the blocked engine's optimizer when every grouping factor has one scalar term.

Both come from sums over the rows and levels, no factorization: ``moment_start`` approximates the
REML variance ratios by backfitting, and ``curvature_scales`` estimates the deviance's second
derivative in each theta entry, so that an optimizer with the analytic gradient (L-BFGS-B in
theta times these scales) meets a nearly isotropic problem from a nearby start. On InstEval
(``y ~ service + (1 | s) + (1 | d) + (1 | dept)``) the start is theta = 0.276, 0.434, 0.092 against
lme4's 0.276, 0.437, 0.071 (0.9 deviance units above the optimum), and the scales at it are 244,
132, 79 against the 238, 129, 65 of finite differences of the gradient at the optimum.

``model`` is a ``lmmflow.engine.blocked.BlockedCriterion`` (its factors, [X y'] with y' = y minus its OLS
fit, n, p and the blocks' sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmflow.engine.blas import single_thread
from lmmflow.engine.parameters import default_start

# Sweeps of ``moment_start`` at most, and the relative change of every theta entry that stops them sooner.
MOMENT_SWEEPS, MOMENT_TOLERANCE = 6, 0.02
# ``curvature_scales`` keeps every scale within this factor of the largest (an entry at or near
# zero has a vanishing estimate, not a vanishing curvature).
MIN_RELATIVE_SCALE = 1e-2


def all_scalar(model) -> bool:
    """Whether every grouping factor has exactly one scalar term (q = 1)."""
    return all(factor.q == 1 for factor in model.factors)


@dataclass(frozen=True)
class Column:
    """One random-effect column of a factor, taken as a scalar factor of its own: its level codes,
    model column ``z`` and the theta entry of its diagonal in Lambda."""

    codes: np.ndarray
    n_levels: int
    z: np.ndarray
    theta_index: int


def scalar_columns(model) -> list[Column]:
    """Every factor's columns in factor order (for an all-scalar design, one per factor)."""
    columns = []
    for factor in model.factors:
        for r in range(factor.q):
            entry = np.flatnonzero((factor.lambda_rows == r) & (factor.lambda_cols == r))[0]
            columns.append(Column(factor.codes, factor.n_levels, factor.Z[:, r], int(factor.lambda_theta[entry])))
    return columns


def _level_weights(column: Column) -> np.ndarray:
    """z'z per level of a column."""
    return np.bincount(column.codes, column.z**2, minlength=column.n_levels)


def _theta_of(model, columns: list[Column], values: np.ndarray) -> np.ndarray:
    """lme4's theta with ``values`` on the given columns' diagonal entries (lme4's start elsewhere)."""
    theta = default_start(model.sizes)
    for column, value in zip(columns, values):
        theta[column.theta_index] = value
    return theta


@single_thread()  # r'r on a multithreaded BLAS is ~100x slower on a busy machine than on one thread
def moment_start(model) -> np.ndarray:
    """Approximate REML estimate of theta's diagonal, every column of Lambda taken as a scalar factor
    (``scalar_columns``; off-diagonal entries 0, as lme4's start).

    Backfitting from lme4's start (variance ratios sigma_k^2 / sigma^2 = 1): each sweep updates
    the conditional modes b_k of one factor after another given the others (Gauss-Seidel, the
    factor with the fewest levels first), then each ratio by MacKay's fixed point
    sigma_k^2 = b_k'b_k / gamma_k, with gamma_k = sum_l w_l the factor's effective number of
    parameters, w_l = z_l'z_l / (z_l'z_l + sigma^2 / sigma_k^2), and sigma^2 = r'r / (n - p -
    sum_k gamma_k). Each sweep is a few passes over the rows. Taking the other factors' modes as
    known biases a coarse factor in which a finer one nests (InstEval's dept) toward zero as the
    sweeps go on, so this is a start only. Falls back to lme4's start if anything is not finite.
    """
    factors = sorted(scalar_columns(model), key=lambda column: column.n_levels)
    z = [factor.z for factor in factors]
    zz = [_level_weights(factor) for factor in factors]
    modes = [np.zeros(factor.n_levels) for factor in factors]
    residual = model.XY[:, -1].copy()
    ratios = np.ones(len(factors))
    for _ in range(MOMENT_SWEEPS):
        gamma = np.empty(len(factors))
        for k, (factor, zk) in enumerate(zip(factors, z)):
            shrunk = zz[k] + 1.0 / ratios[k]  # b_k = z'(residual + z b_k) / shrunk, per level
            updated = (np.bincount(factor.codes, zk * residual, minlength=factor.n_levels) + zz[k] * modes[k]) / shrunk
            residual -= zk * (updated - modes[k])[factor.codes]
            modes[k], gamma[k] = updated, (zz[k] / shrunk).sum()
        sigma2 = residual @ residual / max(model.n - model.p - gamma.sum(), 1.0)
        updated = np.maximum([b @ b / max(g, 1e-12) / sigma2 for b, g in zip(modes, gamma)], 1e-8)
        done = np.all(np.abs(np.sqrt(updated / ratios) - 1.0) < MOMENT_TOLERANCE)
        ratios = updated
        if done:
            break
    if not np.all(np.isfinite(ratios)):
        return default_start(model.sizes)
    return _theta_of(model, factors, np.sqrt(ratios))


def curvature_scales(model, theta: np.ndarray) -> np.ndarray:
    """Square roots of the deviance's second derivatives in each theta entry, estimated: each
    diagonal entry as the scalar factor of its column (``scalar_columns``), each off-diagonal entry
    (r, c) with its row's diagonal entry's scale.

    For one scalar factor alone, the information on log(sigma_k^2 / sigma^2) is about
    sum_l w_l^2 / 2, w_l = z_l'z_l theta_k^2 / (1 + z_l'z_l theta_k^2) the shrinkage of level l's
    mode toward its data; the deviance's second derivative in theta_k is then about
    4 sum_l w_l^2 / theta_k^2. Floored at ``MIN_RELATIVE_SCALE`` times the largest.
    """
    theta = np.asarray(theta, float)
    columns = scalar_columns(model)
    values = np.zeros(len(columns))
    for k, column in enumerate(columns):
        t = abs(theta[column.theta_index])
        if t > 0:
            w = _level_weights(column) * t * t
            w /= 1.0 + w
            values[k] = 2.0 * np.sqrt(w @ w) / t
    values = np.maximum(values, MIN_RELATIVE_SCALE * values.max()) if values.max() > 0 else np.ones_like(values)
    scales = _theta_of(model, columns, values)
    for factor in model.factors:  # off-diagonal entries: their row's diagonal scale
        for row, col, entry in zip(factor.lambda_rows, factor.lambda_cols, factor.lambda_theta):
            if row != col:
                diagonal = factor.lambda_theta[(factor.lambda_rows == row) & (factor.lambda_cols == row)][0]
                scales[entry] = scales[diagonal]
    return scales
