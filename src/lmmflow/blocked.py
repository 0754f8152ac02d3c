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
theta: it is one fixed sparse matrix (``lmmflow.factors.PairProduct``: one entry per pair of non-zeros of G in
the same first-factor level) times vec(H), a single sparse matrix-vector product per evaluation.
Its transpose gives the conditional variances of the first factor's effects: with
P = Lambda2 S^-1 Lambda2', the diagonal block j of Lambda A^-1 Lambda' is H_j + H_j G_j'P G_j H_j.

The dense block needs 8 Q2^2 bytes (Q2: random effects after the first factor); designs needing
more than ``DENSE_BLOCK_MAX_BYTES`` are refused with a clear error instead of swapping (a sparse
factorization of that block would need a library such as CHOLMOD, which this package avoids).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg, optimize, sparse

from lmmflow.blas import single_thread
from lmmflow.design import Design
from lmmflow.estimates import Estimates, from_solution
from lmmflow.factors import (
    DesignTooLarge,
    PairProduct,
    design_factors,
    lambda_rows,
    per_level_products,
    sandwich,
    sparse_columns,
)
from lmmflow.reml import (
    LOG_2PI,
    Solution,
    batched_cholesky,
    default_start,
    forward_substitute,
    theta_lower_bounds,
    theta_to_covariances,
)

# Largest dense Schur block (S, its inverse and two temporaries live at once): 400 MB each,
# i.e. about 7,000 random effects after the first factor.
DENSE_BLOCK_MAX_BYTES = 4e8


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


