"""Direct dense evaluation of a linear mixed model, for checking the engines on small data.

Everything from the textbook definitions, n x n: Z and Lambda built column by column from the
design's level codes, V = I + Z Lambda Lambda' Z' (the marginal covariance over sigma^2),
beta by GLS, conditional modes E(b | y) = Lambda Lambda' Z' V^-1 (y - X beta) and conditional
variances sigma^2 Lambda (Lambda' Z' Z Lambda + I)^-1 Lambda'.
"""

from functools import cache

import numpy as np
import pandas as pd
from scipy.linalg import block_diag

from lmmflow.engine.parameters import theta_to_factors


def dense_z_lambda(design, theta):
    """Z and Lambda of the whole model, blocks in design order, columns level-major within a block."""
    zs, lambdas = [], []
    sizes = [block.n_effects for block in design.blocks]
    for block, T in zip(design.blocks, theta_to_factors(np.asarray(theta, float), sizes)):
        Z = np.zeros((design.n_obs, block.n_levels * block.n_effects))
        for r in range(block.n_effects):
            Z[np.arange(design.n_obs), block.level_codes * block.n_effects + r] = block.Z[:, r]
        zs.append(Z)
        lambdas.append(np.kron(np.eye(block.n_levels), T))
    return np.hstack(zs), block_diag(*lambdas)


def dense_fit(design, theta, reml=True):
    """deviance, beta, sigma2, per-block modes and conditional SDs at theta (beta, sigma profiled)."""
    Z, Lam = dense_z_lambda(design, theta)
    ZL = Z @ Lam
    V = np.eye(design.n_obs) + ZL @ ZL.T
    X, y = design.X, design.y
    n, p = X.shape
    Vi_X, Vi_y = np.linalg.solve(V, X), np.linalg.solve(V, y)
    F = X.T @ Vi_X
    beta = np.linalg.solve(F, X.T @ Vi_y)
    residual = y - X @ beta
    r2 = residual @ np.linalg.solve(V, residual)
    dof = n - p if reml else n
    deviance = np.linalg.slogdet(V)[1] + dof * (1 + np.log(2 * np.pi * r2 / dof))
    deviance += np.linalg.slogdet(F)[1] if reml else 0.0
    sigma2 = r2 / dof
    modes = Lam @ ZL.T @ np.linalg.solve(V, residual)
    A = ZL.T @ ZL + np.eye(ZL.shape[1])
    cond_var = sigma2 * np.diag(Lam @ np.linalg.solve(A, Lam.T))
    per_block, start = [], 0
    for block in design.blocks:
        width = block.n_levels * block.n_effects
        per_block.append((modes[start : start + width], np.sqrt(cond_var[start : start + width])))
        start += width
    return dict(
        deviance=deviance,
        beta=beta,
        sigma2=sigma2,
        beta_cov=sigma2 * np.linalg.inv(F),
        modes=[m.reshape(-1, b.n_effects) for (m, _), b in zip(per_block, design.blocks)],
        conditional_sds=[s.reshape(-1, b.n_effects) for (_, s), b in zip(per_block, design.blocks)],
    )


# Small crossed data: every shape the engine has a branch for.
SHAPES = {
    "crossed scalar": "y ~ x + (1 | g1) + (1 | g2)",
    "vector first factor": "y ~ x + (1 + x | g1) + (1 | g2)",
    "vector in the dense block, interaction first": "y ~ x + (1 + x | g2) + (1 | g1) + (1 | g1:f)",
    "double bar on both": "y ~ x + (x || g1) + (f || g2)",
}


@cache
def small_crossed_data() -> pd.DataFrame:
    """150 rows, g1 (12 levels) crossed with g2 (7), a slope x and a three-level factor f."""
    rng = np.random.default_rng(5)
    n = 150
    g1, g2 = rng.integers(0, 12, n), rng.integers(0, 7, n)
    x = rng.normal(size=n)
    f = rng.integers(0, 3, n)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, 12)[g1] + rng.normal(0, 0.4, 12)[g1] * x + rng.normal(0, 0.6, 7)[g2]
    y += 0.3 * f + rng.normal(0, 1.0, n)
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "g1": [f"a{k}" for k in g1],
            "g2": [f"b{k}" for k in g2],
            "f": pd.Categorical([f"f{k}" for k in f], categories=["f0", "f1", "f2"]),
        }
    )
