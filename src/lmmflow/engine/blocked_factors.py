"""The grouping factors of a design as the blocked Cholesky engine (``lmmflow.engine.blocked``) sees them.

The terms on one grouping factor are amalgamated into one ``Factor`` of q effects per level with
a block-diagonal Lambda (as MixedModels.jl does), the factor with the most random effects first.
Everything here depends on the data's sparsity pattern only, never on theta: it is built once
per design. ``PairProduct`` turns G H G' (G = Z2'Z1, a crosstab of the first factor against the
others; H block diagonal per first-factor level) into one fixed sparse matrix times vec(H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from lmmflow.engine.parameters import block_theta_size, lower_triangle_indices
from lmmflow.model.design import Design

# Largest pair product (entries; ~12 bytes each, ~40 while it is built).
PAIR_PRODUCT_MAX_ENTRIES = 2.5e7


class DesignTooLarge(ValueError):
    """A design whose dense block or pair product would not fit in memory; the message says which."""


# --------------------------------------------------------------------------- factors


@dataclass(frozen=True)
class Factor:
    """The terms on one grouping factor, amalgamated: q effects per level, Lambda block diagonal.

    ``Z`` (n x q) holds the terms' model columns side by side, ``codes`` each row's level;
    ``blocks`` are the indices of its terms in ``Design.blocks``; Lambda's non-zeros are at
    (``lambda_rows``, ``lambda_cols``) and take theta entries ``lambda_theta``.
    """

    name: str
    blocks: tuple[int, ...]
    n_levels: int
    q: int
    Z: np.ndarray
    codes: np.ndarray
    lambda_rows: np.ndarray
    lambda_cols: np.ndarray
    lambda_theta: np.ndarray

    @property
    def size(self) -> int:
        return self.n_levels * self.q

    def lam(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.q, self.q))
        lam[self.lambda_rows, self.lambda_cols] = theta[self.lambda_theta]
        return lam


def design_factors(design: Design) -> list[Factor]:
    """One Factor per grouping factor, the one with the most random effects first, then lme4's order."""
    theta_starts = np.cumsum([0] + [block_theta_size(b.n_effects) for b in design.blocks])
    by_name: dict[str, list[int]] = {}
    for index, block in enumerate(design.blocks):
        by_name.setdefault(block.group_var, []).append(index)
    factors = []
    for name, indices in by_name.items():
        rows, cols, which, position = [], [], [], 0
        for index in indices:
            tri_rows, tri_cols = lower_triangle_indices(design.blocks[index].n_effects)
            rows.append(position + tri_rows)
            cols.append(position + tri_cols)
            which.append(theta_starts[index] + np.arange(len(tri_rows)))
            position += design.blocks[index].n_effects
        first = design.blocks[indices[0]]
        factors.append(
            Factor(
                name=name,
                blocks=tuple(indices),
                n_levels=first.n_levels,
                q=position,
                Z=np.column_stack([np.asarray(design.blocks[i].Z, float) for i in indices]),
                codes=np.asarray(first.level_codes, dtype=np.int64),
                lambda_rows=np.concatenate(rows),
                lambda_cols=np.concatenate(cols),
                lambda_theta=np.concatenate(which),
            )
        )
    first = max(range(len(factors)), key=lambda i: factors[i].size)
    return [factors[first]] + factors[:first] + factors[first + 1 :]


def sparse_columns(factor: Factor, n: int, offset: int = 0) -> sparse.csr_matrix:
    """Z of a factor as an n x (n_levels q) sparse matrix, column offset + level q + r."""
    rows = np.repeat(np.arange(n), factor.q)
    cols = offset + (factor.codes[:, None] * factor.q + np.arange(factor.q)[None, :]).ravel()
    return sparse.csr_matrix((factor.Z.ravel(), (rows, cols)), shape=(n, offset + factor.size))


def per_level_products(factor: Factor, right: np.ndarray) -> np.ndarray:
    """sum over rows of level j of Z_r * right_m, as a (q, m, n_levels) groups-last array."""
    out = np.empty((factor.q, right.shape[1], factor.n_levels))
    for r in range(factor.q):
        for m in range(right.shape[1]):
            out[r, m] = np.bincount(factor.codes, factor.Z[:, r] * right[:, m], minlength=factor.n_levels)
    return out


# --------------------------------------------------------------------------- the fixed pair product


