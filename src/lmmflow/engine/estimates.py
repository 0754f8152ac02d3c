"""What a REML or ML fit produces, whichever path computed it (groups-last, blocked or statsmodels)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lmmflow.engine.parameters import covariances_to_theta, parameter_names, parameter_values

if TYPE_CHECKING:
    from lmmflow.engine.optimizer import Attempt
    from lmmflow.model.design import Design


@dataclass
class Estimates:
    """A REML (``reml=True``) or ML solution on the scale lme4 reports; ``loglik`` is that criterion's.

    ``covariances[b]`` is the (q_b x q_b) covariance matrix of block b's random effects (absolute
    scale, i.e. already multiplied by ``sigma2``); ``modes[b]`` and ``conditional_sds[b]`` are
    (n_levels_b x q_b) arrays of conditional modes and conditional standard deviations, rows in
    the order of ``Design.blocks[b].levels``. ``beta_cov`` is lme4's ``vcov``.
    ``theta`` (lme4's, see ``lmmflow.engine.parameters``) is set by the paths that optimize it; ``reml``
    is False for a maximum-likelihood fit. ``engine`` names the engine that fitted: "groups-last" (``lmmflow.engine.groups_last``), "blocked"
    (``lmmflow.engine.blocked``) or "statsmodels" (``lmmflow.verify.statsmodels_fit``). ``verification`` names the
    independent re-evaluation of the criterion at the solution ("statsmodels", "groups-last",
    "blocked" or "sparse LU"; None if none could run) and ``verification_loglik`` its logLik;
    ``statsmodels_loglik`` repeats it when statsmodels was the verifier.
    """

    beta: np.ndarray
    beta_cov: np.ndarray
    sigma2: float
    covariances: list[np.ndarray]
    modes: list[np.ndarray]
    conditional_sds: list[np.ndarray]
    loglik: float
    engine: str
    optimizer: str
    converged: bool
    attempts: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statsmodels_loglik: float | None = None  # statsmodels' MixedLM.loglike at this solution
    theta: np.ndarray | None = None
    reml: bool = True
    verification: str | None = None
    verification_loglik: float | None = None

    def lme4_theta(self) -> np.ndarray:
        """lme4's theta at this solution: as the path optimized it, or derived from ``covariances``
        and ``sigma2`` where the path reports no theta (statsmodels)."""
        return covariances_to_theta(self.covariances, self.sigma2) if self.theta is None else self.theta

    @property
    def verification_difference(self) -> float | None:
        """|logLik - the verifier's logLik at the same solution|, None when unverified."""
        return None if self.verification_loglik is None else abs(self.loglik - self.verification_loglik)


def from_solution(solution, best: Attempt, attempts: list[Attempt], engine: str, reml: bool) -> Estimates:
    """Estimates of an ``engine``'s REML (or ML: ``reml``) ``lmmflow.engine.criterion.ProfiledSolution``
    at its ``best`` optimizer attempt; ``attempts`` are the optimizer runs with their convergence
    checks, which a warning quotes when the best did not converge."""
    warnings = []
    if not best.converged:
        warnings.append(
            f"{engine} engine: no optimizer converged (best: {best.optimizer}, projected gradient "
            f"{best.grad_norm:.2g}, Newton decrement {best.newton_decrement:.2g}, {best.message})"
        )
    return solution.estimates(
        reml,
        engine=engine,
        optimizer=best.optimizer,
        converged=best.converged,
        attempts=[attempt.record() for attempt in attempts],
        warnings=warnings,
    )


def parameter_vector(design: Design, fit: Estimates) -> pd.Series:
    """A fit's ``parameter_values``, named by ``parameter_names``."""
    values = parameter_values(fit.covariances, fit.sigma2, fit.beta)
    return pd.Series(values, index=parameter_names(design), dtype=float)
