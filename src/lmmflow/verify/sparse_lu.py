"""An independent evaluation of lme4's profiled (RE)ML criterion: one sparse LU of the whole system.

It verifies fits that neither statsmodels (which cannot express crossed factors) nor the other
engine can re-evaluate. Nothing is shared with the engines beyond the design: Z Lambda is built
straight from each term's level codes as one sparse n x q matrix (no amalgamation of terms, no
factor ordering, no pair products), A = Lambda'Z'Z Lambda + I is factorized by SuperLU
(``scipy.sparse.linalg.splu``, minimum-degree ordering of A' + A, diagonal pivots), and
F = [X y]'[X y] - B'A^-1 B with B = Lambda'Z'[X y] gives log|RX|^2 and the penalized residual
sum of squares r2 (Bates et al. 2015, eq. 16-18).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from lmmflow.engine.criterion import LOG_2PI
from lmmflow.engine.parameters import theta_to_factors
from lmmflow.model.design import Design


def z_lambda(design: Design, theta: np.ndarray) -> sparse.csc_matrix:
    """Z Lambda: for each term, its columns (level-major, then effect) times the term's factor."""
    parts = []
    sizes = [block.n_effects for block in design.blocks]
    for block, T in zip(design.blocks, theta_to_factors(np.asarray(theta, float), sizes)):
        q = block.n_effects
        rows = np.repeat(np.arange(design.n_obs), q)
        cols = (np.asarray(block.level_codes)[:, None] * q + np.arange(q)).ravel()
        Z = sparse.csr_matrix(
            (np.asarray(block.Z, float).ravel(), (rows, cols)), shape=(design.n_obs, block.n_levels * q)
        )
        parts.append(Z @ sparse.kron(sparse.identity(block.n_levels), sparse.csr_matrix(T)))
    return sparse.hstack(parts, format="csc")


def sparse_lu_deviance(design: Design, theta: np.ndarray, reml: bool = True) -> float:
    """Profiled REML (or ML) deviance at theta, -2 logLik with beta and sigma profiled out; an
    offset and prior weights as lme4 takes them (the whitened design's deviance less sum(log w))."""
    log_weight_sum, design = design.log_weight_sum, design.whitened()
    ZL = z_lambda(design, theta)
    A = (ZL.T @ ZL + sparse.identity(ZL.shape[1])).tocsc()
    XY = np.column_stack([design.X, design.y])
    B = ZL.T @ XY
    lu = sparse_linalg.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    logdet_A = float(np.log(np.abs(lu.U.diagonal())).sum())  # A is SPD: |det| = det
    F = XY.T @ XY - B.T @ lu.solve(B)
    R = np.linalg.cholesky(F)
    n, p = design.X.shape
    dof = n - p if reml else n
    deviance = logdet_A + dof * (1.0 + LOG_2PI + np.log(R[p, p] ** 2 / dof))
    return float(deviance + (2.0 * np.log(np.diag(R)[:p]).sum() if reml else 0.0)) - log_weight_sum
