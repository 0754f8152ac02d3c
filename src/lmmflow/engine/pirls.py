"""PIRLS and the Laplace deviance of a GLMM as a function of (theta, beta), with its exact gradient,
and lme4's joint PIRLS of u and beta (the nAGQ = 0 stage). See ``lmmflow.engine.glmm`` for the method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmflow.engine.glmm_blocks import BlockedStructure
from lmmflow.engine.glmm_design import GLMMDesign
from lmmflow.engine.parameters import lower_triangle_indices, theta_lower_bounds

PIRLS_TOLERANCE = 1e-11  # max |Newton step| of u at convergence (lme4's tolPwrss is 1e-7 on pwrss)
PIRLS_MAX_ITER = 200


@dataclass
class State:
    """Everything at the conditional modes for one (theta, beta)."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    M1: np.ndarray
    vals2: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    w: np.ndarray
    dw: np.ndarray
    d1: np.ndarray
    half_d2: np.ndarray
    factor: object
    deviance: float  # the Laplace deviance f
    pwrss: float
    iterations: int


class GLMMProblem:
    """The Laplace deviance of one model as a function of (theta, beta), with its exact gradient."""

    def __init__(self, gd: GLMMDesign):
        self.gd = gd
        self.family = gd.family
        self.X = gd.design.X
        self.structure = BlockedStructure(gd.design)
        self.sizes = self.structure.sizes
        self.n_theta = self.structure.theta_size
        self.p = self.X.shape[1]
        self.lower = np.concatenate([theta_lower_bounds(self.sizes), np.full(self.p, -np.inf)])
        self.u = np.zeros(self.structure.q)  # warm start of PIRLS
        self.n_evaluations = 0
        self.n_gradients = 0
        self.pirls_iterations = 0
        self.pirls_failures = 0  # PIRLS runs stopped by max_iter (lme4: "pwrssUpdate did not converge")
        self.last_converged = True
        self._tangent = None
        self._cache = None  # (params, f, gradient, state, tangent) of the last value_and_gradient
        self.sum_deviance, self.sum_aic = gd.family.evaluators(gd.y, gd.weights, gd.trials)

    def group_indicator(self):
        """Sparse (levels of the first term) x n indicator matrix (for sums per group)."""
        if getattr(self, "_indicator", None) is None:
            from scipy import sparse

            S = self.structure
            self._indicator = sparse.csr_matrix((np.ones(S.n), (S.codes1, np.arange(S.n))), shape=(S.n1, S.n))
        return self._indicator

    # ----------------------------------------------------------------- PIRLS for u at (theta, beta)
    def state(self, theta, beta, u0=None, tolerance=PIRLS_TOLERANCE, max_iter=PIRLS_MAX_ITER) -> State:
        S, fam, gd = self.structure, self.family, self.gd
        theta = np.asarray(theta, float)
        beta = np.asarray(beta, float)
        M1, vals2 = S.rows(theta)
        fixed = self.X @ beta + gd.offset
        if u0 is None and self._tangent is not None:
            # first-order prediction of the modes from the last gradient: u + du/dphi (phi - phi_0)
            at, u_at, du = self._tangent
            u0 = u_at + du @ (np.concatenate([theta, beta]) - at)
            self._tangent = None
        u = (self.u if u0 is None else u0).copy()
        eta = fixed + S.times(M1, vals2, u)
        mu, mu_eta, w, dw, d1, hd2 = fam.pieces(eta, gd.y, gd.weights)
        pwrss = float(self.sum_deviance(mu) + u @ u)
        if not np.isfinite(pwrss) and np.any(u):  # a warm start from far away: start at u = 0
            u = np.zeros_like(u)
            eta = fixed.copy()
            mu, mu_eta, w, dw, d1, hd2 = fam.pieces(eta, gd.y, gd.weights)
            pwrss = float(self.sum_deviance(mu))
        iterations = 0
        step_size = np.inf
        while True:
            F = S.factor(M1, vals2, w)
            step = S.solve(F, -0.5 * S.transpose_times(M1, vals2, d1) - u)
            step_size = float(np.max(np.abs(step))) if len(step) else 0.0
            if step_size <= tolerance * max(1.0, float(np.max(np.abs(u))) if len(u) else 1.0) or iterations >= max_iter:
                break
            iterations += 1
            factor = 1.0
            if step_size < 1e-5:  # near the mode Newton's step is exact to rounding: take it
                u = u + step
                eta = fixed + S.times(M1, vals2, u)
                mu, mu_eta, w, dw, d1, hd2 = fam.pieces(eta, gd.y, gd.weights)
                pwrss = float(self.sum_deviance(mu) + u @ u)
                continue
            for _ in range(30):
                u_new = u + factor * step
                eta_new = fixed + S.times(M1, vals2, u_new)
                pieces = fam.pieces(eta_new, gd.y, gd.weights)
                pwrss_new = float(self.sum_deviance(pieces[0]) + u_new @ u_new)
                if np.isfinite(pwrss_new) and (pwrss_new <= pwrss * (1 + 1e-15) + 1e-300 or not np.isfinite(pwrss)):
                    break
                factor /= 2.0
            else:  # no decrease along the Newton direction: converged to rounding
                break
            u, eta, pwrss = u_new, eta_new, pwrss_new
            mu, mu_eta, w, dw, d1, hd2 = pieces
        self.pirls_iterations += iterations
        self.last_converged = iterations < max_iter
        self.pirls_failures += 0 if self.last_converged else 1
        self.u = u
        self.n_evaluations += 1
        aic = float(self.sum_aic(mu))
        return State(theta, beta, u, M1, vals2, eta, mu, w, dw, d1, hd2, F, aic + u @ u + F.logdet, pwrss, iterations)

    def deviance(self, params) -> float:
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        try:
            return self.state(theta, beta).deviance
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf

    # ----------------------------------------------------------------- exact gradient
    def gradient(self, st: State) -> np.ndarray:
        """d f / d (theta, beta) at the modes of ``st`` (implicit differentiation of u)."""
        S, fam = self.structure, self.family
        self.n_gradients += 1
        M1, vals2, u = st.M1, st.vals2, st.u
        F = st.factor
        H = F if fam.canonical else S.factor(M1, vals2, st.half_d2)
        inv = S.inverse_parts(F)
        gath = S.gathered(inv)
        h = S.bilinear(gath, M1, vals2, M1, vals2)
        n = S.n
        P = self.n_theta + self.p
        s0 = np.empty((n, P))
        rhs = np.zeros((S.q, P))
        trace = np.zeros(P)
        j = 0
        for b, (block, q) in enumerate(zip(S.blocks, self.sizes)):
            rows, cols = lower_triangle_indices(q)
            offset = S.offsets[b]
            codes = block.level_codes
            for r, c in zip(rows, cols):
                zr = block.Z[:, r]
                pos = offset + codes * q + c  # u index of each row's (level, effect c)
                s0[:, j] = zr * u[pos]
                rhs[:, j] = 0.0
                rhs[:, j] += np.bincount(pos, zr * st.d1, S.q) * 0.5
                y1 = np.zeros_like(M1)
                y2 = np.zeros_like(vals2)
                if b == 0:
                    y1[:, c] = zr
                else:
                    y2[:, S.starts2[b - 1] + c] = zr
                trace[j] = 2.0 * np.sum(st.w * S.bilinear(gath, M1, vals2, y1, y2))
                j += 1
        s0[:, self.n_theta :] = self.X
        Mt = S.sparse_transpose(M1, vals2)
        rhs += Mt @ (st.half_d2[:, None] * s0)
        du = -S.solve(H, rhs)
        self._tangent = (np.concatenate([st.theta, st.beta]), st.u.copy(), du)
        s = s0 + Mt.T @ du
        return st.d1 @ s0 + trace + (h * st.dw) @ s

    def value_and_gradient(self, params):
        params = np.asarray(params, float)
        cached = self._cache
        if cached is not None and np.array_equal(cached[0], params):
            _, f, g, st, tangent = cached
            self.u, self._tangent = st.u.copy(), tangent
            return f, g.copy()
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        try:
            st = self.state(theta, beta)
            if not np.isfinite(st.deviance):
                return np.inf, np.zeros_like(params)
            g = self.gradient(st)
            self._cache = (params.copy(), st.deviance, g.copy(), st, self._tangent)
            return st.deviance, g
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            self.u = np.zeros_like(self.u)
            return np.inf, np.zeros_like(params)

    def solution_state(self, params) -> tuple[State, np.ndarray]:
        """The state and exact gradient at ``params`` (from the cache when just evaluated)."""
        f, g = self.value_and_gradient(params)
        return self._cache[3], g

    def hessian(self, params, relative_step=1e-4, central=True) -> np.ndarray:
        """Central (or forward) differences of the exact gradient (symmetrised)."""
        k = len(params)
        H = np.empty((k, k))
        u_keep = self.u.copy()
        tangent = self._tangent
        if not central:
            g0 = self.value_and_gradient(params)[1]
            u_keep, tangent = self.u.copy(), self._tangent
            for i in range(k):
                h = relative_step * max(1.0, abs(params[i]))
                up = params.copy()
                up[i] += h
                self.u, self._tangent = u_keep.copy(), tangent
                H[:, i] = (self.value_and_gradient(up)[1] - g0) / h
            self.u, self._tangent = u_keep, tangent
            return 0.5 * (H + H.T)
        for i in range(k):
            h = relative_step * max(1.0, abs(params[i]))
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            self.u, self._tangent = u_keep.copy(), tangent
            gu = self.value_and_gradient(up)[1]
            self.u, self._tangent = u_keep.copy(), tangent
            gd_ = self.value_and_gradient(down)[1]
            H[:, i] = (gu - gd_) / (2 * h)
        self.u, self._tangent = u_keep, tangent
        return 0.5 * (H + H.T)


