"""Generalized linear mixed models fitted as lme4's ``glmer`` does, to its optimum.

Method (lme4's; Bates et al., lme4 vignette "Computational methods"): for given (theta, beta)
penalized iteratively reweighted least squares (PIRLS) finds the conditional modes u of the
spherical random effects, the minimum of sum dev(y, mu) + ||u||^2 with
eta = X beta + Z Lambda u + offset; the Laplace deviance is

    f(theta, beta) = aic(y, mu) + ||u||^2 + log det(L)^2,   L L' = Lambda'Z'WZ Lambda + I,

with lme4's ``aic`` (-2 log-likelihood with its normalising constant) and W the GLM (Fisher)
working weights at the modes. lme4 optimizes theta at nAGQ = 0, then (theta, beta) together
with derivative-free bobyqa and Nelder-Mead, and stops 2e-5 to 5e-4 short of the optimum at
its default PIRLS tolerance. Here PIRLS converges to rounding, and (theta, beta) are optimized
together with BFGS on the EXACT gradient of f (implicit differentiation of the modes:
d u / d phi = -H^-1 d(score)/d phi, H the observed penalized Hessian, and the derivative of
log det through W), then polished by Newton steps on a Hessian from central differences of
that gradient, and the gradient checked. The same Hessian gives lme4's default vcov (inverse
of half the Hessian of f over (theta, beta)). Adaptive Gauss-Hermite quadrature (nAGQ > 1)
is in ``lmmflow.engine.quadrature``.

The factor is blocked (``lmmflow.engine.glmm_blocks``): the first term's block is
block-diagonal, the others a dense Schur complement; W only rescales rows of Z Lambda.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lmmflow.engine.blas import single_thread
from lmmflow.engine.families import Family, GLMMError, get_family
from lmmflow.engine.glmm_blocks import BlockedStructure
from lmmflow.engine.parameters import default_start, lower_triangle_indices, theta_lower_bounds, theta_to_factors
from lmmflow.model.design import Design, build_design
from lmmflow.model.response import glmm_response, offset_values, split_offsets

RESPONSE_COLUMN = "lmmflow_glmm_response"
BFGS_GTOL = 1e-4  # max |gradient| where the Newton polish takes over
PIRLS_TOLERANCE = 1e-11  # max |Newton step| of u at convergence (lme4's tolPwrss is 1e-7 on pwrss)
PIRLS_MAX_ITER = 200


class SeparationWarning(UserWarning):
    """Estimates growing without bound (complete separation): the named term is not identified."""


# --------------------------------------------------------------------------- the model's data


@dataclass(frozen=True)
class GLMMDesign:
    """``design`` (X, random blocks) and the GLM parts: response ``y`` (binomial: proportion),
    prior ``weights``, binomial ``trials`` (R's aic m), ``offset``; ``formula`` as given."""

    formula: str
    design: Design
    family: Family
    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    offsets: tuple[str, ...]
    response_kind: str
    response_text: str

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return tuple("(Intercept)" if n == "Intercept" else n for n in self.design.fixed_names)


def glmm_design(
    formula: str, data: pd.DataFrame, family: str = "binomial", link: str | None = None, weights=None
) -> GLMMDesign:
    """Response, offset, prior weights and design matrices of a glmer formula on ``data``.

    Rows with a missing value in any model column (response, offset, weights included) are
    dropped, as lme4's na.omit model frame."""
    fam = get_family(family, link)
    text, offsets = split_offsets(formula)
    if text.count("~") != 1:
        raise GLMMError(f"formula {formula!r}: expected exactly one '~'")
    lhs, rhs = (part.strip() for part in text.split("~"))
    if not lhs:
        raise GLMMError(f"formula {formula!r}: no response left of '~'")
    data = data.reset_index(drop=True)
    response = glmm_response(lhs, data, fam.name, weights)
    offset = offset_values(offsets, data)
    y = response.y.copy()
    missing = np.isnan(offset) | np.isnan(response.weights)
    y[missing] = np.nan
    frame = data.copy()
    if RESPONSE_COLUMN in frame.columns:
        raise GLMMError(f"data must not have a column named {RESPONSE_COLUMN!r}")
    frame[RESPONSE_COLUMN] = y
    internal = f"{RESPONSE_COLUMN} ~ {rhs}"
    try:
        design = build_design(internal, frame, allow_n=True)
    except ValueError as error:  # DesignError / FormulaError: name the user's formula, not ours
        message = str(error).replace(repr(internal), repr(formula)).replace(RESPONSE_COLUMN, lhs)
        raise GLMMError(message) from None
    rows = design.rows
    design = _renamed(design, lhs)
    return GLMMDesign(
        formula=formula,
        design=design,
        family=fam,
        y=design.y,
        weights=response.weights[rows],
        trials=response.trials[rows],
        offset=offset[rows],
        offsets=tuple(offsets),
        response_kind=response.kind,
        response_text=lhs,
    )


def _renamed(design: Design, response: str) -> Design:
    from dataclasses import replace

    return replace(design, response=response)


# --------------------------------------------------------------------------- PIRLS and the Laplace deviance


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


# --------------------------------------------------------------------------- lme4's first stage (nAGQ = 0)


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


def optimize_stage1(problem: GLMMProblem, theta0, beta0):
    """lme4's first stage: theta minimizing the nAGQ = 0 deviance (beta and u by joint PIRLS);
    bounded Nelder-Mead (Brent for one parameter). Returns (theta, beta, record)."""
    nt = problem.n_theta
    memo = {"u": None, "beta": np.asarray(beta0, float)}
    lower = problem.lower[:nt]

    def f(theta):
        theta = np.atleast_1d(np.asarray(theta, float))
        if np.any(theta < lower):
            return np.inf
        try:
            st, beta, _ = joint_pirls(problem, theta, memo["beta"], memo["u"])
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        if np.isfinite(st.deviance):
            memo["u"], memo["beta"] = st.u, beta
        return st.deviance

    if nt == 1:
        result = optimize.minimize_scalar(
            lambda t: f([t]), bracket=(float(theta0[0]), float(theta0[0]) * 0.5 + 0.01), tol=1e-8
        )
        theta, fun, nfev = np.array([abs(result.x)]), float(result.fun), int(result.nfev)
    else:
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        result = optimize.minimize(
            f, theta0, method="Nelder-Mead", bounds=bounds, options={"xatol": 1e-7, "fatol": 1e-10}
        )
        theta, fun, nfev = np.asarray(result.x), float(result.fun), int(result.nfev)
    st, beta, _ = joint_pirls(problem, theta, memo["beta"], memo["u"])
    return theta, beta, {"method": "nAGQ = 0 stage (joint PIRLS of u and beta)", "fun": fun, "nfev": nfev}


# --------------------------------------------------------------------------- starting values


def glm_start(gd: GLMMDesign) -> np.ndarray:
    """The GLM fit without random effects (R's glm.fit IRLS), lme4's start for beta."""
    fam, X = gd.family, gd.design.X
    mu = fam.starting_mu(gd.y, gd.weights)
    eta = fam.link.linkfun(mu)
    beta = np.zeros(X.shape[1])
    previous = np.inf
    for _ in range(100):
        mu, mu_eta, *_ = fam.link.inverse(eta)
        var = fam.variance(mu)
        z = eta - gd.offset + (gd.y - mu) / mu_eta
        w = gd.weights * mu_eta**2 / var
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta = X @ beta + gd.offset
        dev = float(np.sum(fam.unit_deviance(gd.y, fam.link.inverse(eta)[0], gd.weights)))
        if abs(dev - previous) <= 1e-10 * (abs(dev) + 0.1):
            break
        previous = dev
    return beta


# --------------------------------------------------------------------------- the fit


@dataclass
class GLMMFit:
    """A fitted GLMM, everything lme4's ``summary(glmer(...))`` and ``ranef(condVar = TRUE)`` give."""

    formula: str
    family: str
    link: str
    nAGQ: int
    n: int
    ngrps: dict
    fixed_names: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    theta_names: tuple[str, ...]
    varcorr: list[dict]
    logLik: float  # on the usual scale (nAGQ > 1: with the binomial / Poisson normalising constant)
    deviance_lme4: float  # sum of squared deviance residuals at the modes (lme4's deviance())
    objective: float  # the minimized criterion (Laplace deviance; nAGQ > 1: lme4's AGQ deviance)
    npar: int
    u: np.ndarray
    ranef: dict  # grouping label -> DataFrame of modes (levels x effects)
    ranef_sd: dict  # grouping label -> DataFrame of conditional SDs
    eta: np.ndarray
    mu: np.ndarray
    optimizer: dict
    verification: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    logLik_lme4: float | None = None  # lme4 1.1-31's nAGQ > 1 value (no normalising constant)
    hessian: np.ndarray | None = None
    theta_diagonal: np.ndarray | None = None  # which entries of theta are diagonal (SD-like)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    @property
    def z(self) -> np.ndarray:
        return self.beta / self.se

    @property
    def p_values(self) -> np.ndarray:
        return 2 * stats.norm.sf(np.abs(self.z))

    @property
    def is_singular(self) -> bool:
        """lme4's ``isSingular(m, tol = 1e-4)``: a diagonal entry of theta below 1e-4."""
        return bool(np.any(np.abs(self.theta[self.theta_diagonal]) < 1e-4))

    @property
    def AIC(self) -> float:
        return -2 * self.logLik + 2 * self.npar

    @property
    def BIC(self) -> float:
        return -2 * self.logLik + self.npar * math.log(self.n)

    @property
    def AICc(self) -> float:
        return self.AIC + 2 * self.npar * (self.npar + 1) / max(self.n - self.npar - 1, 1)

    @property
    def deviance(self) -> float:
        """-2 logLik (lme4's anova 'deviance' column)."""
        return -2 * self.logLik

    def coefficients(self) -> pd.DataFrame:
        """lme4's ``summary()`` table: Estimate, Std. Error, z value, Pr(>|z|)."""
        return pd.DataFrame(
            {"Estimate": self.beta, "Std. Error": self.se, "z value": self.z, "Pr(>|z|)": self.p_values},
            index=list(self.fixed_names),
        )

    def confint_wald(self, level: float = 0.95) -> pd.DataFrame:
        """lme4's ``confint(m, method = "Wald")`` for the fixed effects."""
        z = stats.norm.ppf(0.5 + level / 2)
        lo, hi = f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"
        return pd.DataFrame({lo: self.beta - z * self.se, hi: self.beta + z * self.se}, index=list(self.fixed_names))

    def coef(self) -> dict:
        """lme4's ``coef()``: per grouping factor, fixed effects plus that factor's modes."""
        out = {}
        fixed = pd.Series(self.beta, index=list(self.fixed_names))
        for label, modes in self.ranef.items():
            table = pd.DataFrame(np.tile(self.beta, (len(modes), 1)), index=modes.index, columns=list(self.fixed_names))
            for column in modes.columns:
                table[column] = (fixed.get(column, 0.0) + modes[column]).to_numpy()
            out[label] = table
        return out

    def fitted(self, scale: str = "response") -> np.ndarray:
        return self.mu if scale == "response" else self.eta

    def record(self) -> dict:
        """What a fit.json stores about the fit: criterion, optimizer runs, checks."""
        return {
            "family": self.family,
            "link": self.link,
            "nAGQ": self.nAGQ,
            "logLik": self.logLik,
            "logLik_lme4_scale": self.logLik_lme4,
            "objective": self.objective,
            "optimizer": self.optimizer,
            "is_singular": self.is_singular,
            "verification": self.verification,
            "warnings": list(self.warnings),
        }


def check_nagq(gd: GLMMDesign, nAGQ: int) -> int:
    try:
        nAGQ = int(nAGQ)
    except (TypeError, ValueError):
        raise GLMMError(f"nAGQ must be an integer, got {nAGQ!r}") from None
    if nAGQ < 0:
        raise GLMMError(
            f"nAGQ = {nAGQ}: use 0 (lme4's fast approximation), 1 (Laplace) or more (adaptive Gauss-Hermite)"
        )
    if nAGQ > 1:
        blocks = gd.design.blocks
        if len(blocks) != 1 or blocks[0].n_effects != 1:
            terms = ", ".join(b.term for b in blocks)
            raise GLMMError(
                f"formula {gd.formula!r}: nAGQ = {nAGQ} needs a single scalar random-effect term (as lme4); "
                f"found {terms}"
            )
    return nAGQ


def fit_glmm(gd: GLMMDesign, nAGQ: int = 1, start: dict | None = None) -> GLMMFit:
    """Fit a GLMM to lme4's optimum: Laplace (nAGQ = 1), adaptive Gauss-Hermite (nAGQ > 1, one
    scalar term) or lme4's fast nAGQ = 0 approximation (theta only, beta by joint PIRLS).

    ``start``: ``{"theta": ..., "beta": ...}`` (default lme4's: theta 1, beta of the GLM), or
    ``"nAGQ0"`` for lme4's two stages (the nAGQ = 0 fit as the start of the nAGQ = 1 fit)."""
    nAGQ = check_nagq(gd, nAGQ)
    with single_thread():  # small dense factors: OpenBLAS threads only spin (lmmflow.engine.blas)
        return _fit_glmm(gd, nAGQ, start)


def _fit_glmm(gd: GLMMDesign, nAGQ: int, start: dict | None) -> GLMMFit:
    started = time.perf_counter()
    problem = GLMMProblem(gd)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen, np.errstate(over="ignore", under="ignore"):
        warnings.simplefilter("always")
        if nAGQ == 0:
            params, record = fit_nagq0(problem)
        else:
            params, record = optimize_laplace(problem, start)
        if nAGQ > 1:
            from lmmflow.engine.quadrature import optimize_agq

            params, record, agq = optimize_agq(problem, params, nAGQ, record)
        caught = [str(w.message) for w in seen]
    fit = summarize(problem, params, nAGQ, record)
    fit.warnings.extend(caught)
    fit.optimizer["seconds"] = time.perf_counter() - started
    _check_separation(problem, fit)
    return fit


def fit_nagq0(problem: GLMMProblem):
    """lme4's nAGQ = 0 fit: the first stage alone (theta by the nAGQ = 0 deviance, beta and u by
    joint PIRLS); vcov from RX'RX as lme4's for this fit."""
    from lmmflow.engine.quadrature import fd_gradient, fd_hessian

    theta, beta, run = optimize_stage1(problem, default_start(problem.sizes), glm_start(problem.gd))
    memo = {"u": None, "beta": beta}

    def f(t):
        st, b, _ = joint_pirls(problem, t, memo["beta"], memo["u"])
        return st.deviance

    st, beta, RXtRX = joint_pirls(problem, theta, beta)
    memo["u"] = st.u
    g, H = fd_gradient(f, theta), fd_hessian(f, theta)
    st, beta, RXtRX = joint_pirls(problem, theta, beta, st.u)
    record = {
        "runs": [run],
        "newton": {"steps": [], "hessian": H},
        "nagq0": {"state": st, "gradient": g, "vcov": np.linalg.inv(RXtRX)},
    }
    return np.concatenate([theta, beta]), record


def optimize_laplace(problem: GLMMProblem, start: dict | str | None = None):
    """BFGS on the exact gradient from lme4's start, then Newton polish and a gradient check.

    ``start="nAGQ0"`` runs lme4's first stage (``optimize_stage1``) for the start instead: the
    same optimum, slower when theta has more than one entry (measured: 2-4x on VerbAgg and
    grouseticks)."""
    if isinstance(start, str):
        if start != "nAGQ0":
            raise GLMMError(f"start {start!r}: use a dict of theta / beta or 'nAGQ0'")
        theta, beta, run = optimize_stage1(problem, default_start(problem.sizes), glm_start(problem.gd))
        x, record = optimize_laplace(problem, {"theta": theta, "beta": beta})
        record["runs"].insert(0, run)
        return x, record
    theta0 = default_start(problem.sizes) if not start or "theta" not in start else np.asarray(start["theta"], float)
    beta0 = glm_start(problem.gd) if not start or "beta" not in start else np.asarray(start["beta"], float)
    # Unconstrained BFGS: the deviance is even in each diagonal entry of a term's factor T (the
    # sign of a column of T is that of its random effects), so no bounds are needed and the
    # result is put back with a non-negative diagonal. The inverse Hessian starts as that of the
    # deviance at the start point (central differences of the exact gradient), made positive
    # definite, so that the coupled scales of theta and beta are known from the first step.
    x0 = np.concatenate([theta0, beta0])
    H0 = problem.hessian(x0, central=False)
    eigenvalues, vectors = np.linalg.eigh(H0)
    floor = max(1e-6, 1e-8 * float(np.max(np.abs(eigenvalues))))
    hess_inv0 = (vectors / np.maximum(np.abs(eigenvalues), floor)) @ vectors.T
    hess_inv0 = 0.5 * (hess_inv0 + hess_inv0.T)
    if not np.all(np.isfinite(hess_inv0)):
        hess_inv0 = None
    runs = []
    x = x0
    for attempt in range(4):
        result = optimize.minimize(
            problem.value_and_gradient,
            x,
            jac=True,
            method="BFGS",
            options={"maxiter": 3000, "gtol": BFGS_GTOL, "hess_inv0": hess_inv0, "xrtol": 1e-12},
        )
        x = canonical_signs(problem, np.array(result.x))
        runs.append(
            {
                "method": "BFGS (exact gradient, start inverse Hessian from differences)",
                "start": (x0 if attempt == 0 else runs[-1]["end"]),
                "end": x.tolist(),
                "fun": float(result.fun),
                "nit": int(result.nit),
                "nfev": int(result.nfev),
                "message": str(result.message),
            }
        )
        runs[-1]["start"] = list(np.asarray(runs[-1]["start"], float))
        # a variance parameter at 0 has zero derivative (f is even in it): try moving it off
        moved = _off_boundary(problem, x, float(result.fun))
        if moved is None:
            break
        runs[-1]["left_boundary"] = moved[1]
        x = moved[0]
        hess_inv0 = None
    x, newton = newton_polish(problem, x)
    for _ in range(2):  # the check: restart BFGS from the end while the gradient is not ~0
        f, g = problem.value_and_gradient(x)
        try:
            scaled = float(np.max(np.abs(np.linalg.solve(newton["hessian"], g))))
        except np.linalg.LinAlgError:
            scaled = np.inf
        if scaled < 1e-6:
            break
        result = optimize.minimize(
            problem.value_and_gradient,
            x,
            jac=True,
            method="BFGS",
            options={"maxiter": 3000, "gtol": BFGS_GTOL / 100, "xrtol": 1e-14},
        )
        runs.append(
            {
                "method": "BFGS restart (gradient check failed)",
                "start": x.tolist(),
                "end": result.x.tolist(),
                "fun": float(result.fun),
                "nit": int(result.nit),
                "nfev": int(result.nfev),
                "message": str(result.message),
                "scaled_gradient_before": scaled,
            }
        )
        x, newton = newton_polish(problem, canonical_signs(problem, result.x))
    x = _snap_to_boundary(problem, x)
    return x, {"runs": runs, "newton": newton}


def _snap_to_boundary(problem: GLMMProblem, x):
    """Diagonal entries of theta within 1e-7 of 0 are set to exactly 0 (lme4's boundary value,
    a singular fit) when that does not raise the deviance by more than 1e-10: the deviance is
    even in them, so it is flat to second order there."""
    nt = problem.n_theta
    small = [j for j in range(nt) if np.isfinite(problem.lower[j]) and 0 < abs(x[j]) < 1e-7]
    if not small:
        return x
    f = problem.value_and_gradient(x)[0]
    trial = x.copy()
    trial[small] = 0.0
    if problem.value_and_gradient(trial)[0] <= f + 1e-10:
        return trial
    problem.value_and_gradient(x)
    return x


def canonical_signs(problem: GLMMProblem, x) -> np.ndarray:
    """Flip the columns of each term's factor T whose diagonal entry is negative (T T' and the
    deviance are unchanged): lme4's theta has a non-negative diagonal."""
    x = np.array(x, float)
    start = 0
    for q in problem.sizes:
        rows, cols = lower_triangle_indices(q)
        part = x[start : start + len(rows)]
        T = np.zeros((q, q))
        T[rows, cols] = part
        signs = np.where(np.diag(T) < 0, -1.0, 1.0)
        x[start : start + len(rows)] = (T * signs)[rows, cols]
        start += len(rows)
    return x


def _off_boundary(problem: GLMMProblem, x, f):
    """A point with a zero variance parameter moved off the boundary where the deviance is lower."""
    nt = problem.n_theta
    at_zero = [j for j in range(nt) if np.isfinite(problem.lower[j]) and x[j] <= 1e-8]
    for j in at_zero:
        for value in (1e-3, 1e-2, 0.1, 0.3, 1.0):
            trial = x.copy()
            trial[j] = value
            u_keep = problem.u.copy()
            f_trial = problem.deviance(trial)
            problem.u = u_keep
            if f_trial < f - 1e-9:
                return trial, {"parameter": j, "value": value, "improvement": f - f_trial}
    return None


def newton_polish(problem: GLMMProblem, x, max_steps=5):
    """Newton steps on the Hessian from central differences of the exact gradient, kept inside
    the bounds and only when they lower the deviance; stops when a step moves less than 1e-8.
    Returns the Hessian at the final point (recomputed if the last step moved more than 1e-6)."""
    steps = []
    f, g = problem.value_and_gradient(x)
    H, H_at = None, None
    for _ in range(max_steps):
        H, H_at = problem.hessian(x), x.copy()
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        at_bound = (x <= problem.lower + 1e-12) & (step < 0)
        step[at_bound] = 0.0
        accepted = False
        for scale in (1.0, 0.5, 0.25, 0.1):
            trial = np.maximum(x + scale * step, problem.lower)
            f_trial, g_trial = problem.value_and_gradient(trial)
            if f_trial <= f + 1e-12:
                accepted = True
                break
        steps.append(
            {
                "step_max": float(np.max(np.abs(step))),
                "f_before": float(f),
                "f_after": float(f_trial) if accepted else None,
                "max_abs_gradient_before": float(np.max(np.abs(g))),
            }
        )
        if not accepted:
            problem.value_and_gradient(x)
            break
        moved = float(np.max(np.abs(trial - x)))
        x, f, g = trial, f_trial, g_trial
        if moved < 1e-8:
            break
        try:  # the decrease a further Newton step would bring, on the last Hessian
            if 0.5 * g @ np.linalg.solve(H, g) < 1e-11:
                break
        except np.linalg.LinAlgError:
            pass
    if H is None or np.max(np.abs(x - H_at)) > 1e-6:
        H = problem.hessian(x)
    problem.value_and_gradient(x)
    return x, {"steps": steps, "hessian": H}


def summarize(problem: GLMMProblem, params, nAGQ: int, record: dict) -> GLMMFit:
    gd, S = problem.gd, problem.structure
    nt = problem.n_theta
    theta, beta = params[:nt], params[nt:]
    agq = record.get("agq")
    nagq0 = record.get("nagq0")
    if nagq0 is not None:
        st, g = nagq0["state"], nagq0["gradient"]
    elif agq is None:
        st, g = problem.solution_state(np.asarray(params, float))
    else:
        st = problem.state(theta, beta)
        g = problem.gradient(st)
    problem.last_converged = st.iterations < PIRLS_MAX_ITER
    if agq is not None:
        H = agq["hessian"]
        objective = agq["objective"]
        saturated = -0.5 * float(np.sum(gd.family.saturated_aic_terms(gd.y, gd.weights, gd.trials)))
        logLik_lme4 = -0.5 * objective
        logLik = logLik_lme4 + saturated
        grad = agq["gradient"]
    else:
        H = record["newton"]["hessian"]
        objective = st.deviance
        logLik = -0.5 * objective
        logLik_lme4 = None
        grad = g
    vcov, vcov_note = fixed_vcov(H, nt) if nagq0 is None else (nagq0["vcov"], "RX'RX^-1 of the joint PIRLS (nAGQ = 0)")
    if nagq0 is not None:
        grad = g
    if vcov is None:
        vcov = np.full((problem.p, problem.p), np.nan)
    try:
        scaled = np.linalg.solve(H, grad)
    except np.linalg.LinAlgError:
        scaled = np.full_like(grad, np.nan)
    inv = S.inverse_parts(st.factor)
    ranef, ranef_sd = conditional_modes(problem, st, inv)
    npar = nt + problem.p
    optimizer = {
        "method": (
            "lme4's nAGQ = 0 stage: theta by Nelder-Mead / Brent, u and beta by joint PIRLS"
            if nAGQ == 0
            else "lmmflow: BFGS on the exact gradient of the Laplace deviance + Newton polish"
            + (f", then quasi-Newton on the nAGQ = {nAGQ} deviance (finite-difference gradient)" if nAGQ > 1 else "")
        ),
        "runs": record["runs"],
        "newton_steps": record["newton"]["steps"],
        "agq_runs": (agq or {}).get("runs"),
        "n_deviance_evaluations": problem.n_evaluations,
        "n_gradients": problem.n_gradients,
        "pirls_iterations": problem.pirls_iterations,
        "pirls_tolerance": PIRLS_TOLERANCE,
        "pirls_not_converged_runs": problem.pirls_failures,
        "pirls_converged_at_solution": problem.last_converged,
        "max_abs_gradient": float(np.max(np.abs(grad))),
        "max_abs_scaled_gradient": float(np.max(np.abs(scaled))),
        "hessian_positive_definite": bool(np.all(np.linalg.eigvalsh(H) > 0)),
        "vcov": vcov_note,
    }
    dev_resid = float(np.sum(gd.family.unit_deviance(gd.y, st.mu, gd.weights)))
    return GLMMFit(
        formula=gd.formula,
        family=gd.family.name,
        link=gd.family.link.name,
        nAGQ=nAGQ,
        n=S.n,
        ngrps={b.label: b.n_levels for b in gd.design.blocks},
        fixed_names=gd.fixed_names,
        beta=beta.copy(),
        vcov=vcov,
        theta=theta.copy(),
        theta_names=theta_names(gd.design),
        varcorr=varcorr(gd.design, theta),
        logLik=logLik,
        deviance_lme4=dev_resid,
        objective=objective,
        npar=npar,
        u=st.u.copy(),
        ranef=ranef,
        ranef_sd=ranef_sd,
        eta=st.eta.copy(),
        mu=st.mu.copy(),
        optimizer=optimizer,
        logLik_lme4=logLik_lme4,
        hessian=H,
        theta_diagonal=np.isfinite(problem.lower[:nt]),
    )


def fixed_vcov(H: np.ndarray, n_theta: int):
    """lme4's default glmer vcov: the beta block of (H / 2)^-1, H the Hessian of the deviance
    over (theta, beta)."""
    try:
        V = np.linalg.inv(H / 2.0)
    except np.linalg.LinAlgError:
        return None, "Hessian singular"
    V = V[n_theta:, n_theta:]
    return 0.5 * (V + V.T), "inverse of half the Hessian of the Laplace deviance over (theta, beta), beta block"


def conditional_modes(problem: GLMMProblem, st: State, inv) -> tuple[dict, dict]:
    """lme4's ranef (b = Lambda u) and condVar SDs per term (sigma = 1 for GLMMs)."""
    S, design = problem.structure, problem.gd.design
    T = S.factors(st.theta)
    ranef, sds = {}, {}
    for b, (block, Tb) in enumerate(zip(design.blocks, T)):
        q = block.n_effects
        ub = st.u[S.offsets[b] : S.offsets[b + 1]].reshape(block.n_levels, q)
        modes = ub @ Tb.T
        if b == 0:
            blocks_inv = inv.A11
        else:
            start = S.offsets[b] - S.n1q1
            idx = start + np.arange(block.n_levels)[:, None] * q + np.arange(q)
            blocks_inv = inv.A22[idx[:, :, None], idx[:, None, :]]
        cov = np.einsum("ij,ljk,mk->lim", Tb, blocks_inv, Tb)
        sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
        names = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        ranef[block.label] = pd.DataFrame(modes, index=list(block.levels), columns=names)
        sds[block.label] = pd.DataFrame(sd, index=list(block.levels), columns=names)
    return ranef, sds


def theta_names(design: Design) -> tuple[str, ...]:
    """lme4's names of theta: ``g.(Intercept)``, ``g.x.(Intercept)``, ``g.x``."""
    names = []
    for block in design.blocks:
        effects = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        rows, cols = lower_triangle_indices(len(effects))
        for i, j in zip(rows, cols):
            names.append(
                f"{block.group_var}.{effects[i]}" if i == j else f"{block.group_var}.{effects[i]}.{effects[j]}"
            )
    return tuple(names)


def varcorr(design: Design, theta: np.ndarray) -> list[dict]:
    """lme4's ``as.data.frame(VarCorr(m))`` rows (no residual row for binomial / Poisson)."""
    rows_out = []
    factors = theta_to_factors(np.asarray(theta, float), [b.n_effects for b in design.blocks])
    for block, T in zip(design.blocks, factors):
        cov = T @ T.T
        effects = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        for i, e in enumerate(effects):
            rows_out.append(
                {"grp": block.label, "var1": e, "var2": None, "vcov": float(cov[i, i]), "sdcor": float(sd[i])}
            )
        for j in range(len(effects)):
            for i in range(j + 1, len(effects)):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else float("nan")
                rows_out.append(
                    {
                        "grp": block.label,
                        "var1": effects[j],
                        "var2": effects[i],
                        "vcov": float(cov[i, j]),
                        "sdcor": float(corr),
                    }
                )
    return rows_out


def _check_separation(problem: GLMMProblem, fit: GLMMFit) -> None:
    """Complete or quasi-complete separation: a fixed effect whose contribution to the linear
    predictor is huge (fitted probabilities at 0 or 1) with a standard error larger still, or a
    random-effect SD without bound. Warns naming the term; never silent."""
    X = problem.X
    messages = []
    if problem.family.name == "binomial":
        spread = np.max(np.abs(X - X.mean(axis=0)), axis=0)
        spread[np.all(X == X[0], axis=0)] = 1.0
        for name, b, se, s in zip(fit.fixed_names, fit.beta, fit.se, spread):
            if abs(b) * s > 15 and (not np.isfinite(se) or se > abs(b) / 2):
                messages.append(
                    f"complete separation: the estimate of {name!r} is unbounded (estimate {b:.3g}, SE {se:.3g}): "
                    "the data determine its sign only; lme4 fails here with 'pwrssUpdate did not converge'"
                )
    if len(messages) > 1:  # the intercept follows a separating term to infinity: name the term
        messages = [m for m in messages if "'(Intercept)'" not in m]
    for row in fit.varcorr:
        if row["var2"] is None and row["sdcor"] > 30:
            messages.append(
                f"random-effect SD of {row['var1']!r} in {row['grp']!r} is {row['sdcor']:.3g}: estimates grow without "
                "bound (separation by that grouping factor)"
            )
    if not problem.last_converged:
        messages.append(
            "PIRLS did not converge at the solution (lme4: 'pwrssUpdate did not converge'): the conditional modes "
            "grow without bound, as under complete separation"
        )
    for message in messages:
        warnings.warn(message, SeparationWarning, stacklevel=3)
        fit.warnings.append(message)


def glmer(
    formula: str,
    data: pd.DataFrame,
    *,
    family: str = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    weights=None,
    verify: bool = True,
) -> GLMMFit:
    """lme4's ``glmer(formula, data, family, nAGQ, weights)``: the fitted model at its optimum,
    with an independent re-evaluation of the Laplace deviance at the solution (``verify``)."""
    gd = glmm_design(formula, data, family, link, weights)
    fit = fit_glmm(gd, nAGQ)
    if verify:
        from lmmflow.verify.glmm_laplace import verify_fit

        fit.verification = verify_fit(gd, fit)
    return fit


def glmm_anova(fits: dict[str, GLMMFit]) -> pd.DataFrame:
    """lme4's ``anova(m0, m1, ...)`` for GLMMs fitted to the same data: models ordered by npar,
    columns npar, AIC, BIC, logLik, deviance (-2 logLik), Chisq, Df, Pr(>Chisq) (each against
    the model before it)."""
    if len({fit.n for fit in fits.values()}) > 1:
        raise GLMMError("anova: the models were fitted to different numbers of observations")
    ordered = sorted(fits.items(), key=lambda item: item[1].npar)
    rows, previous = [], None
    for name, fit in ordered:
        row = {
            "model": name,
            "npar": fit.npar,
            "AIC": fit.AIC,
            "BIC": fit.BIC,
            "logLik": fit.logLik,
            "deviance": fit.deviance,
            "Chisq": np.nan,
            "Df": np.nan,
            "Pr(>Chisq)": np.nan,
        }
        if previous is not None:
            chisq = max(0.0, 2 * (fit.logLik - previous.logLik))
            df = fit.npar - previous.npar
            row.update({"Chisq": chisq, "Df": df, "Pr(>Chisq)": stats.chi2.sf(chisq, df) if df > 0 else np.nan})
        rows.append(row)
        previous = fit
    return pd.DataFrame(rows).set_index("model")
