"""What a REML (or ML) fit produces, whichever path computed it (vectorized REML or statsmodels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Estimates:
    """A REML (``reml=True``) or ML solution on the scale lme4 reports; ``loglik`` is that criterion's.

    ``covariances[b]`` is the (q_b x q_b) covariance matrix of block b's random effects (absolute
    scale, i.e. already multiplied by ``sigma2``); ``modes[b]`` and ``conditional_sds[b]`` are
    (n_levels_b x q_b) arrays of conditional modes and conditional standard deviations, rows in
    the order of ``Design.blocks[b].levels``. ``beta_cov`` is lme4's ``vcov``.
    ``statsmodels_loglik`` is set when the solution was re-evaluated by statsmodels. ``theta``
    (lme4's, see ``lmmflow.parameters``) is set by the paths that optimize it; ``reml`` is False
    for a maximum-likelihood fit.
    """

    beta: np.ndarray
    beta_cov: np.ndarray
    sigma2: float
    covariances: list[np.ndarray]
    modes: list[np.ndarray]
    conditional_sds: list[np.ndarray]
    loglik: float
    path: str
    optimizer: str
    converged: bool
    attempts: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statsmodels_loglik: float | None = None  # statsmodels' MixedLM.loglike at this solution
    theta: np.ndarray | None = None
    reml: bool = True
