"""Profiled (RE)ML criterion of any linear mixed model through a blocked Cholesky factor.

The method is lme4's penalized least squares (Bates et al. 2015, sec. 3) with the blocked
factor of MixedModels.jl: the terms on one grouping factor are amalgamated into one factor of
q effects per level, and the factor with the most random effects comes first. Its diagonal block
of A = Lambda'Z'Z Lambda + I is block diagonal (one q1 x q1 block per level), so it is
eliminated level by level; the other factors form one dense Schur complement
S = Lambda2'(Z2'Z2 - G H G')Lambda2 + I, where G = Z2'Z1 (a sparse crosstab) and
H = blockdiag_j(Lambda1 A11_j^-1 Lambda1'). The fixed-effect and response columns [X y] form
the last block, so log|L|^2, log|RX|^2 and the penalized residual sum of squares r2 come straight
from the factor.

G H G' is linear in the per-level values of H with a sparsity pattern that never changes with
theta: it is one fixed sparse matrix (``lmmflow.engine.blocked_factors.PairProduct``: one entry per pair of
non-zeros of G in the same first-factor level) times vec(H), a single sparse matrix-vector
product per evaluation. Its transpose gives what needs the inverse of the whole factor: with
P = Lambda2 S^-1 Lambda2' and K_j = G_j'P G_j, the diagonal block j of Lambda A^-1 Lambda' is
H_j + H_j K_j H_j (the conditional variances, lme4's condVar).

Gradient (the derivation in ``lmmflow.engine.groups_last``): the log-determinant part,
d log|A| / d theta = 2 tr(dLambda A^-1 Lambda'Z'Z), needs only the diagonal blocks B_ll of
A^-1 Lambda'Z'Z: A11_j^-1 (C_j + D_j Lambda1 A11_j^-1 C_j - D_j), with C_j = Lambda1'Z1'Z1_j
and D_j = Lambda1'K_j, for the first factor,
(I - S^-1_ll) T^-1 for the others (T the factor's relative covariance factor; when it is
singular, the diagonal blocks of S^-1 Lambda2'(Z2'Z2 - G H G')). With k = Z'V^-1(y - X beta)
and K_X = Z'V^-1 X per level (from the conditional modes of every column of [X y]), the entry
(r, c) of a factor's T has
    2 sum_l B_ll[c, r] - 2 (n - p)/r2 sum_l k_l[r] (T'k_l)[c] - 2 sum_l (T'K_Xl F^-1 K_Xl')[c, r],
the last term for REML only (F = X'V^-1 X; ML uses n and drops it).

The dense block needs 8 Q2^2 bytes (Q2: random effects after the first factor); designs needing
more than ``DENSE_BLOCK_MAX_BYTES`` are refused with a clear error instead of swapping (a sparse
factorization of that block would need a library such as CHOLMOD, which this package avoids).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg, optimize, sparse

from lmmflow.engine.batched import batched_cholesky, forward_substitute
from lmmflow.engine.blas import single_thread
from lmmflow.engine.blocked_factors import (
    DesignTooLarge,
    PairProduct,
    design_factors,
    lambda_rows,
    per_level_products,
    sandwich,
    sparse_columns,
)
from lmmflow.engine.criterion import LOG_2PI, PLSState, ProfiledSolution
from lmmflow.engine.estimates import Estimates, from_solution
from lmmflow.engine.optimizer import GRADIENT_TOLERANCE, Attempt, attempt_of, best_attempt, minimize_criterion
from lmmflow.engine.parameters import default_start, theta_lower_bounds, theta_to_covariances
from lmmflow.engine.split_product import SplitProduct, fill_upper
from lmmflow.engine.start_values import all_scalar, curvature_scales, moment_start
from lmmflow.model.design import Design

# Largest dense Schur block (S and its inverse live at once, temporaries are chunked): 1 GB each,
# i.e. about 11,000 random effects after the first factor (MovieLens-10M's 10,677 movies: a fit
# peaked at 4.4 GB, docs/scale.md).
DENSE_BLOCK_MAX_BYTES = 1e9


def dense_size(design: Design) -> int:
    """Q2: the number of random effects in the dense block (all but the first factor's)."""
    sizes = [f.size for f in design_factors(design)]
    return sum(sizes) - sizes[0]


def evaluation_work(design: Design) -> float:
    """Flops of one criterion evaluation, roughly: the first factor's per-level blocks, the pair
    product (counted as if each first-factor level met one level of each other factor, as in a
    nested design) and the dense factorization. A work estimate, not a timing, for choosing
    between engines; the rows themselves are touched only once, when the engine is set up.
    """
    factors, p = design_factors(design), design.X.shape[1]
    first, q2 = factors[0], dense_size(design)
    q_rest = sum(f.q for f in factors[1:])
    per_level = first.n_levels * first.q**2 * (first.q + p + 1 + q_rest**2 / 2)
    return per_level + q2**3 / 3 + q2 * q2 * (p + 1)


# --------------------------------------------------------------------------- the profiled deviance


class BlockedCriterion:
    """lme4's profiled deviance of any design as a function of theta (REML, or ML if reml=False).

    A drop-in for ``lmmflow.engine.groups_last.GroupsLastCriterion`` where the package uses one: ``deviance(theta)``,
    ``solve(theta)`` (a ``lmmflow.engine.groups_last.Solution``), ``lower_bounds``, ``sizes``, ``n_theta``.
    Everything whose sparsity does not depend on theta is computed here, once.
    """

    def __init__(self, design: Design, reml: bool = True):
        # offset and prior weights enter as lme4's lmerResp: a whitened response and sum(log w)
        self.design, self.reml, self.log_weight_sum = design.whitened(), reml, design.log_weight_sum
        design = self.design
        self._last: tuple[bytes, dict] | None = None  # the last factor (``_factor``) and its theta
        self.split: SplitProduct | None = None  # G H G' for crossings too large for a PairProduct
        self.sizes = [block.n_effects for block in design.blocks]
        self.lower_bounds = theta_lower_bounds(self.sizes)  # one per theta entry
        self.n_theta = len(self.lower_bounds)
        self.factors = design_factors(design)
        self.rest = self.factors[1:]
        self.offsets = np.cumsum([0] + [f.size for f in self.rest])[:-1]
        self.q2 = sum(f.size for f in self.rest)
        if 8.0 * self.q2**2 > DENSE_BLOCK_MAX_BYTES:
            names = ", ".join(f"{f.name} ({f.size:,})" for f in self.rest)
            raise DesignTooLarge(
                f"the random effects after {self.factors[0].name!r} ({names}) form a dense {self.q2:,} x "
                f"{self.q2:,} block of {8 * self.q2**2:,} bytes, above the {DENSE_BLOCK_MAX_BYTES:,.0f} this engine "
                "allows; such designs need a sparse factorization of that block"
            )
        self._fixed_statistics()

    @single_thread()
    def _fixed_statistics(self) -> None:
        X, y = np.asarray(self.design.X, float), np.asarray(self.design.y, float)
        # y minus its OLS fit, as in lmmflow.engine.groups_last: beta shifts by the OLS coefficients, and r2 is
        # no longer a small difference of large numbers.
        self.beta_offset = np.linalg.lstsq(X, y, rcond=None)[0]
        XY = self.XY = np.column_stack([X, y - X @ self.beta_offset])
        self.n, self.p = X.shape
        first = self.factors[0]
        self.ZtZ1 = per_level_products(first, first.Z)
        self.ZtXY1 = per_level_products(first, XY)
        self.XYtXY = XY.T @ XY
        if self.q2:
            Z2t = sparse.hstack([sparse_columns(f, self.n) for f in self.rest], format="csr").T.tocsr()
            D22 = sparse.tril(Z2t @ Z2t.T).tocoo()
            self.ZtXY2 = Z2t @ XY
            self.G = (Z2t @ sparse_columns(first, self.n)).tocsc()
            self.G.sum_duplicates()
            self.G.sort_indices()
            d22_positions = D22.row.astype(np.int64) * self.q2 + D22.col
            try:
                self.pairs = PairProduct(self.G, first.q, first.n_levels, d22_positions)
            except DesignTooLarge:  # too many pair products to store: G H G' by BLAS and sparse products
                self.split = SplitProduct(self.G, first.q, first.n_levels)
                self.D22 = (D22.row, D22.col, D22.data)
                return
            # Z2'Z2 at the pair product's positions, and the two factors each position lies in
            self.D22 = np.zeros(len(self.pairs.positions))
            self.D22[np.searchsorted(self.pairs.positions, d22_positions)] = D22.data
            # for each position, the pair of factors it lies in (for the scaling by Lambda2' . Lambda2)
            # and its flat index in the bordered matrix of ``_factor``
            factor_of = np.repeat(np.arange(len(self.rest)), [f.size for f in self.rest])
            rows, cols = np.divmod(self.pairs.positions, self.q2)
            self.position_pairs = factor_of[rows] * len(self.rest) + factor_of[cols]
            self.bordered_positions = rows * (self.q2 + self.p + 1) + cols

    @property
    def evaluation_work(self) -> float:
        """Work of one evaluation (``evaluation_work``), for the optimizer's choice of fallbacks."""
        return evaluation_work(self.design)

    @single_thread()
    def _factor(self, theta: np.ndarray, keep_middle: bool = False) -> dict:
        """The blocked factor at theta and the profiled quantities that follow from it.

        The dense block S and [X y] are factored together: with c = Lambda2'(Z2'[X y] - G Y) and F
        the [X y] block after the first factor, the upper Cholesky factor of [[S, c], [c', F]] is
        [[U, W2], [0, R]]: U'U = S, W2 = U^-T c and R'R = F - W2'W2, so one LAPACK call gives
        log|S|, r2 and the fixed effects. ``keep_middle`` also keeps Z2'Z2 - G H G' (whole, before
        Lambda2 scales it). The last factor is kept: a gradient and a solve at one theta share it.
        """
        theta = np.asarray(theta, float)
        if self._last is not None and self._last[0] == theta.tobytes():
            if not keep_middle or "middle" in self._last[1]:
                return self._last[1]
        first, p, q2 = self.factors[0], self.p, self.q2
        lam1 = first.lam(theta)
        A11 = np.einsum("rlj,lc->rcj", np.einsum("kr,klj->rlj", lam1, self.ZtZ1), lam1)
        A11[np.arange(first.q), np.arange(first.q)] += 1.0
        L11 = batched_cholesky(A11)
        V = forward_substitute(L11, lam1.T)  # L11_j^-1 Lambda1'
        H = np.einsum("krj,kcj->rcj", V, V)  # Lambda1 A11_j^-1 Lambda1'
        Y = np.einsum("rcj,cmj->rmj", H, self.ZtXY1)
        logdet = 2.0 * np.log(L11[np.arange(first.q), np.arange(first.q)]).sum()
        pieces = dict(lam1=lam1, L11=L11, H=H)
        bordered = np.zeros((q2 + p + 1, q2 + p + 1))  # its lower triangle, row by row
        if q2:
            lams = pieces["lams"] = [f.lam(theta) for f in self.rest]
            if self.split is not None:
                self._split_schur(V, lams, bordered[:q2, :q2], keep_middle, pieces)
            else:
                self._pair_schur(H, lams, bordered, keep_middle, pieces)
            bordered[np.arange(q2), np.arange(q2)] += 1.0
            rhs = self.ZtXY2 - self.G @ Y.transpose(2, 0, 1).reshape(-1, p + 1)
            bordered[q2:, :q2] = lambda_rows(rhs, self.rest, lams, self.offsets).T  # c = Lambda2'(...)
        bordered[q2:, q2:] = self.XYtXY - np.einsum("rmj,rkj->mk", self.ZtXY1, Y)
        factor, info = linalg.lapack.dpotrf(bordered.T, lower=0, clean=0, overwrite_a=1)  # .T: Fortran order
        if info:
            raise np.linalg.LinAlgError(f"blocked factor not positive definite (LAPACK info {info} of {q2 + p + 1})")
        U, R = factor[:q2, :q2], np.triu(factor[q2:, q2:])
        logdet += 2.0 * np.log(np.diag(U)).sum()
        r2 = R[p, p] ** 2
        dof = self.n - p if self.reml else self.n
        deviance = logdet + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        if self.reml:
            deviance += 2.0 * np.log(np.diag(R)[:p]).sum()
        beta = linalg.solve_triangular(R[:p, :p], R[:p, p])  # relative to the OLS offset
        pieces |= dict(factor=factor, U=U, W2=factor[:q2, q2:], F=R.T @ R, r2=r2, dof=dof, beta=beta, R=R)
        pieces |= dict(deviance=float(deviance) - self.log_weight_sum, logdet=float(logdet))
        self._last = (theta.tobytes(), pieces)
        return pieces

    def _pair_schur(self, H: np.ndarray, lams: list, bordered: np.ndarray, keep_middle: bool, pieces: dict) -> None:
        """Lambda2'(Z2'Z2 - G H G')Lambda2 into the lower triangle of ``bordered``, through the pair product."""
        middle = self.D22 - self.pairs.matrix @ H.transpose(2, 0, 1).ravel()  # Z2'Z2 - G H G', lower
        if keep_middle:
            lower = self.pairs.scatter(middle)
            pieces["middle"] = lower + np.tril(lower, -1).T
        if all(factor.q == 1 for factor in self.rest):  # Lambda2' . Lambda2 scales each position
            scale = np.array([lam[0, 0] for lam in lams])
            bordered.ravel()[self.bordered_positions] = middle * np.outer(scale, scale).ravel()[self.position_pairs]
        else:  # scattered straight into the bordered matrix and scaled there (``sandwich`` works in place)
            bordered.ravel()[self.bordered_positions] = middle
            sandwich(bordered[: self.q2, : self.q2], self.rest, lams, self.offsets)

    def _split_schur(self, V: np.ndarray, lams: list, block: np.ndarray, keep_middle: bool, pieces: dict) -> None:
        """Lambda2'(Z2'Z2 - G H G')Lambda2 into ``block`` (whole), G H G' = W W' by ``SplitProduct``."""
        middle = self.split.outer(V, block)
        np.negative(middle, out=middle)
        rows, cols, values = self.D22
        middle[rows, cols] += values
        middle[cols, rows] = middle[rows, cols]  # Z2'Z2's upper triangle, from its lower one
        if keep_middle:
            pieces["middle"] = middle.copy()
        block[...] = sandwich(middle, self.rest, lams, self.offsets)

    def pls_state(self, theta: np.ndarray) -> PLSState:
        """lme4's penalized least squares solution at theta (``lmmflow.engine.criterion.Criterion``)."""
        f = self._factor(np.asarray(theta, dtype=float))
        p = self.p
        return PLSState(
            ldL2=f["logdet"],
            ldRX2=float(2.0 * np.log(np.diag(f["R"])[:p]).sum()),
            pwrss=float(f["r2"]),
            xtvx=f["F"][:p, :p].copy(),
        )

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled REML (or ML) deviance, -2 logLik at the profiled beta and sigma; inf where undefined."""
        try:
            return self._factor(theta)["deviance"]
        except np.linalg.LinAlgError:
            return np.inf

    # -- pieces of the inverse of the factor

    @single_thread()
    def _inverse(self, f: dict, whole: bool = False) -> dict:
        """Pieces of S^-1: its diagonal blocks per level of each other factor (n_levels, q, q),
        P = Lambda2 S^-1 Lambda2' (lower triangle), K_j = G_j' P G_j (q1, q1, n1), and with
        ``whole`` S^-1 itself. Kept with the factor ``f``."""
        if "inverse" in f and (not whole or "S_inv" in f["inverse"]):
            return f["inverse"]
        inverse, info = linalg.lapack.dpotri(f["U"], lower=0)
        if info:
            raise np.linalg.LinAlgError(f"dense block not invertible (LAPACK info {info})")
        # dpotri filled the upper triangle of the Fortran-ordered matrix: the lower one of its
        # (C-ordered) transpose, which is all that is read below.
        lower = inverse.T
        pieces = dict(blocks=[])
        for factor, offset in zip(self.rest, self.offsets):
            index = offset + np.arange(factor.size).reshape(factor.n_levels, factor.q)
            block = np.tril(lower[index[:, :, None], index[:, None, :]])
            pieces["blocks"].append(block + np.tril(block, -1).transpose(0, 2, 1))
        if whole:
            pieces["S_inv"] = np.tril(lower) + np.tril(lower, -1).T
        pieces["P"] = sandwich(lower, self.rest, [lam.T for lam in f["lams"]], self.offsets)
        if self.split is not None:
            pieces["K"] = self.split.diagonal_blocks(fill_upper(pieces["P"])).transpose(1, 2, 0)
        else:
            pieces["K"] = self.pairs.diagonal_blocks(pieces["P"], self.factors[0].q).transpose(1, 2, 0)
        f["inverse"] = pieces
        return pieces

    def _xy_modes(self, f: dict) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes Lambda A^-1 Lambda'Z' x for every column x of [X y]: (q1, p+1, n1), (Q2, p+1)."""
        first, c1 = self.factors[0], self.ZtXY1
        b2 = np.zeros((0, self.p + 1))
        if self.q2:
            # U u2 = W2 = U^-T c, solved with the whole (contiguous) factor: [[U, W2], [0, R]] [u2; 0] = [W2; 0]
            rhs = np.zeros((self.q2 + self.p + 1, self.p + 1), order="F")
            rhs[: self.q2] = f["W2"]
            u2 = linalg.solve_triangular(f["factor"], rhs, check_finite=False, overwrite_b=True)[: self.q2]
            b2 = lambda_rows(u2, self.rest, [lam.T for lam in f["lams"]], self.offsets)
            c1 = c1 - (self.G.T @ b2).reshape(first.n_levels, first.q, -1).transpose(1, 2, 0)
        return np.einsum("rcj,cmj->rmj", f["H"], c1), b2

    # -- estimates at a given theta

    @single_thread()
    def solve(self, theta: np.ndarray) -> ProfiledSolution:
        """Fixed effects, variance components, conditional modes and conditional SDs at theta.

        The conditional SDs are lme4's ``ranef(condVar = TRUE)``: square roots of the diagonal of
        sigma2 Lambda A^-1 Lambda', from the diagonal blocks of the inverse of the whole factor.
        """
        theta = np.asarray(theta, dtype=float)
        f = self._factor(theta)
        H, p = f["H"], self.p
        sigma2 = f["r2"] / f["dof"]
        residual = np.append(-f["beta"], 1.0)  # [X y] @ residual = y - X beta
        b1, b2 = self._xy_modes(f)
        var1 = np.einsum("rrj->rj", H).copy()
        var2 = np.zeros(0)
        if self.q2:
            inverse = self._inverse(f)
            var2 = np.diag(inverse["P"]).copy()
            var1 += np.einsum("rkj,klj,lrj->rj", H, inverse["K"], H)  # diag of H_j K_j H_j
        sds = (np.sqrt(sigma2 * np.maximum(var1, 0.0)), np.sqrt(sigma2 * np.maximum(var2, 0.0)))
        return ProfiledSolution(
            theta=theta,
            deviance=f["deviance"],
            beta=f["beta"] + self.beta_offset,
            sigma2=float(sigma2),
            beta_cov=sigma2 * np.linalg.inv(f["F"][:p, :p]),
            covariances=theta_to_covariances(theta, self.sizes, sigma2),
            modes=self._per_block(np.einsum("rmj,m->rj", b1, residual), b2 @ residual),
            conditional_sds=self._per_block(*sds),
        )

    def _per_block(self, first_values: np.ndarray, rest_values: np.ndarray) -> list[np.ndarray]:
        """(q1, n1) values of the first factor and (Q2,) of the others -> per design block (n_levels x q)."""
        out: list[np.ndarray] = [np.zeros(0)] * len(self.design.blocks)
        per_factor = [first_values.T] + [
            rest_values[offset : offset + f.size].reshape(f.n_levels, f.q) for f, offset in zip(self.rest, self.offsets)
        ]
        for factor, values in zip(self.factors, per_factor):
            column = 0
            for index in factor.blocks:
                q = self.design.blocks[index].n_effects
                out[index] = np.ascontiguousarray(values[:, column : column + q])
                column += q
        return out

    # -- the gradient

    def held_at_bound(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Coordinates at their lower bound whose gradient pushes further down."""
        return (np.asarray(theta) <= self.lower_bounds + 1e-10) & (grad > 0)

    @single_thread()
    def deviance_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Deviance and its gradient (see the module docstring for the formula); kept with the factor."""
        theta = np.asarray(theta, float)
        singular = any(_is_singular(factor.lam(theta)) for factor in self.rest)
        f = self._factor(theta, keep_middle=singular)
        if "gradient" in f:
            return f["deviance"], f["gradient"].copy()
        inverse = self._inverse(f, whole=singular) if self.q2 else None
        b1, b2 = self._xy_modes(f)
        # V^-1 [X y] = [X y] - Z (modes of [X y]), and its per-level sums Z'V^-1 [X y] per factor.
        fitted = np.einsum("nr,rmn->nm", self.factors[0].Z, b1[:, :, self.factors[0].codes])
        rest_modes = [b2[o : o + f_.size].reshape(f_.n_levels, f_.q, -1) for f_, o in zip(self.rest, self.offsets)]
        for factor, modes in zip(self.rest, rest_modes):
            fitted += np.einsum("nr,nrm->nm", factor.Z, modes[factor.codes])
        ZtVinvXY = [per_level_products(factor, self.XY - fitted) for factor in self.factors]
        blocks = [self._first_blocks(f, inverse)] + self._rest_blocks(f, inverse)
        lams = [f["lam1"]] + f.get("lams", [])
        residual = np.append(-f["beta"], 1.0)
        F_inv = np.linalg.inv(f["F"][: self.p, : self.p])
        grad = np.zeros(self.n_theta)
        for factor, lam, B, KXY in zip(self.factors, lams, blocks, ZtVinvXY):
            r, c = factor.lambda_rows, factor.lambda_cols
            k = np.einsum("rml,m->rl", KXY, residual)  # Z'V^-1 (y - X beta), per level
            terms = 2.0 * B[:, c, r].sum(axis=0) - (2.0 * f["dof"] / f["r2"]) * (k[r] * (lam.T @ k)[c]).sum(axis=1)
            if self.reml:
                KX = KXY[:, : self.p]
                terms -= 2.0 * np.einsum("rc,ral,ab,sbl->cs", lam, KX, F_inv, KX)[c, r]
            grad += np.bincount(factor.lambda_theta, terms, minlength=self.n_theta)
        f["gradient"] = grad.copy()
        return f["deviance"], grad

    def _first_blocks(self, f: dict, inverse: dict | None) -> np.ndarray:
        """(A^-1 Lambda'Z'Z)_jj for the first factor's levels, (n1, q1, q1): with C_j = Lambda1'Z1'Z1_j
        and D_j = Lambda1'K_j, A11_j^-1 (C_j + D_j Lambda1 A11_j^-1 C_j - D_j)."""
        q = self.factors[0].q
        W = forward_substitute(f["L11"], np.eye(q))
        A_inv = np.einsum("krj,kcj->rcj", W, W)
        C = np.einsum("kr,klj->rlj", f["lam1"], self.ZtZ1)
        inner = C
        if inverse is not None:
            D = np.einsum("kr,klj->rlj", f["lam1"], inverse["K"])
            inner = C - D + np.einsum("rkj,kl,lmj,mcj->rcj", D, f["lam1"], A_inv, C)
        return np.einsum("rkj,kcj->jrc", A_inv, inner)

    def _rest_blocks(self, f: dict, inverse: dict | None) -> list[np.ndarray]:
        """(A^-1 Lambda'Z'Z)_ll for the other factors' levels, the diagonal blocks of
        S^-1 Lambda2'(Z2'Z2 - G H G'). As Lambda2'(Z2'Z2 - G H G')Lambda2 = S - I, they are
        (I - S^-1_ll) T^-1 where the factor's T is invertible; otherwise from the product itself."""
        if inverse is None:
            return []
        out = []
        for factor, offset, lam, S_inv_ll in zip(self.rest, self.offsets, f["lams"], inverse["blocks"]):
            if not _is_singular(lam):
                out.append((np.eye(factor.q) - S_inv_ll) @ np.linalg.inv(lam))
                continue
            rows = slice(offset, offset + factor.size)
            R = lambda_rows(f["middle"][:, rows].copy(), self.rest, f["lams"], self.offsets)  # Lambda2' middle
            left = inverse["S_inv"][:, rows].reshape(-1, factor.n_levels, factor.q)  # S^-1 is symmetric
            out.append(np.einsum("mlc,mlr->lcr", left, R.reshape(-1, factor.n_levels, factor.q)))
        return out


def _is_singular(lam: np.ndarray) -> bool:
    """A term's relative factor T too close to singular for T^-1 (a variance at or near zero)."""
    return bool(np.min(np.abs(np.diag(lam))) < 1e-6)


# Dense blocks from this size on make a gradient costly: it needs the inverse of the block (2/3 Q2^3
# flops against the factorization's 1/3): on InstEval (Q2 = 1,142) an evaluation with the gradient
# costs about four without; L-BFGS-B from lme4's start needed 23 of the former, COBYQA 67 of the
# latter. From ``start_values``' start and in its scales L-BFGS-B needs 8.
DERIVATIVE_FREE_MIN_DENSE = 500
# COBYQA stops at this trust-region radius. On InstEval 1e-7 took 78 evaluations and left an
# analytic gradient of 1e-4 (converged); 1e-5 took 67 but left 0.02, so that the convergence check
# needed a Newton decrement (4 more gradients, more than the 11 evaluations saved).
COBYQA_OPTIONS = dict(final_tr_radius=1e-7, maxfev=2000)
# COBYQA in scaled theta (``_split_attempt``), where the deviance is about |u - u*|^2 / 2: the first
# step is about the moment start's error on MovieLens-shaped data (deviance 7e-4 above the optimum),
# and the last trust region's radius leaves at most ~5e-5 of deviance (logLik 2.5e-5, within 1e-4 at
# MovieLens-1M's size). On the 100,000-rating simulation of tests/engine/
# test_split_product.py: 9 evaluations (12 with a last radius of 3e-3, same logLik), logLik 8e-9 below lme4's.
SPLIT_COBYQA_OPTIONS = dict(initial_tr_radius=0.05, final_tr_radius=1e-2, maxfev=500)
# L-BFGS-B in scaled theta (``_first_attempt``): ``lmmflow.engine.optimizer``'s settings but for its gradient
# tolerance, set from the scales. On InstEval it saves the last of 9 gradients.
SCALED_LBFGSB_OPTIONS = dict(maxiter=1000, ftol=1e-14, maxcor=20)


def _first_attempt(model: BlockedCriterion, start: np.ndarray | None) -> Attempt:
    """All-scalar designs: L-BFGS-B with the gradient in ``scalar_start``'s scales, from its start
    unless ``start`` is given (``_split_attempt`` for those too large for a pair product). Others:
    COBYQA from lme4's start (or ``start``)."""
    clock = time.perf_counter()
    if all_scalar(model) and model.split is not None:
        return _split_attempt(model, start)
    if model.split is None:
        start = moment_start(model) if start is None else np.asarray(start, float)
        scale = curvature_scales(model, start)

        def scaled(u: np.ndarray) -> tuple[float, np.ndarray]:
            deviance, grad = model.deviance_and_gradient(u / scale)
            return deviance, grad / scale

        # Stop once the gradient in theta is surely below half the convergence check's tolerance.
        options = SCALED_LBFGSB_OPTIONS | dict(gtol=GRADIENT_TOLERANCE / 2 / scale.max())
        bounds = [(lower if np.isfinite(lower) else None, None) for lower in model.lower_bounds * scale]
        result = optimize.minimize(scaled, start * scale, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        result.x = result.x / scale  # as a rule the theta of its last evaluation, whose factor and gradient are kept
        return attempt_of("scaled L-BFGS-B", model, result, time.perf_counter() - clock)
    start = default_start(model.sizes) if start is None else np.asarray(start, float)
    bounds = optimize.Bounds(model.lower_bounds, np.full(model.n_theta, np.inf))
    result = optimize.minimize(model.deviance, start, method="COBYQA", bounds=bounds, options=COBYQA_OPTIONS)
    return attempt_of("COBYQA", model, result, time.perf_counter() - clock)


def _split_attempt(model: BlockedCriterion, start: np.ndarray | None) -> Attempt:
    """All-scalar designs too large for a pair product: COBYQA in ``scalar_start``'s scales from its
    start. A gradient there costs several evaluations (the inverse of the dense block and the
    diagonal blocks of G'P G), so the optimizer takes none, and the convergence check takes one:
    its Newton decrement uses the scales' squares as the Hessian's diagonal."""
    clock = time.perf_counter()
    start = moment_start(model) if start is None else np.asarray(start, float)
    scale = curvature_scales(model, start)
    bounds = optimize.Bounds(model.lower_bounds * scale, np.full(model.n_theta, np.inf))
    result = optimize.minimize(
        lambda u: model.deviance(u / scale), start * scale, method="COBYQA", bounds=bounds, options=SPLIT_COBYQA_OPTIONS
    )
    result.x = result.x / scale
    return attempt_of("scaled COBYQA", model, result, time.perf_counter() - clock, curvature=scale**2)


def optimize_theta(model: BlockedCriterion, start: np.ndarray | None = None) -> tuple[np.ndarray, list[Attempt]]:
    """Minimize the profiled deviance from lme4's start (or ``start``).

    The groups-last engine's optimizer (L-BFGS-B with the analytic gradient, restarts off zeroed
    diagonals, Nelder-Mead when needed; ``lmmflow.engine.optimizer.minimize_criterion``), except that a large
    dense block first gets ``_first_attempt``: L-BFGS-B from a moment estimate in scaled theta
    when every term is scalar, else SciPy's derivative-free COBYQA (Powell's successor of the
    BOBYQA lme4 uses). That solution is checked with the analytic gradient, and the groups-last
    optimizer continues from it only when it did not converge or, after L-BFGS-B, when a
    variance is at zero (where L-BFGS-B can stall: ``lmmflow.engine.optimizer.escape_zero_diagonals``).
    """
    if model.q2 < DERIVATIVE_FREE_MIN_DENSE:
        return minimize_criterion(model, start)
    first = _first_attempt(model, start)
    stalled = all_scalar(model) and np.any(first.theta <= model.lower_bounds + 1e-8)
    if first.converged and not stalled:
        return first.theta, [first]
    _, more = minimize_criterion(model, first.theta)
    attempts = [first, *more]
    return best_attempt(attempts).theta, attempts


def fit_blocked(design: Design, reml: bool = True, start: np.ndarray | None = None) -> Estimates:
    """REML (or ML) fit of any design on the blocked Cholesky engine; every number on lme4's scale.

    The optimizer is ``optimize_theta``.
    """
    model = BlockedCriterion(design, reml=reml)
    theta, attempts = optimize_theta(model, start)
    return from_solution(model.solve(theta), best_attempt(attempts), attempts, "blocked", reml)
