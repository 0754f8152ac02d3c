"""Fast, exact profiled (RE)ML fitting of models whose random terms nest in one grouping factor.

The method is lme4's (Bates et al. 2015, sec. 3): the deviance is profiled over beta and sigma,
leaving only the relative covariance factors theta. Because every random term nests in the
top-level factor, Lambda' Z'Z Lambda + I is block diagonal with one small (d x d) block per
top-level group, so each evaluation is a batch of tiny Cholesky factorizations. They run
"groups-last": every array has the group index as its final, contiguous axis, and the
factorization loops over the d matrix positions (d is small) instead of over the groups.

Local layout of one group's random effects: block b occupies ``n_slots_b * q_b`` consecutive
positions, one slot of q_b effects per level of the block that lies in the group (one slot for
a block on the top-level factor, one per cell for a nested block). Groups with fewer cells than
the maximum leave slots empty: their Z'Z rows are zero, so Lambda'Z'Z Lambda + I is the identity
there and contributes nothing to the deviance.

Gradient (used by L-BFGS-B): with V = I + Z Lambda Lambda' Z' (relative marginal covariance)
and dV/dtheta_j = Z S_j Z', S_j = E_j Lambda' + Lambda E_j', the REML deviance has
    d dev / d theta_j = tr(S_j Q),  Q = sum_g [Z'V^-1 Z - K_g F^-1 K_g' - (n-p)/r2 k_g k_g'],
where K_g = Z_g'V_g^-1 X_g, k_g = Z_g'V_g^-1 (y_g - X_g beta), F = X'V^-1 X = RX'RX and r2 the
penalized residual sum of squares. (For ML drop the K term and use n instead of n - p.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from lmmflow.engine.batched import (
    backward_substitute_transposed,
    batched_cholesky,
    forward_substitute,
    lambda_transpose_times,
)
from lmmflow.engine.criterion import PLSState
from lmmflow.engine.estimates import Estimates, from_solution
from lmmflow.engine.parameters import (
    block_theta_size,
    default_start,
    lower_triangle_indices,
    theta_lower_bounds,
    theta_to_covariances,
)
from lmmflow.model.design import Design

LOG_2PI = np.log(2.0 * np.pi)
# Projected-gradient size (deviance units) below which a solution counts as converged.
GRADIENT_TOLERANCE = 1e-3
# ... or, when rounding noise in a large data set's deviance keeps the gradient above that, a
# Newton decrement (deviance still to gain by a Newton step) below this counts as converged.
NEWTON_DECREMENT_TOLERANCE = 1e-6
# Run the derivative-free fallback (FALLBACK_EVALUATIONS per theta entry at most) regardless of
# need when its work, in units of G d^2 (d + p + 1) per evaluation, is below CHEAP_FALLBACK_WORK
# (~0.2 s; all the chapter's models), and for singular solutions, whose flat, bound-constrained
# directions deserve a second, derivative-free opinion, below SINGULAR_FALLBACK_WORK (~1 s).
# Work, not measured time, so that which attempts run does not depend on the machine's load.
FALLBACK_EVALUATIONS = 400
CHEAP_FALLBACK_WORK = 5e7
SINGULAR_FALLBACK_WORK = 2.5e8


# --------------------------------------------------------------------------- local layout


@dataclass(frozen=True)
class LocalLayout:
    """Where each block's effects sit inside one group's local random-effect vector."""

    size: int  # d, local dimension (padded to the largest group)
    offsets: tuple[int, ...]  # first local position of each block
    level_slots: tuple[np.ndarray, ...]  # per block: slot of each of its levels within its group
    lambda_rows: np.ndarray  # local Lambda entries (row, col) and the theta index they take
    lambda_cols: np.ndarray
    lambda_theta: np.ndarray


def level_slots(parent_codes: np.ndarray) -> np.ndarray:
    """Rank of each level among the levels of the same top-level group, in level order."""
    order = np.argsort(parent_codes, kind="stable")
    sorted_parents = parent_codes[order]
    first = np.searchsorted(sorted_parents, sorted_parents, side="left")
    slots = np.empty_like(parent_codes)
    slots[order] = np.arange(len(parent_codes)) - first
    return slots


def build_layout(design: Design) -> LocalLayout:
    offsets, slots_per_block, rows, cols, which = [], [], [], [], []
    position, theta_start = 0, 0
    for block in design.blocks:
        q = block.n_effects
        slots = level_slots(np.asarray(block.parent_codes))
        n_slots = int(slots.max()) + 1 if len(slots) else 0
        tri_rows, tri_cols = lower_triangle_indices(q)
        for s in range(n_slots):
            base = position + s * q
            rows.append(base + tri_rows)
            cols.append(base + tri_cols)
            which.append(theta_start + np.arange(len(tri_rows)))
        offsets.append(position)
        slots_per_block.append(slots)
        position += n_slots * q
        theta_start += block_theta_size(q)
    return LocalLayout(
        size=position,
        offsets=tuple(offsets),
        level_slots=tuple(slots_per_block),
        lambda_rows=np.concatenate(rows),
        lambda_cols=np.concatenate(cols),
        lambda_theta=np.concatenate(which),
    )


def row_positions(design: Design, layout: LocalLayout) -> tuple[np.ndarray, np.ndarray]:
    """For each observation, the local positions of its Z entries and their values (n x r)."""
    positions, values = [], []
    for block, offset, slots in zip(design.blocks, layout.offsets, layout.level_slots):
        q = block.n_effects
        base = offset + slots[np.asarray(block.level_codes)] * q
        positions.append(base[:, None] + np.arange(q)[None, :])
        values.append(np.asarray(block.Z, dtype=float).reshape(len(base), q))
    return np.hstack(positions), np.hstack(values)


# --------------------------------------------------------------------------- the profiled deviance


@dataclass
class Solution:
    """Everything the profiled deviance determines at one theta."""

    theta: np.ndarray
    deviance: float
    beta: np.ndarray
    sigma2: float
    beta_cov: np.ndarray
    covariances: list[np.ndarray]
    modes: list[np.ndarray]
    conditional_sds: list[np.ndarray]

    def estimates(self, reml: bool, **found) -> Estimates:
        """These numbers as ``Estimates``; ``found`` says how (path, optimizer, converged, ...)."""
        return Estimates(
            beta=self.beta,
            beta_cov=self.beta_cov,
            sigma2=self.sigma2,
            covariances=self.covariances,
            modes=self.modes,
            conditional_sds=self.conditional_sds,
            loglik=-self.deviance / 2.0,
            theta=self.theta,
            reml=reml,
            **found,
        )


class ProfiledREML:
    """lme4's profiled deviance of a design as a function of theta (REML by default, ML if reml=False).

    The sufficient statistics are computed once; each ``deviance`` call costs O(G d^3).
    """

    def __init__(self, design: Design, reml: bool = True):
        self.design = design
        self.reml = reml
        self.sizes = [block.n_effects for block in design.blocks]
        self.n_theta = sum(block_theta_size(q) for q in self.sizes)
        self.lower_bounds = theta_lower_bounds(self.sizes)
        self.layout = build_layout(design)
        self._sufficient_statistics()

    @property
    def evaluation_work(self) -> float:
        """Work of one evaluation, G d^2 (d + p + 1), for choosing fallbacks (and engines)."""
        d = self.layout.size
        return self.G * d * d * (d + self.p + 1)

    # -- setup

    def _sufficient_statistics(self) -> None:
        """Per-group Z'[Z | X | y] (d, d+p+1, G) and global X'X, X'y, y'y, by bincount in O(n)."""
        design, d = self.design, self.layout.size
        X = np.asarray(design.X, dtype=float)
        # Work with y minus its OLS fit: beta shifts by the OLS coefficients and nothing else
        # changes, but y'y no longer dwarfs the penalized RSS, so r2 = y'y - ... loses far fewer
        # digits (the deviance is ~30x less noisy at 1e5 groups, which line searches need).
        self.beta_offset = np.linalg.lstsq(X, np.asarray(design.y, dtype=float), rcond=None)[0]
        y = np.asarray(design.y, dtype=float) - X @ self.beta_offset
        groups = np.asarray(design.group_codes, dtype=np.int64)
        n, p = X.shape
        G = len(design.group_levels)
        positions, values = row_positions(design, self.layout)
        r = positions.shape[1]
        c = d + p + 1
        stats = np.zeros(d * c * G)
        # Z'Z: every pair of a row's local positions; Z'X and Z'y: local position x column.
        for a in range(r):
            pos_a, val_a = positions[:, a], values[:, a]
            for b in range(r):
                index = (pos_a * c + positions[:, b]) * G + groups
                stats += np.bincount(index, val_a * values[:, b], minlength=d * c * G)
            rhs = np.column_stack([X, y])
            index = (pos_a[:, None] * c + d + np.arange(p + 1)[None, :]) * G + groups[:, None]
            stats += np.bincount(index.ravel(), (val_a[:, None] * rhs).ravel(), minlength=d * c * G)
        self.stats = stats.reshape(d, c, G)
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.n, self.p, self.G = n, p, G
        self.sum_ZtZ = self.stats[:, :d].sum(axis=2)

    def local_lambda(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.layout.size, self.layout.size))
        lam[self.layout.lambda_rows, self.layout.lambda_cols] = np.asarray(theta, float)[self.layout.lambda_theta]
        return lam

    # -- core evaluation

    def _factor(self, theta: np.ndarray) -> dict:
        """Cholesky factors and the profiled quantities at theta."""
        d, p = self.layout.size, self.p
        lam = self.local_lambda(theta)
        G = self.G
        P = lambda_transpose_times(lam, self.stats)  # Lambda' Z'[Z | X | y] per group
        A = sum(P[:, k, None, :] * lam[k, None, :, None] for k in range(d))  # P[:, :d] Lambda
        A[np.arange(d), np.arange(d)] += 1.0
        L = batched_cholesky(A)
        W = forward_substitute(L, P)  # L^-1 Lambda' Z'[Z | X | y]
        # Sums over groups of W'W give the Schur complements (X, y block) in one gemm.
        c = W.shape[1]
        Wv = W.reshape(d * c, G)
        gram = np.einsum("kakb->ab", (Wv @ Wv.T).reshape(d, c, d, c))
        xs, ys = slice(d, d + p), d + p
        F = self.XtX - gram[xs, xs]  # RX'RX
        Xy = self.Xty - gram[xs, ys]
        RX = np.linalg.cholesky(F)
        beta = np.linalg.solve(F, Xy)
        r2 = self.yty - gram[ys, ys] - beta @ Xy
        logdet_L = 2.0 * np.log(L[np.arange(d), np.arange(d)]).sum()
        dof = self.n - p if self.reml else self.n
        deviance = logdet_L + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        if self.reml:
            deviance += 2.0 * np.log(np.diag(RX)).sum()
        return dict(
            lam=lam, L=L, W=W, gram=gram, F=F, RX=RX, beta=beta, r2=r2, logdet_L=logdet_L, deviance=float(deviance)
        )

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled REML (or ML) deviance, -2 logLik at the profiled beta and sigma."""
        try:
            return self._factor(theta)["deviance"]
        except np.linalg.LinAlgError:
            return np.inf

    def pls_state(self, theta: np.ndarray) -> PLSState:
        """lme4's penalized least squares solution at theta (``lmmflow.engine.criterion.Criterion``)."""
        f = self._factor(np.asarray(theta, dtype=float))
        return PLSState(
            ldL2=float(f["logdet_L"]),
            ldRX2=float(2.0 * np.log(np.diag(f["RX"])).sum()),
            pwrss=float(f["r2"]),
            xtvx=f["F"],
        )

    def deviance_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        f = self._factor(theta)
        d, p = self.layout.size, self.p
        W, beta, lam = f["W"], f["beta"], f["lam"]
        xs, ys = slice(d, d + p), d + p
        # Per-group W[:, Z]' W[:, X | y] gives Z'Lambda A^-1 Lambda' Z'[X | y].
        cross = sum(W[k, :d, None, :] * W[k, None, d:, :] for k in range(d))
        K = self.stats[:, xs] - cross[:, :p]  # Z'V^-1 X per group (d, p, G)
        k = self.stats[:, ys] - cross[:, p] - sum(K[:, j] * beta[j] for j in range(p))  # Z'V^-1 (y - X beta)
        Q = self.sum_ZtZ - f["gram"][:d, :d]  # sum of Z'V^-1 Z
        dof = self.n - p if self.reml else self.n
        Q -= (dof / f["r2"]) * (k @ k.T)
        if self.reml and p:
            # sum_g K_g F^-1 K_g' from the one (dp x dp) gemm sum_g vec(K_g) vec(K_g)'
            Kv = K.reshape(d * p, -1)
            Q -= np.einsum("apbq,pq->ab", (Kv @ Kv.T).reshape(d, p, d, p), np.linalg.inv(f["F"]))
        QL = Q @ lam
        grad = 2.0 * np.bincount(
            self.layout.lambda_theta,
            QL[self.layout.lambda_rows, self.layout.lambda_cols],
            minlength=self.n_theta,
        )
        return f["deviance"], grad

    def held_at_bound(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Coordinates at their lower bound whose gradient pushes further down."""
        return (np.asarray(theta) <= self.lower_bounds + 1e-10) & (grad > 0)

    # -- estimates at a given theta

    def solve(self, theta: np.ndarray) -> Solution:
        """Fixed effects, variance components, conditional modes and SDs at theta."""
        theta = np.asarray(theta, dtype=float)
        f = self._factor(theta)
        d, p = self.layout.size, self.p
        L, W, lam = f["L"], f["W"], f["lam"]
        dof = self.n - p if self.reml else self.n
        sigma2 = f["r2"] / dof
        # u = L^-T (cu - C beta); b = Lambda u (local, per group).
        u = backward_substitute_transposed(L, W[:, d + p] - np.einsum("kpg,p->kg", W[:, d : d + p], f["beta"]))
        b = np.tensordot(lam, u, axes=(1, 0))
        # Conditional variance sigma2 Lambda A^-1 Lambda': diagonal = column sums of (L^-1 Lambda')^2.
        V = forward_substitute(L, lam.T)
        cond_var = sigma2 * np.einsum("kjg,kjg->jg", V, V)
        modes, sds = self._per_block(b), self._per_block(np.sqrt(np.maximum(cond_var, 0.0)))
        return Solution(
            theta=theta,
            deviance=f["deviance"],
            beta=f["beta"] + self.beta_offset,
            sigma2=float(sigma2),
            beta_cov=sigma2 * np.linalg.inv(f["F"]),
            covariances=theta_to_covariances(theta, self.sizes, sigma2),
            modes=modes,
            conditional_sds=sds,
        )

    def _per_block(self, local: np.ndarray) -> list[np.ndarray]:
        """(d, G) local values -> per block (n_levels x q) arrays in the block's level order."""
        out = []
        for block, offset, slots in zip(self.design.blocks, self.layout.offsets, self.layout.level_slots):
            q = block.n_effects
            rows = offset + slots[:, None] * q + np.arange(q)[None, :]
            out.append(local[rows, np.asarray(block.parent_codes)[:, None]])
        return out


# --------------------------------------------------------------------------- optimization


def newton_decrement(model: ProfiledREML, theta: np.ndarray) -> float:
    """g'H^-1 g / 2 over the coordinates not held at a bound: the deviance a Newton step would gain.

    H is a forward-difference Hessian of the analytic gradient (one gradient per free coordinate).
    Returns inf when H is not positive definite there (not a minimum, or too flat to tell).
    """
    _, grad = model.deviance_and_gradient(theta)
    free = ~model.held_at_bound(theta, grad)
    if not free.any():
        return 0.0
    columns = []
    for j in np.flatnonzero(free):
        step = 1e-5 * max(1.0, abs(theta[j]))
        _, shifted = model.deviance_and_gradient(theta + step * np.eye(len(theta))[j])
        columns.append((shifted - grad)[free] / step)
    hessian = np.array(columns)
    hessian = (hessian + hessian.T) / 2
    try:
        factor = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return np.inf
    scaled = np.linalg.solve(factor, grad[free])
    return float(scaled @ scaled / 2)


def _stopped_cleanly(result) -> bool:
    """The optimizer's own success flag, except that an L-BFGS-B line search failing is fine.

    With thousands of groups the deviance is ~1e5 and its rounding noise (~1e-11) defeats the line
    search once the optimum is reached to that precision; the projected-gradient check then decides.
    """
    return bool(result.success) or "ABNORMAL" in str(result.message)


def _attempt(name: str, model: ProfiledREML, result, seconds: float, curvature: np.ndarray | None = None) -> dict:
    """The record of one optimizer run, with the convergence check at its solution. ``curvature``
    (the deviance's second derivative per theta entry, estimated) replaces the finite-difference
    Hessian of the Newton decrement where a gradient is too costly to take n_theta more of."""
    theta = np.asarray(result.x, dtype=float)
    deviance, grad = model.deviance_and_gradient(theta)
    pgrad = np.where(model.held_at_bound(theta, grad), 0.0, grad)
    grad_norm = float(np.max(np.abs(pgrad))) if len(pgrad) else 0.0
    if grad_norm < GRADIENT_TOLERANCE:
        decrement = 0.0
    elif curvature is not None:
        decrement = float(np.sum(pgrad**2 / curvature) / 2)
    else:
        decrement = newton_decrement(model, theta)
    return dict(
        optimizer=name,
        reml_criterion=float(deviance),
        grad_norm=grad_norm,
        newton_decrement=decrement,
        converged=_stopped_cleanly(result)
        and (grad_norm < GRADIENT_TOLERANCE or decrement < NEWTON_DECREMENT_TOLERANCE),
        message=str(result.message),
        n_evaluations=int(result.nfev),
        seconds=seconds,
        theta=theta,
    )


def _run_lbfgsb(model: ProfiledREML, start: np.ndarray):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in model.lower_bounds]
    return optimize.minimize(
        model.deviance_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=dict(maxiter=1000, ftol=1e-14, gtol=1e-7, maxcor=20),
    )