def joint_pirls(problem: GLMMProblem, theta, beta0, u0=None, tolerance=PIRLS_TOLERANCE, max_iter=PIRLS_MAX_ITER):
    """PIRLS for u and beta together at given theta (lme4's nAGQ = 0 stage): Fisher scoring on the
    penalized deviance with the blocked factor for u and the Schur complement
    RX'RX = X'WX - X'WM A^-1 M'WX for beta, step halving as lme4. Returns (state, beta, RX'RX)."""
    S, fam, gd, X = problem.structure, problem.family, problem.gd, problem.X
    theta = np.asarray(theta, float)
    beta = np.asarray(beta0, float).copy()
    M1, vals2 = S.rows(theta)
    u = np.zeros(S.q) if u0 is None else np.asarray(u0, float).copy()

    def evaluate(u, beta):
        eta = X @ beta + gd.offset + S.times(M1, vals2, u)
        pieces = fam.pieces(eta, gd.y, gd.weights)
        return eta, pieces, float(problem.sum_deviance(pieces[0]) + u @ u)

    eta, pieces, pwrss = evaluate(u, beta)
    iteration = 0
    for iteration in range(max_iter):  # noqa: B007 (the count is reported)
        mu, mu_eta, w, dw, d1, hd2 = pieces
        F = S.factor(M1, vals2, w)
        Mt = S.sparse_transpose(M1, vals2)
        C = np.asarray(Mt @ (w[:, None] * X))
        AinvC = S.solve(F, C)
        RXtRX = X.T @ (w[:, None] * X) - C.T @ AinvC
        score_u = -0.5 * (Mt @ d1) - u
        score_b = -0.5 * (X.T @ d1)
        Ainv_su = S.solve(F, score_u)
        step_b = np.linalg.solve(RXtRX, score_b - C.T @ Ainv_su)
        step_u = Ainv_su - AinvC @ step_b
        size = max(float(np.max(np.abs(step_u))) if len(step_u) else 0.0, float(np.max(np.abs(step_b))))
        if size <= tolerance * max(1.0, float(np.max(np.abs(np.concatenate([u, beta]))))):
            break
        scale = 1.0
        while True:
            new = evaluate(u + scale * step_u, beta + scale * step_b)
            if size < 1e-5 or (np.isfinite(new[2]) and new[2] <= pwrss * (1 + 1e-15)) or scale < 1e-6:
                break
            scale /= 2.0
        u, beta = u + scale * step_u, beta + scale * step_b
        eta, pieces, pwrss = new
    mu, mu_eta, w, dw, d1, hd2 = pieces
    F = S.factor(M1, vals2, w)
    deviance = float(problem.sum_aic(mu) + u @ u + F.logdet)
    state = State(theta, beta, u, M1, vals2, eta, mu, w, dw, d1, hd2, F, deviance, pwrss, iteration)
    return state, beta, RXtRX
