"""What statistics beyond the fit need from a fitting engine: lme4's penalized least squares at theta.

lme4 evaluates its deviance at a theta by solving a penalized least squares (PLS) problem; the
pieces of that solution determine the deviance at any residual SD sigma, not just the profiled
one. lmerTest's Satterthwaite degrees of freedom (``lmmflow.inference.satterthwaite``) differentiate those
pieces with respect to theta. Every engine's criterion object (``lmmflow.engine.groups_last.ProfiledREML``
today) provides them through the ``Criterion`` protocol below, so those statistics do not depend
on how an engine factorizes.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np


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
