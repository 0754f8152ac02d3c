"""The optimisation of a GLMM to lme4's optimum: lme4's nAGQ = 0 stage, the GLM start, BFGS on the
exact gradient of the Laplace deviance, the Newton polish, boundary snapping, and the checks at the
optimum (gradient, separation). See ``lmmflow.engine.glmm`` for the method."""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import optimize

from lmmflow.engine.blas import single_thread
from lmmflow.engine.families import GLMMError
from lmmflow.engine.glmm_design import GLMMDesign
from lmmflow.engine.glmm_results import GLMMFit, summarize
from lmmflow.engine.parameters import default_start, lower_triangle_indices
from lmmflow.engine.pirls import GLMMProblem, joint_pirls

BFGS_GTOL = 1e-4  # max |gradient| where the Newton polish takes over


class SeparationWarning(UserWarning):
    """Estimates growing without bound (complete separation): the named term is not identified."""


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
