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

Modules: ``glmm_design`` (the model's data), ``pirls`` (PIRLS, the Laplace deviance and its
gradient), ``glmm_fit`` (the optimisation and the checks at the optimum), ``glmm_results`` (the
fitted model, lme4's anova); this module is the entry point, ``glmer``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmflow.engine.families import GLMMError
from lmmflow.engine.glmm_design import RESPONSE_COLUMN, GLMMDesign, glmm_design
from lmmflow.engine.glmm_fit import BFGS_GTOL, SeparationWarning, check_nagq, fit_glmm, glm_start
from lmmflow.engine.glmm_results import GLMMFit, glmm_anova, summarize, theta_names, varcorr
from lmmflow.engine.pirls import PIRLS_MAX_ITER, PIRLS_TOLERANCE, GLMMProblem, State, joint_pirls

__all__ = [
    "BFGS_GTOL",
    "GLMMDesign",
    "GLMMError",
    "GLMMFit",
    "GLMMProblem",
    "PIRLS_MAX_ITER",
    "PIRLS_TOLERANCE",
    "RESPONSE_COLUMN",
    "SeparationWarning",
    "State",
    "check_nagq",
    "fit_glmm",
    "glm_start",
    "glmer",
    "glmer_on_design",
    "glmer_with_design",
    "glmm_anova",
    "glmm_design",
    "joint_pirls",
    "summarize",
    "theta_names",
    "varcorr",
]


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
    return glmer_with_design(formula, data, family=family, link=link, nAGQ=nAGQ, weights=weights, verify=verify)[1]


def glmer_with_design(
    formula: str, data: pd.DataFrame, *, family: str, link=None, nAGQ: int = 1, weights=None, verify: bool = True
) -> tuple[GLMMDesign, GLMMFit]:
    """``glmer`` and the model's data (``GLMMDesign``), which the output tables and predictions need."""
    gd = glmm_design(formula, data, family, link, weights)
    return gd, glmer_on_design(gd, nAGQ, verify)


def glmer_on_design(gd: GLMMDesign, nAGQ: int = 1, verify: bool = True) -> GLMMFit:
    """The fit of a model whose data ``glmm_design`` has read and checked (``glmer``)."""
    fit = fit_glmm(gd, nAGQ)
    if verify:
        fit.verification = _verification(gd, fit)
    return fit


def _verification(gd: GLMMDesign, fit: GLMMFit) -> dict:
    """The independent re-evaluation, or why it could not run (a singular system, as under
    complete separation): a warning, never a crash after a finished fit."""
    from lmmflow.verify.glmm_laplace import verify_fit

    try:
        return verify_fit(gd, fit)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as error:
        fit.warnings.append(f"the deviance could not be re-evaluated independently at the solution: {error}")
        return {"agrees": False, "error": str(error)}
