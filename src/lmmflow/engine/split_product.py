"""G H G' without enumerating pair products, for crossings too large for ``PairProduct``.

G = Z2'Z1 is the crosstab of the first grouping factor (its n1 q1 columns) against the other
random effects (Q2 rows); H = blockdiag_j(V_j'V_j) per first-factor level, V_j = L11_j^-1 Lambda1'.
With W = G blockdiag_j(V_j'), G H G' = W W': the sum over first-factor levels of rank-q1 updates.
On a MovieLens-shaped crossing (users first, 6,040 x 3,706 movies, 1M ratings) that sum has
~1.5e8 pair products per evaluation: too many to store (``PairProduct`` keeps each as a matrix
entry) and too scattered to add one by one from Python.

The rows (the other factors' random effects) are split by how many first-factor levels they meet:
the ``n_dense`` busiest ("dense" rows: a popular movie meets most users) and the rest ("sparse"
rows). W W' then has three parts:

- dense x dense: BLAS ``dsyrk`` on W's dense rows, densified a chunk of ``CHUNK_COLUMNS`` columns
  at a time (memory n_dense x CHUNK_COLUMNS, whatever the number of first-factor levels);
- sparse x dense and sparse x sparse: SciPy's sparse products (work = the pair products with at
  least one sparse row, few when the sparse rows are the rarely met ones).

``n_dense`` minimizes the estimated work (``choose_dense_rows``): n_dense^2 n1 q1 / 2 multiply-adds
in BLAS against the sparse pair products at ``SPARSE_COST`` times a BLAS multiply-add each.
Memory: the dense Q2 x Q2 result, and the sparse products' output a chunk of ``CHUNK_ROWS`` rows at a time.

``diagonal_blocks(P)`` gives K_j = G_j'P G_j for every level j (the gradient and the conditional
variances need it) with the same split: the dense x dense part through BLAS ``dsymm`` on chunks,
the others through sparse times dense products, read only at G's non-zeros.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.linalg import blas

# First-factor columns densified at once (n_dense x CHUNK_COLUMNS doubles: 24 MB at 1,500 rows).
CHUNK_COLUMNS = 2048
# Sparse rows multiplied at once (their products' output, dense and sparse, is CHUNK_ROWS x Q2: 85 MB
# each at MovieLens-10M's 10,677 movies, where the whole output would be 800 MB and 1.2 GB).
CHUNK_ROWS = 1024
# A sparse pair product costs about this many BLAS multiply-adds (SciPy's sparse products against
# OpenBLAS dsyrk on one thread, measured on the 1M MovieLens-shaped crossing of benchmarks/movielens.py
# on a busy machine: 1.1e8 sparse pairs took 2.1 s, 4.1e10 dsyrk multiply-adds 6.3 s).
SPARSE_COST = 120.0
# Candidates for n_dense: this many, spread evenly over 0..Q2.
DENSE_ROW_CANDIDATES = 64


def sparse_pairs_above(G: sparse.csc_matrix, rank: np.ndarray) -> np.ndarray:
    """For each k: the pair products of G H G' (lower triangle, per column) that involve a row of
    rank >= k (rank 0 the busiest row). Each non-zero is the higher-rank member of as many pairs as
    its position among its column's non-zeros in rank order (itself included)."""
    column = np.repeat(np.arange(G.shape[1]), np.diff(G.indptr))
    row_rank = rank[G.indices]
    order = np.lexsort((row_rank, column))
    starts = np.searchsorted(column[order], column[order], side="left")
    position = np.arange(len(order)) - starts + 1
    per_rank = np.bincount(row_rank[order], position.astype(float), minlength=G.shape[0])
    return np.concatenate([np.cumsum(per_rank[::-1])[::-1], [0.0]])


def choose_dense_rows(G: sparse.csc_matrix, rank: np.ndarray) -> int:
    """The number of busiest rows handled by BLAS that minimizes the estimated work (module docstring)."""
    q2, columns = G.shape
    candidates = np.unique(np.linspace(0, q2, DENSE_ROW_CANDIDATES + 1).astype(np.int64))
    sparse_work = sparse_pairs_above(G, rank)[candidates]
    work = candidates.astype(float) ** 2 * columns / 2 + SPARSE_COST * sparse_work
    return int(candidates[np.argmin(work)])