def _ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], starts[i] + lengths[i]) in 32-bit integers: for at most
    ``PAIR_PRODUCT_MAX_ENTRIES`` entries in all, every value and partial sum fits."""
    ends = np.cumsum(lengths)
    shifts = (starts - (ends - lengths)).astype(np.int32)
    return np.arange(ends[-1] if len(ends) else 0, dtype=np.int32) + np.repeat(shifts, lengths)


class PairProduct:
    """vec(H) -> G H G' on the lower triangle of Q2 x Q2, H block diagonal per first-factor level.

    One entry per ordered pair of non-zeros (a1, r1), (a2, r2) of G in the columns of the same
    level j with a1 >= a2: row "position a1 Q2 + a2", column (j q + r1) q + r2, value
    G[a1, jq+r1] G[a2, jq+r2]. Rows are compact: only the ``positions`` (sorted flat indices
    into Q2 x Q2) that occur, together with ``extra_positions`` the caller needs, are kept, so
    one evaluation writes a short vector instead of a dense matrix.
    """

    def __init__(self, G: sparse.csc_matrix, q: int, n_levels: int, extra_positions: np.ndarray):
        q2 = G.shape[0]
        column = np.repeat(np.arange(G.shape[1], dtype=np.int64), np.diff(G.indptr))
        level, effect, row, value = column // q, column % q, G.indices.astype(np.int64), G.data
        if q > 1:  # order each level's entries by row (columns of a level are sorted one by one)
            order = np.lexsort((row, level))
            level, effect, row, value = level[order], effect[order], row[order], value[order]
        # Pair each entry with the entries of its level up to its own row: a contiguous run.
        key = level * q2 + row
        level_start = np.searchsorted(level, level, side="left")
        lengths = np.searchsorted(key, key, side="right") - level_start
        n_entries = int(lengths.sum())
        if n_entries > PAIR_PRODUCT_MAX_ENTRIES:
            raise DesignTooLarge(
                f"the crossing of the first grouping factor with the others needs {n_entries:,} pair "
                f"products, above the {PAIR_PRODUCT_MAX_ENTRIES:,.0f} this engine allows"
            )
        first = np.repeat(np.arange(len(row), dtype=np.int32), lengths)  # indices into G's non-zeros
        second = _ragged_arange(level_start, lengths)
        position = row[first] * q2 + row[second]
        present = np.zeros(q2 * q2, dtype=bool)  # a mask, not np.unique: 100x faster here
        present[position] = present[extra_positions] = True
        self.positions = np.flatnonzero(present)
        compact_row = np.cumsum(present, dtype=np.int32) - 1
        # Built column by column (no pair repeats a column's row): a CSC matrix from its arrays,
        # turned into CSR by one transposition, instead of SciPy's sort of (row, column) pairs.
        n_columns = n_levels * q * q
        if q == 1:  # the pairs come level by level, and the level is the column
            per_column = np.bincount(level, lengths, minlength=n_columns).astype(np.int64)
        else:
            column = (level[first] * q + effect[first]) * q + effect[second]
            order = np.argsort(column, kind="stable")
            first, second, position = first[order], second[order], position[order]
            per_column = np.bincount(column, minlength=n_columns)
        by_column = sparse.csc_matrix(
            (value[first] * value[second], compact_row[position], np.concatenate([[0], np.cumsum(per_column)])),
            shape=(len(self.positions), n_columns),
        )
        self.matrix = by_column.tocsr()
        self.q2 = q2

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """A dense Q2 x Q2 matrix with ``values`` at ``positions`` (lower triangle), zero elsewhere."""
        dense = np.zeros((self.q2, self.q2))
        dense.ravel()[self.positions] = values
        return dense

    def diagonal_blocks(self, P: np.ndarray, q: int) -> np.ndarray:
        """G_j' P G_j for every level j, (n_levels, q, q), from P's lower triangle (P symmetric)."""
        lower = P.ravel()[self.positions]
        lower[self.positions % (self.q2 + 1) == 0] /= 2  # the diagonal, counted once per (r1, r2) and (r2, r1)
        half = (self.matrix.T @ lower).reshape(-1, q, q)
        return half + half.transpose(0, 2, 1)


# --------------------------------------------------------------------------- Lambda on the dense block


def lambda_rows(matrix: np.ndarray, factors: list[Factor], lams: list[np.ndarray], offsets) -> np.ndarray:
    """Lambda2' @ matrix, in place where possible (Lambda2 = blockdiag over factors of kron(I, lam))."""
    for factor, lam, offset in zip(factors, lams, offsets):
        rows = slice(offset, offset + factor.size)
        if factor.q == 1:
            matrix[rows] *= lam[0, 0]
        else:
            block = matrix[rows].reshape(factor.n_levels, factor.q, -1)
            matrix[rows] = np.einsum("rc,nrm->ncm", lam, block).reshape(factor.size, -1)
    return matrix


def sandwich(matrix: np.ndarray, factors: list[Factor], lams: list[np.ndarray], offsets) -> np.ndarray:
    """Lambda2' M Lambda2 of a symmetric M of which only the lower triangle is trusted, in place;
    so is the result's (blocks above the diagonal are left as they were).

    Block by block on or below the diagonal: one scaling where both factors are scalar, otherwise
    the block's rows and columns times the factors' q x q lam (a diagonal block completed from its
    lower triangle first), so a few vector-valued levels cost only their own rows.
    """
    ranges = [slice(offset, offset + factor.size) for factor, offset in zip(factors, offsets)]
    for k, (factor_k, rows, lam_k) in enumerate(zip(factors, ranges, lams)):
        for factor_l, cols, lam_l in zip(factors[: k + 1], ranges[: k + 1], lams[: k + 1]):
            if factor_k.q == 1 and factor_l.q == 1:
                matrix[rows, cols] *= lam_k[0, 0] * lam_l[0, 0]
                continue
            block = matrix[rows, cols]
            if rows == cols:
                block = np.tril(block) + np.tril(block, -1).T
            left = np.einsum("rc,nrm->ncm", lam_k, block.reshape(factor_k.n_levels, factor_k.q, -1))
            both = np.einsum("mnr,rc->mnc", left.reshape(factor_k.size, factor_l.n_levels, factor_l.q), lam_l)
            matrix[rows, cols] = both.reshape(factor_k.size, factor_l.size)
    return matrix
