"""What statistics beyond the fit need from a fitting engine: lme4's penalized least squares at theta.

lme4 evaluates its deviance at a theta by solving a penalized least squares (PLS) problem; the
pieces of that solution determine the deviance at any residual SD sigma, not just the profiled
one. lmerTest's Satterthwaite degrees of freedom (``lmmflow.inference.satterthwaite``) differentiate those
pieces with respect to theta. Every engine's criterion object (``lmmflow.engine.groups_last.GroupsLastCriterion``
and ``lmmflow.engine.blocked.BlockedCriterion``) provides them through the ``Criterion`` protocol below, so those statistics do not depend
on how an engine factorizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from lmmflow.engine.estimates import Estimates

LOG_2PI = np.log(2.0 * np.pi)


class PLSState(NamedTuple):
    """lme4's PLS solution at one theta (``merPredD`` after ``devfun(theta)``).

    ``ldL2``: log det(L)^2, L the Cholesky factor of Lambda'Z'Z Lambda + I (lme4's ``ldL2()``).
    ``ldRX2``: log det(RX)^2, RX'RX = X'V^-1 X on the relative scale (lme4's ``ldRX2()``).
    ``pwrss``: penalized weighted residual sum of squares at the conditional estimates of beta
    and u (lme4's ``wrss() + sqrL(1)``).
    ``xtvx``: RX'RX, (p x p); lme4's ``vcov(beta)`` at residual variance s2 is ``s2 * inv(xtvx)``.
    """

    ldL2: float
    ldRX2: float
    pwrss: float
    xtvx: np.ndarray


class Criterion(Protocol):
    """An engine's (RE)ML criterion of one design: ``n`` observations, ``p`` fixed effects."""

    reml: bool
    n: int
    p: int

    def pls_state(self, theta: np.ndarray) -> PLSState:
        """The PLS solution at ``theta`` (any real vector of the engine's theta length)."""
        ...


@dataclass
class ProfiledSolution:
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
        """These numbers as ``Estimates``; ``found`` says how (engine, optimizer, converged, ...)."""
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
