"""The optimizer driver both profiled engines share: runs, their typed records, the best of them.

An engine's criterion object (``lmmflow.engine.groups_last.GroupsLastCriterion``,
``lmmflow.engine.blocked.BlockedCriterion``) offers ``deviance(theta)``,
``deviance_and_gradient(theta)``, ``held_at_bound(theta, grad)``, ``lower_bounds``, ``sizes``,
``n_theta`` and ``evaluation_work``; everything here works on that interface alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize

from lmmflow.engine.parameters import default_start

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


def newton_decrement(model, theta: np.ndarray) -> float:
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


def stopped_cleanly(result) -> bool:
    """The optimizer's own success flag, except that an L-BFGS-B line search failing is fine.

    With thousands of groups the deviance is ~1e5 and its rounding noise (~1e-11) defeats the line
    search once the optimum is reached to that precision; the projected-gradient check then decides.
    """
    return bool(result.success) or "ABNORMAL" in str(result.message)


@dataclass(frozen=True)
class Attempt:
    """One optimizer run: where it stopped, the criterion there (REML or ML, as the model's) and
    the checks that decide whether it converged."""

    optimizer: str
    criterion: float
    grad_norm: float
    newton_decrement: float
    converged: bool
    message: str
    n_evaluations: int
    seconds: float
    theta: np.ndarray

    def record(self) -> dict:
        """The attempt as JSON-ready values (what ``Estimates.attempts`` holds)."""
        return asdict(self) | {"theta": self.theta.tolist()}


def attempt_of(name: str, model, result, seconds: float, curvature: np.ndarray | None = None) -> Attempt:
    """The record of a SciPy ``result`` on ``model``: its projected gradient checked, and where
    that is not small, the deviance a Newton step would still gain. ``curvature`` (the deviance's
    second derivative per theta entry, estimated) replaces the finite-difference Hessian of that
    Newton decrement where a gradient is too costly to take n_theta more of."""
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
    return Attempt(
        optimizer=name,
        criterion=float(deviance),
        grad_norm=grad_norm,
        newton_decrement=decrement,
        converged=stopped_cleanly(result)
        and (grad_norm < GRADIENT_TOLERANCE or decrement < NEWTON_DECREMENT_TOLERANCE),
        message=str(result.message),
        n_evaluations=int(result.nfev),
        seconds=seconds,
        theta=theta,
    )


def run_lbfgsb(model, start: np.ndarray):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in model.lower_bounds]
    return optimize.minimize(
        model.deviance_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=dict(maxiter=1000, ftol=1e-14, gtol=1e-7, maxcor=20),
    )


def run_nelder_mead(model, start: np.ndarray):
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


def escape_zero_diagonals(model, theta: np.ndarray) -> np.ndarray | None:
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


def minimize_criterion(model, start: np.ndarray | None = None) -> tuple[np.ndarray, list[Attempt]]:
    """Minimize the profiled deviance, keeping the best of all attempts.

    L-BFGS-B with the analytic gradient first; restarted off the boundary when a probe shows a
    zeroed diagonal was premature; then bounded Nelder-Mead from the best point when L-BFGS-B
    did not converge, when the solution is singular (flat, bound-constrained directions), or
    whenever it is cheap.
    """
    start = default_start(model.sizes) if start is None else np.asarray(start, float)
    clock = time.perf_counter()
    attempts = [attempt_of("L-BFGS-B", model, run_lbfgsb(model, start), time.perf_counter() - clock)]
    escape = escape_zero_diagonals(model, attempts[0].theta)
    if escape is not None:
        clock = time.perf_counter()
        attempts.append(attempt_of("L-BFGS-B restart", model, run_lbfgsb(model, escape), time.perf_counter() - clock))
    best = best_attempt(attempts)
    fallback_work = model.evaluation_work * FALLBACK_EVALUATIONS * max(1, model.n_theta)
    singular = np.any(best.theta[np.isfinite(model.lower_bounds)] < 1e-4)
    if (
        not best.converged
        or fallback_work < CHEAP_FALLBACK_WORK
        or (singular and fallback_work < SINGULAR_FALLBACK_WORK)
    ):
        clock = time.perf_counter()
        result = run_nelder_mead(model, best.theta)
        attempts.append(attempt_of("Nelder-Mead", model, result, time.perf_counter() - clock))
    return best_attempt(attempts).theta, attempts


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """Lowest deviance; a later attempt must beat an earlier one by more than rounding noise."""
    best = attempts[0]
    for attempt in attempts[1:]:
        noise = 1e-10 * max(1.0, abs(best.criterion))
        if attempt.criterion < best.criterion - noise:
            best = attempt
    return best
