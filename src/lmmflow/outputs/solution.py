"""A fit's solution as an artefact: the fit stage writes it, interval jobs start from it.

``results/models/<model>/solution.json`` holds what determines the fit: lme4's ``theta``, the
fixed effects ``beta``, the residual variance ``sigma2``, the ``criterion`` (the REML or ML
deviance, -2 logLik) there, ``reml``, the ``engine`` (fitting path) that found it, and the
``block_sizes`` (effects per random term) that shape theta. Floats are written at full (repr)
precision, so a job reading the file gets the fit's numbers to the last bit.

``estimates_from_solution`` rebuilds the fit from its design and solution with one evaluation
of the criterion at theta, no optimization, and refuses a solution whose criterion it does not
reproduce (the file belongs to other data); the criterion is the fitting engine's
(``lmmflow.engine.choice.criterion_of_engine``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmmflow.engine.choice import criterion_of_engine
from lmmflow.engine.estimates import Estimates
from lmmflow.engine.parameters import theta_to_covariances
from lmmflow.model.design import Design, build_design
from lmmflow.outputs import io

# How far the criterion recomputed at theta may be from the stored one: the fit's own path
# reproduces it exactly; a statsmodels fit, whose theta is recovered from its covariances, to ~1e-8.
CRITERION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SolutionArtefact:
    """The parameters a fit found and its criterion there (see the module docstring)."""

    theta: np.ndarray
    beta: np.ndarray
    sigma2: float
    criterion: float
    reml: bool
    engine: str
    block_sizes: tuple[int, ...]
    converged: bool
    optimizer: str

    def covariances(self) -> list[np.ndarray]:
        """Each random term's absolute covariance matrix, as the fit computed it from theta."""
        return theta_to_covariances(self.theta, list(self.block_sizes), self.sigma2)


def solution_of(fit: Estimates) -> SolutionArtefact:
    """The solution of a fit; a path that does not report theta (statsmodels) gets it from its covariances."""
    theta = fit.lme4_theta()
    return SolutionArtefact(
        theta=np.asarray(theta, dtype=float),
        beta=np.asarray(fit.beta, dtype=float),
        sigma2=float(fit.sigma2),
        criterion=-2.0 * float(fit.loglik),
        reml=bool(fit.reml),
        engine=fit.engine,
        block_sizes=tuple(len(cov) for cov in fit.covariances),
        converged=bool(fit.converged),
        optimizer=fit.optimizer,
    )


def write_solution(solution: SolutionArtefact, path: str | os.PathLike) -> None:
    """solution.json, floats in repr precision (not io.write_json's rounding): reading it back is exact."""
    content = {
        "theta": [float(value) for value in solution.theta],
        "beta": [float(value) for value in solution.beta],
        "sigma2": solution.sigma2,
        "criterion": solution.criterion,
        "reml": solution.reml,
        "engine": solution.engine,
        "block_sizes": list(solution.block_sizes),
        "converged": solution.converged,
        "optimizer": solution.optimizer,
    }
    with io.atomic_path(path) as temporary:  # strict JSON: a fit's numbers are finite, or this refuses
        temporary.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="ascii")


def read_solution(path: str | os.PathLike) -> SolutionArtefact:
    """The solution written by ``write_solution``."""
    with open(path) as handle:
        content = json.load(handle)
    if content["engine"] == "glmm":  # e.g. a bootstrap asked for by file name
        raise ValueError(
            f"{path}: the solution of a {content['family']} GLMM; this step takes an LMM's "
            "(a GLMM has profile and Wald intervals, no bootstrap)"
        )
    return SolutionArtefact(
        theta=np.array(content["theta"], dtype=float),
        beta=np.array(content["beta"], dtype=float),
        sigma2=float(content["sigma2"]),
        criterion=float(content["criterion"]),
        reml=bool(content["reml"]),
        engine=str(content["engine"]),
        block_sizes=tuple(int(q) for q in content["block_sizes"]),
        converged=bool(content["converged"]),
        optimizer=str(content["optimizer"]),
    )


def estimates_from_solution(design: Design, solution: SolutionArtefact) -> Estimates:
    """The fit that found ``solution``, rebuilt by one evaluation of its criterion at theta.

    Raises ValueError when the design does not match the solution (its shape or its criterion).
    """
    sizes = tuple(block.n_effects for block in design.blocks)
    if sizes != solution.block_sizes or len(design.fixed_names) != len(solution.beta):
        raise ValueError(
            f"solution of random terms of sizes {solution.block_sizes} and {len(solution.beta)} fixed effects; "
            f"the design has {sizes} and {len(design.fixed_names)}"
        )
    at = criterion_of_engine(design, solution.reml, solution.engine).solve(solution.theta)
    if not abs(at.deviance - solution.criterion) <= CRITERION_TOLERANCE:
        raise ValueError(
            f"the solution's criterion {solution.criterion!r} is {at.deviance!r} at its theta on this data; "
            "the solution was not fitted to this design"
        )
    return at.estimates(
        solution.reml, engine=solution.engine, optimizer=solution.optimizer, converged=solution.converged
    )


def read_fit(
    data: pd.DataFrame, formula: str, path: str | os.PathLike, weights: str | None = None
) -> tuple[Design, Estimates]:
    """The design of ``formula`` (prior weights from column ``weights``, if any) on ``data`` and
    its fit rebuilt from the solution at ``path``."""
    design = build_design(formula, data, weights)
    return design, estimates_from_solution(design, read_solution(path))
