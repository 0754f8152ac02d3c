"""GLMMs in likelihood-ratio tests and AICc comparisons: lme4's ``anova()`` of glmer fits uses
their (Laplace or quadrature) log-likelihoods as fitted, with no refit, so a GLMM enters a test
from its solution.json (``lmmflow.outputs.glmm_tables.solution``)."""

from __future__ import annotations

import json
from pathlib import Path

from lmmflow.inference.likelihood_ratio import MLFit
from lmmflow.pipeline.glmm_config import GAUSSIAN, family_of


def is_glmm(spec: dict) -> bool:
    """Whether a configured model is fitted by glmer."""
    return family_of(spec) != GAUSSIAN


def glmm_ml_fit(name: str, solution_path: str, dataset: str) -> MLFit:
    """The comparison entry of a GLMM: logLik, npar (theta + beta), n_obs, response, as fitted."""
    solution = json.loads(Path(solution_path).read_text())
    return MLFit(
        name=name,
        loglik=float(solution["logLik"]),
        npar=int(solution["npar"]),
        n_obs=int(solution["n_obs"]),
        dataset=dataset,
        response=solution["response"],
    )
