"""Adaptive Gauss-Hermite quadrature (glmer's nAGQ > 1) for a single scalar random-effect term.

lme4's ``glmerAGQ``: with the conditional modes u_j and conditional SDs s_j = 1 / L_jj of the
PIRLS at (theta, beta), the deviance is

    sum_j devc_j(u_j) + log det(L)^2 - 2 sum_j log sum_k w_k exp(-(devc_j(u_j + z_k s_j) - devc_j(u_j)) / 2 + z_k^2 / 2)

with devc_j(u) = u^2 + the group's sum of squared deviance residuals, z_k and w_k the nodes and
weights of the Gauss-Hermite rule for the standard normal density (lme4's ``GHrule``). lme4
1.1-31 reports -deviance / 2 as the logLik, WITHOUT the normalising constant of the family
(lme4 issues #161, #567); ``lmmflow.engine.glmm_results.summarize`` adds it (the saturated log-likelihood)
so that the logLik is on the usual scale.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize


def gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for integrals against the standard normal density."""
    x, w = hermegauss(n)
    return x, w / np.sqrt(2 * np.pi)


def agq_deviance(problem, params, nodes, weights) -> float:
    """lme4's nAGQ > 1 deviance at (theta, beta) (no normalising constant)."""
    nt = problem.n_theta
    theta, beta = params[:nt], params[nt:]
    try:
        st = problem.state(theta, beta)
    except (np.linalg.LinAlgError, FloatingPointError, ValueError):
        return np.inf
    S, gd, fam = problem.structure, problem.gd, problem.family
    codes = S.codes1
    n1 = S.n1
    u = st.u
    dev0 = fam.unit_deviance(gd.y, st.mu, gd.weights)
    devc0 = u * u + np.bincount(codes, dev0, n1)
    sd = 1.0 / st.factor.L11
    fixed = st.eta - st.M1[:, 0] * u[codes]
    keep = weights != 0.0
    z, w = nodes[keep], weights[keep]
    uu = u[:, None] + z[None, :] * sd[:, None]  # groups x nodes
    eta = fixed[:, None] + st.M1[:, 0, None] * uu[codes]
    mu = fam.link.inverse(eta)[0]
    dev = fam.unit_deviance(gd.y[:, None], mu, gd.weights[:, None])
    indicator = problem.group_indicator()
    devc = uu * uu + indicator @ dev
    mult = np.exp(-0.5 * (devc - devc0[:, None]) + 0.5 * z * z) @ w
    return float(np.sum(devc0) + st.factor.logdet - 2.0 * np.sum(np.log(mult)))


def fd_gradient(fun, x, rel=1e-5):
    g = np.empty_like(x)
    for i in range(len(x)):
        h = rel * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def forward_gradient(fun, x, value, rel=1.5e-8):
    """Forward differences of ``fun`` at ``x``, whose value ``value`` is known: half the
    evaluations of ``fd_gradient``, accurate to ~1e-8 relative (steps of sqrt(machine epsilon))."""
    g = np.empty_like(x)
    for i in range(len(x)):
        h = rel * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (fun(x + e) - value) / h
    return g


def fd_hessian(fun, x, rel=1e-3):
    """Central second differences of ``fun`` at ``x``."""
    k = len(x)
    f0 = fun(x)
    steps = np.array([rel * max(1.0, abs(v)) for v in x])
    H = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = steps[i]
        H[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / steps[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = steps[j]
            H[i, j] = H[j, i] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                4 * steps[i] * steps[j]
            )
    return H


def optimize_agq(problem, params, nAGQ: int, record: dict):
    """From the Laplace optimum: quasi-Newton steps on the AGQ deviance with finite-difference
    gradients, first on the Laplace Hessian, then on a finite-difference Hessian of the AGQ
    deviance (which also gives the vcov as for nAGQ = 1); Nelder-Mead if a step fails to descend."""
    nodes, weights = gh_rule(nAGQ)
    lower = problem.lower

    def fun(x):
        if np.any(x < lower):
            return np.inf
        return agq_deviance(problem, x, nodes, weights)

    runs = []
    x = np.asarray(params, float)
    f = fun(x)
    H = record["newton"]["hessian"]
    for iteration in range(30):
        if H is None or iteration == 8:  # the Laplace Hessian is close; switch if convergence is slow
            H = fd_hessian(fun, x)
        g = fd_gradient(fun, x)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = -g
        accepted = False
        for scale in (1.0, 0.5, 0.25, 0.1, 0.01):
            trial = np.maximum(x + scale * step, lower)
            f_trial = fun(trial)
            if f_trial <= f:
                accepted = True
                break
        runs.append(
            {
                "method": "quasi-Newton (finite-difference gradient)",
                "fun": float(f_trial),
                "step_max": float(np.max(np.abs(step))),
                "accepted": accepted,
            }
        )
        if not accepted:
            break
        moved = float(np.max(np.abs(trial - x)))
        x, f = trial, f_trial
        if moved < 1e-9:
            break
    g = fd_gradient(fun, x)
    if not np.max(np.abs(g)) < 1e-4:
        result = optimize.minimize(
            fun, x, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13, "maxfev": 20000}
        )
        runs.append({"method": "Nelder-Mead", "fun": float(result.fun), "nfev": int(result.nfev)})
        if result.fun < f:
            x, f = result.x, float(result.fun)
        g = fd_gradient(fun, x)
    H = fd_hessian(fun, x)
    f = fun(x)  # leave the problem's modes at the solution
    record = dict(record)
    record["agq"] = {"objective": float(f), "hessian": H, "gradient": g, "runs": runs, "nodes": nAGQ}
    return x, record, record["agq"]
