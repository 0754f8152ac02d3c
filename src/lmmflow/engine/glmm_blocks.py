"""The blocked Cholesky factor of A = Lambda'Z'WZ Lambda + I for a GLMM and what the exact
gradient of the Laplace deviance needs from its inverse.

The idea of ``lmmflow.engine.blocked`` (MixedModels.jl's blocked factor): the first term (lme4's order:
most levels) has a block-diagonal A11 (one q1 x q1 block per level), eliminated level by level;
the other terms form one dense Schur complement S = A22 - L21 L21'. W only rescales the rows of
M = Z Lambda, so the sparsity pattern of every block is fixed: it is computed once here and
each factorization is a handful of ``bincount``s, a sparse product and one small dense Cholesky.

Rows of M: ``M1`` (n x q1) in the first term's slots ``codes1 * q1 + k``; ``vals2`` (n x r2) at
the columns ``cols2`` of the second block (m2 random effects of the other terms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

from lmmflow.engine.parameters import block_theta_size, theta_to_factors
from lmmflow.model.design import Design


class BlockedStructure:
    """Fixed index structure of Z for the blocked factor; ``rows(theta)`` gives M = Z Lambda."""

    def __init__(self, design: Design):
        blocks = design.blocks
        self.n = design.n_obs
        self.sizes = [b.n_effects for b in blocks]
        self.n_levels = [b.n_levels for b in blocks]
        self.blocks = blocks
        self.offsets = np.cumsum([0] + [b.n_effects * b.n_levels for b in blocks])
        self.q = int(self.offsets[-1])
        first = blocks[0]
        self.q1, self.n1 = first.n_effects, first.n_levels
        self.n1q1 = self.q1 * self.n1
        self.codes1 = first.level_codes
        self.idx1 = (self.codes1[:, None] * self.q1 + np.arange(self.q1)).astype(np.int64)
        cols, starts, off2 = [], [0], 0
        for b in blocks[1:]:
            cols.append(off2 + b.level_codes[:, None] * b.n_effects + np.arange(b.n_effects))
            off2 += b.n_effects * b.n_levels
            starts.append(starts[-1] + b.n_effects)
        self.m2 = off2
        self.r2 = starts[-1]
        self.starts2 = starts  # column of vals2 where term b (b >= 1) starts
        self.cols2 = np.hstack(cols).astype(np.int64) if cols else np.zeros((self.n, 0), np.int64)
        if self.m2:
            self.idx22 = (self.cols2[:, :, None] * self.m2 + self.cols2[:, None, :]).ravel()
            keys = (self.cols2 * self.n1 + self.codes1[:, None]).ravel()
            unique, inverse = np.unique(keys, return_inverse=True)
            self.pair_index = inverse.reshape(self.n, self.r2)
            self.pair_rows = unique // self.n1
            self.pair_levels = unique % self.n1
            self.npairs = len(unique)
            # CSR pattern of L21 (m2 x n1 q1): pairs are sorted by row then level, each with q1 entries
            self.l21_indptr = np.concatenate([[0], np.cumsum(np.bincount(self.pair_rows, minlength=self.m2) * self.q1)])
            self.l21_indices = (self.pair_levels[:, None] * self.q1 + np.arange(self.q1)).ravel()
            self.gather21 = self.cols2[:, :, None] * self.n1q1 + self.idx1[:, None, :]  # n x r2 x q1
            self.l21_flat = np.repeat(np.arange(self.m2), np.diff(self.l21_indptr)) * self.n1q1 + self.l21_indices
            # L21 L21' dense (BLAS) when that costs less than ~50 sparse products per non-zero
            self.dense_l21 = self.m2 * self.m2 * self.n1q1 <= 50 * self.npairs * self.q1 * max(1, self.m2 // 8)
        self.theta_size = sum(block_theta_size(q) for q in self.sizes)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        return theta_to_factors(theta, self.sizes)

    def rows(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """M = Z Lambda by rows: (M1, vals2)."""
        T = self.factors(theta)
        M1 = self.blocks[0].Z @ T[0]
        if self.m2:
            vals2 = np.hstack([b.Z @ Tb for b, Tb in zip(self.blocks[1:], T[1:])])
        else:
            vals2 = np.zeros((self.n, 0))
        return M1, vals2

    # ---------------------------------------------------------------- products with M
    def times(self, M1, vals2, u):
        """M u (u of length q, or q x P)."""
        u1 = u[: self.n1q1]
        if self.q1 == 1 and u.ndim == 1:
            out = M1[:, 0] * u1[self.codes1]
        else:
            out = np.einsum("ik,ik...->i...", M1, u1[self.idx1])
        if self.m2:
            u2 = u[self.n1q1 :]
            if self.r2 == 1 and u.ndim == 1:
                out = out + vals2[:, 0] * u2[self.cols2[:, 0]]
            else:
                out = out + np.einsum("ia,ia...->i...", vals2, u2[self.cols2])
        return out

    def transpose_times(self, M1, vals2, v):
        """M' v for an n-vector v."""
        out = np.empty(self.q)
        if self.q1 == 1:
            out[: self.n1q1] = np.bincount(self.codes1, M1[:, 0] * v, self.n1q1)
        else:
            out[: self.n1q1] = np.bincount(self.idx1.ravel(), (M1 * v[:, None]).ravel(), self.n1q1)
        if self.m2:
            if self.r2 == 1:
                out[self.n1q1 :] = np.bincount(self.cols2[:, 0], vals2[:, 0] * v, self.m2)
            else:
                out[self.n1q1 :] = np.bincount(self.cols2.ravel(), (vals2 * v[:, None]).ravel(), self.m2)
        return out

    def sparse_transpose(self, M1, vals2) -> sparse.csr_matrix:
        """M' as a sparse q x n matrix (for products with many vectors at once)."""
        rows = np.hstack([self.idx1, self.n1q1 + self.cols2]) if self.m2 else self.idx1
        data = np.hstack([M1, vals2]) if self.m2 else M1
        cols = np.repeat(np.arange(self.n), rows.shape[1])
        return sparse.csr_matrix((data.ravel(), (rows.ravel(), cols)), shape=(self.q, self.n))

    def factor(self, M1, vals2, w) -> BlockedFactor:
        """The blocked Cholesky factor of I + M' diag(w) M."""
        q1, n1 = self.q1, self.n1
        if q1 == 1:
            a11 = np.bincount(self.codes1, w * M1[:, 0] ** 2, n1) + 1.0
            L11 = np.sqrt(a11)
            L11inv = None
        else:
            A11 = np.zeros((n1, q1, q1))
            for k in range(q1):
                for j in range(k + 1):
                    v = np.bincount(self.codes1, w * M1[:, k] * M1[:, j], n1)
                    A11[:, k, j] = v
                    A11[:, j, k] = v
            A11[:, np.arange(q1), np.arange(q1)] += 1.0
            L11 = np.linalg.cholesky(A11)
            L11inv = np.linalg.inv(L11)
        logdet = 2.0 * np.sum(np.log(L11)) if q1 == 1 else 2.0 * np.sum(np.log(np.diagonal(L11, axis1=1, axis2=2)))
        if not self.m2:
            return BlockedFactor(L11, L11inv, None, None, None, logdet)
        wv = w[:, None] * vals2
        if q1 == 1:
            a21 = np.bincount(self.pair_index.ravel(), (wv * M1[:, 0, None]).ravel(), self.npairs)
            l21 = (a21 / L11[self.pair_levels])[:, None]
        else:
            a21 = np.empty((self.npairs, q1))
            for k in range(q1):
                a21[:, k] = np.bincount(self.pair_index.ravel(), (wv * M1[:, k, None]).ravel(), self.npairs)
            l21 = np.einsum("pk,pjk->pj", a21, L11inv[self.pair_levels])
        if self.dense_l21:
            L21 = np.zeros(self.m2 * self.n1q1)
            L21[self.l21_flat] = l21.ravel()
            L21 = L21.reshape(self.m2, self.n1q1)
        else:
            L21 = sparse.csr_matrix((l21.ravel(), self.l21_indices, self.l21_indptr), shape=(self.m2, self.n1q1))
        m2 = self.m2
        A22 = np.bincount(self.idx22, (wv[:, :, None] * vals2[:, None, :]).ravel(), m2 * m2).reshape(m2, m2)
        A22[np.diag_indices(m2)] += 1.0
        if self.dense_l21:
            S = A22 - L21 @ L21.T
        else:
            S = A22 - (L21 @ L21.T).toarray()
        L22 = linalg.cholesky(S, lower=True, check_finite=False)
        logdet += 2.0 * np.sum(np.log(np.diag(L22)))
        return BlockedFactor(L11, L11inv, L21, l21, L22, logdet)

    # ---------------------------------------------------------------- solves
    def solve(self, F: BlockedFactor, b: np.ndarray) -> np.ndarray:
        """A^-1 b for b of length q or q x P."""
        q1, n1 = self.q1, self.n1
        matrix = b.ndim == 2
        P = b.shape[1] if matrix else 1
        b1 = b[: self.n1q1].reshape(n1, q1, P)
        if q1 == 1:
            y1 = b1 / F.L11[:, None, None]
        else:
            y1 = np.einsum("lij,ljp->lip", F.L11inv, b1)
        if self.m2:
            b2 = b[self.n1q1 :].reshape(self.m2, P)
            y2 = linalg.solve_triangular(F.L22, b2 - F.L21 @ y1.reshape(self.n1q1, P), lower=True, check_finite=False)
            x2 = linalg.solve_triangular(F.L22, y2, lower=True, trans="T", check_finite=False)
            y1 = y1 - (F.L21.T @ x2).reshape(n1, q1, P)
        x1 = y1 / F.L11[:, None, None] if q1 == 1 else np.einsum("lji,ljp->lip", F.L11inv, y1)
        x = np.concatenate([x1.reshape(self.n1q1, P)] + ([x2] if self.m2 else []), axis=0)
        return x if matrix else x[:, 0]

    def inverse_parts(self, F: BlockedFactor) -> InverseParts:
        """Diagonal blocks of A^-1 for the first term, and its other blocks (dense)."""
        q1, n1 = self.q1, self.n1
        if q1 == 1:
            Linv = (1.0 / F.L11)[:, None, None]
        else:
            Linv = F.L11inv
        A11 = np.einsum("lki,lkj->lij", Linv, Linv)
        if not self.m2:
            return InverseParts(A11, None, None)
        Q = linalg.solve_triangular(F.L22, np.eye(self.m2), lower=True, check_finite=False)
        A22 = Q.T @ Q
        if q1 == 1:
            c = F.l21 / F.L11[self.pair_levels][:, None]
        else:
            c = np.einsum("pk,pkj->pj", F.l21, F.L11inv[self.pair_levels])
        if self.dense_l21:
            C = np.zeros(self.m2 * self.n1q1)
            C[self.l21_flat] = c.ravel()
            A21 = -(A22 @ C.reshape(self.m2, self.n1q1))
        else:
            C = sparse.csr_matrix((c.ravel(), self.l21_indices, self.l21_indptr), shape=(self.m2, self.n1q1))
            A21 = -np.asarray((C.T @ A22).T)
        G = A21[self.pair_rows[:, None], self.pair_levels[:, None] * q1 + np.arange(q1)]  # npairs x q1
        outer = c[:, :, None] * G[:, None, :]
        add = np.zeros((n1, q1, q1))
        for k in range(q1):
            for j in range(q1):
                add[:, k, j] = np.bincount(self.pair_levels, outer[:, k, j], n1)
        A11 = A11 - add
        return InverseParts(A11, A21, A22)

    def gathered(self, inv: InverseParts) -> tuple:
        """Per-row gathers of A^-1 for ``bilinear``."""
        G11 = inv.A11[self.codes1]
        if not self.m2:
            return G11, None, None
        G21 = inv.A21.ravel()[self.gather21]  # n x r2 x q1
        G22 = inv.A22.ravel()[self.idx22].reshape(self.n, self.r2, self.r2)
        return G11, G21, G22

    def bilinear(self, gath, x1, x2, y1, y2):
        """Per row i: x_i' A^-1 y_i for rows with M's structure (x1, y1: n x q1; x2, y2: n x r2)."""
        G11, G21, G22 = gath
        if self.q1 == 1:
            a, b = x1[:, 0], y1[:, 0]
            out = a * G11[:, 0, 0] * b
            if self.m2:
                g = G21[:, :, 0]
                out += np.sum(x2 * g, axis=1) * b + np.sum(y2 * g, axis=1) * a
                out += np.einsum("ia,iac,ic->i", x2, G22, y2) if self.r2 > 1 else x2[:, 0] * G22[:, 0, 0] * y2[:, 0]
            return out
        out = np.einsum("ik,ikj,ij->i", x1, G11, y1)
        if self.m2:
            out += np.einsum("ia,iak,ik->i", x2, G21, y1)
            out += np.einsum("ia,iak,ik->i", y2, G21, x1)
            out += np.einsum("ia,iac,ic->i", x2, G22, y2)
        return out


@dataclass
class BlockedFactor:
    L11: np.ndarray  # n1 (q1 = 1) or n1 x q1 x q1
    L11inv: np.ndarray | None
    L21: sparse.csr_matrix | None
    l21: np.ndarray | None
    L22: np.ndarray | None
    logdet: float  # log det(A) = log det(L)^2


@dataclass
class InverseParts:
    A11: np.ndarray  # n1 x q1 x q1 diagonal blocks
    A21: np.ndarray | None  # m2 x n1 q1
    A22: np.ndarray | None  # m2 x m2
