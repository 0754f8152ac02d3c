"""Linear algebra on stacks of small matrices stored "groups-last" (lmmflow.engine.groups_last's layout).

Every array has the group index as its final, contiguous axis; the loops run over the d matrix
positions (d is small) instead of over the groups, so each step is one vector operation over
all groups.
"""

from __future__ import annotations

import numpy as np

# Local dimension up to which the groups-last Cholesky loop beats per-group LAPACK calls.
LOOP_CHOLESKY_MAX = 12


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a (d, d, G) stack of SPD matrices, looping over d not over G."""
    d = A.shape[0]
    if d > LOOP_CHOLESKY_MAX:  # the O(d^3) Python-level loop would cost more than LAPACK per group
        return np.moveaxis(np.linalg.cholesky(np.moveaxis(A, 2, 0)), 0, 2).copy()
    L = np.zeros_like(A)
    for j in range(d):
        diag = A[j, j].copy()
        for k in range(j):
            diag -= L[j, k] * L[j, k]
        L[j, j] = np.sqrt(diag)
        for i in range(j + 1, d):
            below = A[i, j].copy()
            for k in range(j):
                below -= L[i, k] * L[j, k]
            L[i, j] = below / L[j, j]
    return L


def forward_substitute(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L W = B for (d, d, G) lower factors and (d, c, G) right-hand sides (or (d, c))."""
    d, G = L.shape[0], L.shape[2]
    if B.ndim == 2:  # the same right-hand side for every group
        B = np.broadcast_to(B[:, :, None], B.shape + (G,))
    W = np.empty(B.shape)
    for i in range(d):
        rhs = B[i].copy()
        for k in range(i):
            rhs -= L[i, k] * W[k]
        W[i] = rhs / L[i, i]
    return W


def backward_substitute_transposed(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L' u = B for (d, d, G) lower factors and (d, G) right-hand sides."""
    d = L.shape[0]
    u = np.empty_like(B)
    for i in reversed(range(d)):
        rhs = B[i].copy()
        for k in range(i + 1, d):
            rhs -= L[k, i] * u[k]
        u[i] = rhs / L[i, i]
    return u


def lambda_transpose_times(lam: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Lambda' S for a (d, ...) stack S, one axpy per non-zero of the (block-diagonal) Lambda.

    Not a gemm: with its inner dimension d tiny, multithreaded OpenBLAS ran this 10-40x slower
    than single-threaded when other processes shared the cores; axpys are predictable.
    """
    out = np.zeros_like(stats)
    scratch = np.empty_like(stats[0])
    for row, col in zip(*np.nonzero(lam)):
        np.multiply(stats[row], lam[row, col], out=scratch)
        out[col] += scratch
    return out