class BlockedREML:
    """lme4's profiled deviance of any design as a function of theta (REML, or ML if reml=False).

    A drop-in for ``lmmflow.reml.ProfiledREML`` where the package uses one: ``deviance(theta)``,
    ``solve(theta)`` (a ``lmmflow.reml.Solution``), ``lower_bounds``, ``sizes``, ``n_theta``.
    Everything whose sparsity does not depend on theta is computed here, once.
    """

    def __init__(self, design: Design, reml: bool = True):
        self.design, self.reml, self.n_evaluations = design, reml, 0
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

    def _fixed_statistics(self) -> None:
        X, y = np.asarray(self.design.X, float), np.asarray(self.design.y, float)
        # y minus its OLS fit, as in lmmflow.reml: beta shifts by the OLS coefficients, and r2 is
        # no longer a small difference of large numbers.
        self.beta_offset = np.linalg.lstsq(X, y, rcond=None)[0]
        XY = np.column_stack([X, y - X @ self.beta_offset])
        self.n, self.p = X.shape
        first = self.factors[0]
        self.ZtZ1 = per_level_products(first, first.Z)
        self.ZtXY1 = per_level_products(first, XY)
        self.XYtXY = XY.T @ XY
        if self.q2:
            Z2t = sparse.hstack([sparse_columns(f, self.n) for f in self.rest], format="csr").T.tocsr()
            self.D22 = (Z2t @ Z2t.T).toarray()
            self.ZtXY2 = Z2t @ XY
            self.G = (Z2t @ sparse_columns(first, self.n)).tocsc()
            self.G.sum_duplicates()
            self.G.sort_indices()
            self.pairs = PairProduct(self.G, first.q, first.n_levels)

    @single_thread()
    def _factor(self, theta: np.ndarray) -> dict:
        """The blocked factor at theta and the profiled quantities that follow from it."""
        self.n_evaluations += 1
        theta = np.asarray(theta, float)
        first, p = self.factors[0], self.p
        lam1 = first.lam(theta)
        A11 = np.einsum("rlj,lc->rcj", np.einsum("kr,klj->rlj", lam1, self.ZtZ1), lam1)
        A11[np.arange(first.q), np.arange(first.q)] += 1.0
        L11 = batched_cholesky(A11)
        V = forward_substitute(L11, lam1.T)  # L11_j^-1 Lambda1'
        H = np.einsum("krj,kcj->rcj", V, V)  # Lambda1 A11_j^-1 Lambda1'
        Y = np.einsum("rcj,cmj->rmj", H, self.ZtXY1)
        F = self.XYtXY - np.einsum("rmj,rkj->mk", self.ZtXY1, Y)
        logdet = 2.0 * np.log(L11[np.arange(first.q), np.arange(first.q)]).sum()
        pieces = dict(H=H)
        if self.q2:
            lams = [f.lam(theta) for f in self.rest]
            middle = self.pairs.lower(H.transpose(2, 0, 1).ravel())
            np.subtract(self.D22, middle, out=middle)  # Z2'Z2 - G H G', lower triangle
            S = sandwich(middle, self.rest, lams, self.offsets)
            S[np.diag_indices_from(S)] += 1.0
            U, info = linalg.lapack.dpotrf(S.T, lower=0, clean=0, overwrite_a=1)  # S.T: Fortran order
            if info:
                raise np.linalg.LinAlgError(f"dense block not positive definite (LAPACK info {info})")
            rhs = self.ZtXY2 - self.G @ Y.transpose(2, 0, 1).reshape(-1, p + 1)
            rhs = lambda_rows(rhs, self.rest, lams, self.offsets)  # c2 - L21 W1, i.e. Lambda2'(...)
            W2 = linalg.solve_triangular(U, rhs, trans="T", lower=False, check_finite=False)
            F -= W2.T @ W2
            logdet += 2.0 * np.log(np.diag(U)).sum()
            pieces.update(lams=lams, U=U, rhs=rhs)
        R = np.linalg.cholesky(F)
        r2 = R[p, p] ** 2
        dof = self.n - p if self.reml else self.n
        deviance = logdet + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        if self.reml:
            deviance += 2.0 * np.log(np.diag(R)[:p]).sum()
        return pieces | dict(F=F, r2=r2, deviance=float(deviance))

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled REML (or ML) deviance, -2 logLik at the profiled beta and sigma; inf where undefined."""
        try:
            return self._factor(theta)["deviance"]
        except np.linalg.LinAlgError:
            return np.inf

    # -- estimates at a given theta

    def solve(self, theta: np.ndarray) -> Solution:
        """Fixed effects, variance components, conditional modes and conditional SDs at theta.

        The conditional SDs are lme4's ``ranef(condVar = TRUE)``: square roots of the diagonal of
        sigma2 Lambda A^-1 Lambda', from the diagonal blocks of the inverse of the whole factor.
        """
        theta = np.asarray(theta, dtype=float)
        f = self._factor(theta)
        first, p, H = self.factors[0], self.p, f["H"]
        dof = self.n - p if self.reml else self.n
        sigma2 = f["r2"] / dof
        Fxx = f["F"][:p, :p]
        beta = np.linalg.solve(Fxx, f["F"][:p, p])
        residual = np.append(-beta, 1.0)  # [X y] @ residual = y - X beta
        c1 = np.einsum("rmj,m->rj", self.ZtXY1, residual)
        var1 = np.einsum("rrj->rj", H).copy()
        b2 = var2 = np.zeros(0)
        if self.q2:
            U, lams = f["U"], f["lams"]
            u2 = linalg.cho_solve((U, False), f["rhs"] @ residual, check_finite=False)
            b2 = lambda_rows(u2[:, None], self.rest, [lam.T for lam in lams], self.offsets)[:, 0]
            c1 -= (self.G.T @ b2).reshape(first.n_levels, first.q).T
            P = self._conditional_dense(U, lams)
            var2 = np.diag(P).copy()
            K = self.pairs.diagonal_blocks(P, first.q)
            var1 += np.einsum("rkj,jkl,lrj->rj", H, K, H)  # diag of H_j K_j H_j
        b1 = np.einsum("rcj,cj->rj", H, c1)
        sds = (np.sqrt(sigma2 * np.maximum(var1, 0.0)), np.sqrt(sigma2 * np.maximum(var2, 0.0)))
        return Solution(
            theta=theta,
            deviance=f["deviance"],
            beta=beta + self.beta_offset,
            sigma2=float(sigma2),
            beta_cov=sigma2 * np.linalg.inv(Fxx),
            covariances=theta_to_covariances(theta, self.sizes, sigma2),
            modes=self._per_block(b1, b2),
            conditional_sds=self._per_block(*sds),
        )

    @single_thread()
    def _conditional_dense(self, U: np.ndarray, lams: list[np.ndarray]) -> np.ndarray:
        """P = Lambda2 S^-1 Lambda2' (lower triangle), from the dense block's Cholesky factor."""
        inverse, info = linalg.lapack.dpotri(U, lower=0)
        if info:
            raise np.linalg.LinAlgError(f"dense block not invertible (LAPACK info {info})")
        # dpotri filled the upper triangle of the Fortran-ordered matrix: the lower one of its transpose.
        return sandwich(inverse.T.copy(), self.rest, [lam.T for lam in lams], self.offsets)

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


# --------------------------------------------------------------------------- optimization

# A solution counts as converged when the optimizer stopped cleanly and either the projected
# central-difference gradient (deviance units) is below GRADIENT_TOLERANCE or the deviance a
# Newton step along the coordinates would still gain is below NEWTON_DECREMENT_TOLERANCE (as in
# lmmflow.reml: at a trust-region radius of 1e-5 a gradient of ~1e-3 is rounding-level progress).
GRADIENT_TOLERANCE = 1e-3
NEWTON_DECREMENT_TOLERANCE = 1e-6
# A final trust-region radius of 1e-5 puts theta within ~1e-6 of lme4's on InstEval (logLik within
# 1e-8) in 67 evaluations; 1e-7 takes 77.
COBYQA_OPTIONS = dict(final_tr_radius=1e-5, maxfev=2000)


def coordinate_derivatives(model: BlockedREML, theta: np.ndarray, value: float) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference first and second derivatives along each coordinate (2 evaluations each).

    ``value`` is the deviance at theta. On a bound the step goes inwards only (forward
    difference), and the second derivative is reported as NaN.
    """
    grad, curvature = np.zeros(len(theta)), np.full(len(theta), np.nan)
    for j in range(len(theta)):
        step = 1e-4 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] = max(theta[j] - step, model.lower_bounds[j])
        f_up, f_down = model.deviance(up), model.deviance(down)
        grad[j] = (f_up - f_down) / (up[j] - down[j])
        if down[j] < theta[j] - 0.5 * step:
            curvature[j] = (f_up - 2.0 * value + f_down) / step**2
    return grad, curvature