def _run_nelder_mead(model: ProfiledREML, start: np.ndarray):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in model.lower_bounds]
    # An initial simplex of non-trivial size lets Nelder-Mead escape a point L-BFGS-B stalled at.
    step = np.maximum(0.1 * np.abs(start), 0.05)
    simplex = np.vstack([start] + [start + step[j] * np.eye(len(start))[j] for j in range(len(start))])
    return optimize.minimize(
        model.deviance,
        start,
        method="Nelder-Mead",
        bounds=bounds,
        options=dict(
            maxfev=FALLBACK_EVALUATIONS * max(1, len(start)),
            xatol=1e-8,
            fatol=1e-10,
            initial_simplex=simplex,
        ),
    )


def _escape_zero_diagonals(model: ProfiledREML, theta: np.ndarray) -> np.ndarray | None:
    """A better point off the boundary, if one of a few probes finds it; else None.

    The deviance is even in each column of a factor, so its gradient vanishes wherever a whole
    column is zero: a diagonal entry L-BFGS-B pushed to 0 looks stationary even when the
    optimum is interior. Probing a few positive values tells the two cases apart.
    """
    diagonal = np.isfinite(model.lower_bounds)
    zero = diagonal & (theta <= 1e-8)
    if not zero.any():
        return None
    best, best_value = None, model.deviance(theta)
    for value in (0.01, 0.1, 0.5, 1.0):
        probe = np.where(zero, value, theta)
        probe_value = model.deviance(probe)
        if probe_value < best_value - 1e-10 * max(1.0, abs(best_value)):
            best, best_value = probe, probe_value
    return best