class SplitProduct:
    """W W' (W = G blockdiag_j(V_j')) and the diagonal blocks of G'P G, dense and sparse rows apart."""

    def __init__(self, G: sparse.csc_matrix, q: int, n_levels: int):
        self.q, self.n_levels, self.q2 = q, n_levels, G.shape[0]
        met = np.diff(G.tocsr().indptr)  # levels (columns) each row meets
        order = np.argsort(-met, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.G, self.order = G, order
        self.use_dense_rows(choose_dense_rows(G, rank))

    def use_dense_rows(self, n_dense: int) -> None:
        """Take the ``n_dense`` busiest rows as the dense ones. G's dense rows are kept by column and
        its sparse rows by row, with each non-zero's column: with scalar first-factor terms, W's
        parts are these with the values scaled, nothing rebuilt."""
        self.n_dense = n_dense
        self.dense_rows, self.sparse_rows = self.order[:n_dense], self.order[n_dense:]
        self.G_dense, self.G_sparse = self.G[self.dense_rows].tocsc(), self.G[self.sparse_rows].tocsr()
        self.dense_columns = np.repeat(np.arange(self.G.shape[1]), np.diff(self.G_dense.indptr))

    def weighted(self, V: np.ndarray) -> tuple[sparse.csc_matrix, sparse.csr_matrix]:
        """W = G blockdiag_j(V_j') for V (q, q, n_levels) with V_j = V[:, :, j]: its dense rows
        (by column) and its sparse rows (by row)."""
        dense, rest = self.G_dense, self.G_sparse
        if self.q == 1:
            v = V[0, 0]
            return (
                sparse.csc_matrix((dense.data * v[self.dense_columns], dense.indices, dense.indptr), dense.shape),
                sparse.csr_matrix((rest.data * v[rest.indices], rest.indices, rest.indptr), rest.shape),
            )
        blocks = sparse.block_diag([V[:, :, j].T for j in range(self.n_levels)], format="csr")
        return sparse.csc_matrix(dense @ blocks), sparse.csr_matrix(rest @ blocks)

    def outer(self, V: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = W W' (whole, symmetric), Q2 x Q2."""
        dense, rest = self.dense_rows, self.sparse_rows
        W_dense, W_sparse = self.weighted(V)
        block = np.zeros((len(dense), len(dense)), order="F")
        for start in range(0, W_dense.shape[1] if len(dense) else 0, CHUNK_COLUMNS):
            chunk = W_dense[:, start : start + CHUNK_COLUMNS].toarray(order="F")
            block = blas.dsyrk(1.0, chunk, beta=1.0, c=block, lower=1, overwrite_c=1)
        out[np.ix_(dense, dense)] = np.tril(block) + np.tril(block, -1).T
        W_dense_t, W_sparse_t = W_dense.T.tocsr(), W_sparse.T.tocsr()
        for start in range(0, len(rest), CHUNK_ROWS):  # the sparse rows' products a chunk at a time
            rows, chunk = rest[start : start + CHUNK_ROWS], W_sparse[start : start + CHUNK_ROWS]
            cross = (chunk @ W_dense_t).toarray()
            out[np.ix_(rows, dense)] = cross
            out[np.ix_(dense, rows)] = cross.T
            out[np.ix_(rows, rest)] = (chunk @ W_sparse_t).toarray()
        return out

    def diagonal_blocks(self, P: np.ndarray) -> np.ndarray:
        """K_j = G_j' P G_j for every level j, (n_levels, q, q), P symmetric and whole.

        A chunk of ``CHUNK_COLUMNS`` columns (whole levels) at a time: G_d'P_dd G_d by BLAS dsymm on
        the densified chunk; G_r'P_rd G_d (and its transpose) and G_r'P_rr G_r with the left factor
        times P as a sparse times dense product, read at the right factor's non-zeros.
        """
        dense, rest, q = self.dense_rows, self.sparse_rows, self.q
        n_columns = self.n_levels * q
        G_dense, G_rest = self.G_dense, self.G_sparse.tocsc()
        K = np.zeros((self.n_levels, q, q))
        P_dense = np.asfortranarray(P[np.ix_(dense, dense)])
        P_rest_dense, P_rest = P[np.ix_(rest, dense)], P[np.ix_(rest, rest)]
        step = max(CHUNK_COLUMNS // q, 1) * q  # whole levels per chunk
        for start in range(0, n_columns, step):
            columns, levels = slice(start, start + step), K[start // q : (start + step) // q]
            right_dense, right_rest = G_dense[:, columns], G_rest[:, columns]
            if len(dense):
                chunk = right_dense.toarray(order="F")
                _add_blocks(levels, chunk, blas.dsymm(1.0, P_dense, chunk, lower=1), q)
            if len(rest):
                _add_sparse(levels, (right_rest.T @ P_rest_dense).T, right_dense, q, both=True)
                _add_sparse(levels, (right_rest.T @ P_rest).T, right_rest, q, both=False)
        return K


def fill_upper(matrix: np.ndarray, step: int = CHUNK_ROWS) -> np.ndarray:
    """The upper triangle of a square ``matrix`` set from its lower one, in place, ``step`` rows at a
    time (no temporary of the matrix's size: 912 MB at MovieLens-10M's 10,677 movies)."""
    for start in range(0, len(matrix), step):
        stop = min(start + step, len(matrix))
        matrix[:start, start:stop] = matrix[start:stop, :start].T
        diagonal = matrix[start:stop, start:stop]
        matrix[start:stop, start:stop] = np.tril(diagonal) + np.tril(diagonal, -1).T
    return matrix


def _add_blocks(K: np.ndarray, chunk: np.ndarray, product: np.ndarray, q: int) -> None:
    """K_j += G_j'P G_j over the dense rows, for the levels (K's) of one chunk of whole levels' columns."""
    levels = chunk.shape[1] // q
    K += np.einsum("ijc,ijd->jcd", chunk.reshape(-1, levels, q), product.reshape(-1, levels, q))


def _add_sparse(K: np.ndarray, left: np.ndarray, right: sparse.csc_matrix, q: int, both: bool) -> None:
    """K_j[r, c] += sum_i left[i, j q + r] right[i, j q + c] over right's non-zeros (and the
    transpose too when ``both``): left is dense (rows of right) x (n_levels q), j K's levels."""
    column = np.repeat(np.arange(right.shape[1]), np.diff(right.indptr))
    level, effect = np.divmod(column, q)
    for r in range(q):
        values = left[right.indices, level * q + r] * right.data
        flat = (level * q + r) * q + effect
        add = np.bincount(flat, values, minlength=K.size).reshape(K.shape)
        K += add
        if both:
            K += add.transpose(0, 2, 1)