def _attempt(name: str, model: BlockedREML, result, seconds: float) -> dict:
    """One optimizer run and its convergence checks (projected gradient, coordinate Newton decrement)."""
    theta, value = np.asarray(result.x, dtype=float), float(result.fun)
    grad, curvature = coordinate_derivatives(model, theta, value)
    free = ~((theta <= model.lower_bounds + 1e-10) & (grad > 0))  # not held at a bound
    grad_norm = float(np.max(np.abs(grad[free]), initial=0.0))
    decrement = float(np.sum(grad[free] ** 2 / (2.0 * curvature[free]))) if np.all(curvature[free] > 0) else np.inf
    return dict(
        optimizer=name,
        reml_criterion=float(value),
        grad_norm=grad_norm,
        newton_decrement=decrement,
        converged=bool(result.success) and (grad_norm < GRADIENT_TOLERANCE or decrement < NEWTON_DECREMENT_TOLERANCE),
        message=str(result.message),
        n_evaluations=int(result.nfev),
        seconds=seconds,
        theta=theta,
    )


def optimize_theta(model: BlockedREML, start: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
    """Minimize the profiled deviance from lme4's start (or ``start``) with SciPy's COBYQA.

    COBYQA is Powell's derivative-free trust-region method with bounds, the successor of the
    BOBYQA lme4 and MixedModels.jl use. A second run from its solution, with a fresh trust
    region, follows when the first did not converge.
    """
    start = default_start(model.sizes) if start is None else np.asarray(start, float)
    bounds = optimize.Bounds(model.lower_bounds, np.full(model.n_theta, np.inf))
    attempts = []
    for name in ("COBYQA", "COBYQA restart"):
        clock = time.perf_counter()
        result = optimize.minimize(model.deviance, start, method="COBYQA", bounds=bounds, options=COBYQA_OPTIONS)
        attempts.append(_attempt(name, model, result, time.perf_counter() - clock))
        if attempts[-1]["converged"]:
            break
        start = attempts[-1]["theta"]
    return min(attempts, key=lambda a: a["reml_criterion"])["theta"], attempts


def fit_blocked(design: Design, reml: bool = True, start: np.ndarray | None = None) -> Estimates:
    """REML (or ML) fit of any design on the blocked Cholesky engine; every number on lme4's scale."""
    model = BlockedREML(design, reml=reml)
    theta, attempts = optimize_theta(model, start)
    best = min(attempts, key=lambda a: a["reml_criterion"])
    solution = model.solve(theta)
    return from_solution(solution, best, attempts, "blocked", "blocked engine")
