"""Fit a model with the engine that suits its design, verify the criterion at the solution, and
write a model's outputs.

``engine="fast"`` (the default) fits with lmmflow's own engines (``lmmflow.engine.choice``): groups-last
for designs nested in one factor where it is the cheaper, the blocked Cholesky engine otherwise
(crossed designs always). ``engine="statsmodels"`` asks for statsmodels' robust fit
(``lmmflow.verify.statsmodels_fit``), for what statsmodels can express.

Every fit's (RE)ML criterion is then re-evaluated independently at its solution, by the first of
these that applies (``verifiers``):

1. statsmodels' ``MixedLM.loglike``, where statsmodels can express the model cheaply: nested in
   one factor with at most ``STATSMODELS_MAX_GROUPS`` top-level groups. Its likelihood loops over
   the groups in Python (~0.1 ms each: 5.1 s for 50,000 groups), so the number of groups is the
   work estimate; statsmodels itself is imported only then.
2. The other engine's criterion: groups-last and blocked compute the same number by different
   algebra (per-group blocks vs. global crosstabs and a Schur complement).
3. A sparse LU of the whole system (``lmmflow.verify.sparse_lu``), sharing nothing with the engines but
   the design: the verifier of crossed designs, up to ``SPARSE_LU_MAX_DENSE`` random effects in its
   fill (beyond, the fit's own converged gradient is the check, and fit.json's warnings say so).

A re-evaluation that disagrees by more than ``VERIFY_TOLERANCE`` rejects the fit in favour of
statsmodels' robust fit where statsmodels can express the model; otherwise the fit is kept with
a warning. fit.json records the engine (``path``), the verifier and the difference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from lmmflow.engine.blocked import DesignTooLarge, dense_size
from lmmflow.engine.choice import fit_profiled, profiled_criterion
from lmmflow.engine.estimates import Estimates
from lmmflow.model.design import Design, DesignError, build_design
from lmmflow.model.formula import FormulaError
from lmmflow.outputs import io, tables
from lmmflow.outputs.predictions import fitted_values
from lmmflow.outputs.solution import solution_of, write_solution
from lmmflow.verify.sparse_lu import sparse_lu_deviance

if TYPE_CHECKING:  # only for annotations
    from lmmflow.engine.glmm_design import GLMMDesign

VERIFY_TOLERANCE = 1e-6
# The sparse LU re-evaluates designs whose fill after the largest grouping factor (the blocked
# engine's dense block) has at most this many random effects: its cost grows with the cube of it
# (InstEval's 1,170: 0.6 s; by the cube, a MovieLens-1M-shaped crossing's 3,706 movies ~20 s, as
# long as the fit itself, and MovieLens-10M's 10,677 ~25 times that). Larger fits are not
# re-evaluated; fit.json's warnings say so, ``verification`` is null.
SPARSE_LU_MAX_DENSE = 2_000
ENGINES = ("fast", "statsmodels")
STATSMODELS_MAX_GROUPS = 2_000

MODEL_TABLES = {
    "fixed_effects": tables.fixed_effects,
    "variance_components": tables.variance_components,
    "re_correlations": tables.re_correlations,
    "random_effects": tables.random_effects,
    "random_coefficients": tables.random_coefficients,
    "fitted": fitted_values,
}


class CannotVerify(ValueError):
    """A verifier that cannot re-evaluate this design; the message says why."""


def fit_model(design: Design, engine: str = "fast", reml: bool = True) -> Estimates:
    """The REML (or, ``reml=False``, ML) fit of ``design`` that every table of the model comes from:
    on ``engine``, its criterion re-evaluated at the solution (module docstring). The returned
    ``Estimates`` say which path computed them, which verifier checked them, and why (warnings)."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {ENGINES}")
    if engine == "statsmodels":
        from lmmflow.verify.statsmodels_fit import fit_statsmodels

        return _verify(design, fit_statsmodels(design, reml=reml))
    fit = _verify(design, fit_profiled(design, reml=reml))
    if fit.verification_difference is None or fit.verification_difference <= VERIFY_TOLERANCE:
        return fit
    return _statsmodels_instead(design, fit)


def verifiers(design: Design, engine: str) -> list[str]:
    """The independent re-evaluations for a fit by ``engine``, in the order they are tried."""
    order = []
    if engine != "statsmodels" and design.nests_in_one_factor and len(design.group_levels) <= STATSMODELS_MAX_GROUPS:
        order.append("statsmodels")
    if engine != "groups-last" and design.nests_in_one_factor:
        order.append("groups-last")
    if engine != "blocked":
        order.append("blocked")
    return order + ["sparse LU"]


def reevaluate(design: Design, fit: Estimates, verifier: str) -> float:
    """The (REML or ML, as ``fit``) logLik at ``fit``'s solution according to ``verifier`` (see ``verifiers``)."""
    if verifier == "statsmodels":
        from lmmflow.verify.statsmodels_fit import UnsupportedByStatsmodels, statsmodels_loglike

        try:
            return statsmodels_loglike(design, fit)
        except UnsupportedByStatsmodels as reason:
            raise CannotVerify(str(reason)) from None
    theta = fit.lme4_theta()
    if verifier == "sparse LU":
        if (dense := dense_size(design)) > SPARSE_LU_MAX_DENSE:
            raise CannotVerify(
                f"its fill is a dense block of {dense:,} random effects (after the largest grouping factor), above "
                f"the {SPARSE_LU_MAX_DENSE:,} it re-evaluates; the fit is checked by its own gradient (converged)"
            )
        return -sparse_lu_deviance(design, theta, reml=fit.reml) / 2.0
    try:
        return -profiled_criterion(design, reml=fit.reml, engine=verifier).deviance(theta) / 2.0
    except DesignTooLarge as reason:
        raise CannotVerify(str(reason)) from None