def optimize_theta(model: ProfiledREML, start: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
    """Minimize the profiled deviance, keeping the best of all attempts.

    L-BFGS-B with the analytic gradient first; restarted off the boundary when a probe shows a
    zeroed diagonal was premature; then bounded Nelder-Mead from the best point when L-BFGS-B
    did not converge, when the solution is singular (flat, bound-constrained directions), or
    whenever it is cheap.
    """
    start = default_start(model.sizes) if start is None else np.asarray(start, float)
    clock = time.perf_counter()
    attempts = [_attempt("L-BFGS-B", model, _run_lbfgsb(model, start), time.perf_counter() - clock)]
    escape = _escape_zero_diagonals(model, attempts[0]["theta"])
    if escape is not None:
        clock = time.perf_counter()
        attempts.append(_attempt("L-BFGS-B restart", model, _run_lbfgsb(model, escape), time.perf_counter() - clock))
    best = _best(attempts)
    fallback_work = model.evaluation_work * FALLBACK_EVALUATIONS * max(1, model.n_theta)
    singular = np.any(best["theta"][np.isfinite(model.lower_bounds)] < 1e-4)
    if (
        not best["converged"]
        or fallback_work < CHEAP_FALLBACK_WORK
        or (singular and fallback_work < SINGULAR_FALLBACK_WORK)
    ):
        clock = time.perf_counter()
        result = _run_nelder_mead(model, best["theta"])
        attempts.append(_attempt("Nelder-Mead", model, result, time.perf_counter() - clock))
    return _best(attempts)["theta"], attempts


def _best(attempts: list[dict]) -> dict:
    """Lowest deviance; a later attempt must beat an earlier one by more than rounding noise."""
    best = attempts[0]
    for attempt in attempts[1:]:
        noise = 1e-10 * max(1.0, abs(best["reml_criterion"]))
        if attempt["reml_criterion"] < best["reml_criterion"] - noise:
            best = attempt
    return best


def fit_reml(design: Design, reml: bool = True, start: np.ndarray | None = None) -> Estimates:
    """REML (or ML) fit on the fast vectorized path; every number on lme4's scale."""
    model = ProfiledREML(design, reml=reml)
    theta, attempts = optimize_theta(model, start)
    solution = model.solve(theta)
    best = _best(attempts)
    return from_solution(solution, best, attempts, "fast", "fast REML path", reml)