def _verify(design: Design, fit: Estimates) -> Estimates:
    """Record the first verifier that applies; warn if none does."""
    reasons = []
    for verifier in verifiers(design, fit.engine):
        try:
            fit.verification_loglik = reevaluate(design, fit, verifier)
        except CannotVerify as reason:
            reasons.append(f"{verifier}: {reason}")
            continue
        fit.verification = verifier
        if verifier == "statsmodels":
            fit.statsmodels_loglik = fit.verification_loglik
        if fit.verification_difference > VERIFY_TOLERANCE:
            fit.warnings.append(
                f"{fit.engine} fit: its logLik {fit.loglik:.8f} differs from {verifier}'s "
                f"{fit.verification_loglik:.8f} at the same parameters"
            )
        return fit
    fit.warnings.append(f"criterion not re-evaluated independently ({'; '.join(reasons)})")
    return fit


def _statsmodels_instead(design: Design, fit: Estimates) -> Estimates:
    """statsmodels' robust fit in place of a rejected one, where statsmodels can express the design."""
    from lmmflow.verify.statsmodels_fit import UnsupportedByStatsmodels, fit_statsmodels

    try:
        fallback = _verify(design, fit_statsmodels(design, reml=fit.reml))
    except UnsupportedByStatsmodels:
        return fit
    fallback.warnings.append(
        f"{fit.engine} fit rejected: its logLik {fit.loglik:.8f} differs from {fit.verification}'s "
        f"{fit.verification_loglik:.8f} at the same parameters; used the robust statsmodels fit"
    )
    return fallback


def write_model_outputs(design: Design, fit: Estimates, summary: dict, outputs: dict[str, str]) -> None:
    """Write fit.json, solution.json, attempts.csv and the MODEL_TABLES to the paths named in ``outputs``.

    ``solution`` is the fit's exact parameters (``lmmflow.outputs.solution``), which interval jobs start
    from; ``attempts`` one row per optimizer attempt (optimizer, criterion, grad_norm,
    converged). Everything is computed before the first file is written, so an error leaves no
    file behind; fit.json comes last, as the sign that the others are complete.
    """
    model_tables = {name: table(design, fit) for name, table in MODEL_TABLES.items()}
    model_tables["attempts"] = pd.DataFrame(fit.attempts, columns=["optimizer", "criterion", "grad_norm", "converged"])
    solution = solution_of(fit)
    for name, table in model_tables.items():
        io.write_csv(table, outputs[name])
    write_solution(solution, outputs["solution"])
    io.write_json(summary, outputs["fit"])


@dataclass
class PreparedModel:
    """A model's design on its data, checked (``prepare_model``): an LMM's ``Design`` or a GLMM's
    ``GLMMDesign``, and the warnings reading the data raised, which its fit.json states."""

    design: Design | GLMMDesign
    family: str = "gaussian"
    data_warnings: list[warnings.WarningMessage] = field(default_factory=list)


def prepare_model(
    data: pd.DataFrame,
    *,
    formula: str,
    dataset: str,
    model: str | None = None,
    weights: str | None = None,
    family: str = "gaussian",
    link: str | None = None,
) -> PreparedModel:
    """The design of ``formula`` on ``data`` (prior weights from column ``weights``): what
    ``fit_and_write`` fits. Data the formula cannot use (a missing column, a response its
    ``family`` cannot take) is refused in one line naming ``model``, before any fit."""
    if family == "gaussian":
        try:
            return PreparedModel(build_design(formula, data, weights))
        except (DesignError, FormulaError) as error:
            raise DesignError(f"model {model!r}: {error}" if model else str(error)) from None
    from lmmflow.engine.families import GLMMError  # scipy.stats: only GLMM jobs import it
    from lmmflow.engine.glmm_design import glmm_design

    with warnings.catch_warnings(record=True) as seen:  # e.g. non-integer counts: into fit.json too
        warnings.simplefilter("always")
        try:
            design = glmm_design(formula, data, family, link, weights)
        except (GLMMError, DesignError, FormulaError) as error:
            raise GLMMError(f"model {model!r} (data set {dataset!r}): {error}" if model else str(error)) from None
    return PreparedModel(design, family, list(seen))


def fit_and_write(
    prepared: PreparedModel,
    *,
    dataset: str,
    formula: str,
    engine: str,
    outputs: dict[str, str],
    reml: bool = True,
    weights: str | None = None,
    nAGQ: int = 1,
) -> None:
    """Fit the model ``prepare_model`` read (``formula`` on ``dataset``, prior weights from column
    ``weights``) with ``engine`` by REML (or ML: ``reml=False``; ``fit_model``) and write every
    output of the model (``write_model_outputs``; fit.json is ``tables.fit_summary``). A binomial
    or poisson model is lme4's glmer with ``nAGQ`` (``lmmflow.outputs.glmm_tables``)."""
    if prepared.family != "gaussian":
        from lmmflow.outputs.glmm_tables import glmm_fit_and_write

        return glmm_fit_and_write(
            prepared.design,
            dataset=dataset,
            formula=formula,
            nAGQ=nAGQ,
            weights=weights,
            outputs=outputs,
            data_warnings=prepared.data_warnings,
        )
    design = prepared.design
    fit = fit_model(design, engine, reml=reml)
    summary = tables.fit_summary(design, fit, dataset=dataset, formula=formula)
    write_model_outputs(design, fit, summary, outputs)
