"""Choose the fitting path, verify its solution with statsmodels, and write a model's outputs.

The vectorized REML path (``lmmflow.reml``) fits every model whose random terms nest in one
grouping factor; its REML log-likelihood is re-evaluated by statsmodels' own ``MixedLM.loglike``
on every fit. When they disagree, or when asked, the robust statsmodels fit (``lmmflow.smfit``)
is used instead.
"""

from __future__ import annotations

import pandas as pd

from lmmflow import extract, io
from lmmflow.design import Design, build_design
from lmmflow.estimates import Estimates
from lmmflow.predict import fitted_values
from lmmflow.reml import fit_reml
from lmmflow.smfit import UnsupportedByStatsmodels, fit_statsmodels, statsmodels_loglike
from lmmflow.solution import solution_of, write_solution

VERIFY_TOLERANCE = 1e-6
ENGINES = ("fast", "statsmodels")

MODEL_TABLES = {
    "fixed_effects": extract.fixed_effects,
    "variance_components": extract.variance_components,
    "re_correlations": extract.re_correlations,
    "random_effects": extract.random_effects,
    "random_coefficients": extract.random_coefficients,
    "fitted": fitted_values,
}


def fit_model(design: Design, engine: str = "fast", reml: bool = True) -> Estimates:
    """The REML (or, ``reml=False``, ML) fit of ``design`` that every table of the model comes from.

    ``engine`` "fast": the vectorized path (``lmmflow.reml``), its solution verified by
    statsmodels and replaced by the robust statsmodels fit if they disagree; "statsmodels": that
    fit directly. The returned ``Estimates`` say which path computed them and why (warnings).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {ENGINES}")
    if engine == "statsmodels":
        return fit_statsmodels(design, reml=reml)
    return _verified(design, fit_reml(design, reml=reml))


def _verified(design: Design, fit: Estimates) -> Estimates:
    try:
        reference = statsmodels_loglike(design, fit)
    except UnsupportedByStatsmodels as reason:
        fit.warnings.append(f"not verified by statsmodels, which cannot express this model: {reason}")
        return fit
    if abs(reference - fit.loglik) <= VERIFY_TOLERANCE:
        fit.statsmodels_loglik = reference
        return fit
    fallback = fit_statsmodels(design, reml=fit.reml)
    fallback.warnings.append(
        f"fast path rejected: its REML logLik {fit.loglik:.8f} differs from statsmodels' "
        f"{reference:.8f} at the same parameters; used the robust statsmodels fit"
    )
    return fallback


def write_model_outputs(design: Design, fit: Estimates, summary: dict, outputs: dict[str, str]) -> None:
    """Write fit.json, solution.json, attempts.csv and the MODEL_TABLES to the paths named in ``outputs``.

    ``solution`` is the fit's exact parameters (``lmmflow.solution``), which interval jobs start
    from; ``attempts`` one row per optimizer attempt (optimizer, reml_criterion, grad_norm,
    converged). Everything is computed before the first file is written, so an error leaves no
    file behind; fit.json comes last, as the sign that the others are complete.
    """
    tables = {name: table(design, fit) for name, table in MODEL_TABLES.items()}
    tables["attempts"] = pd.DataFrame(fit.attempts, columns=["optimizer", "reml_criterion", "grad_norm", "converged"])
    solution = solution_of(fit)
    for name, table in tables.items():
        io.write_csv(table, outputs[name])
    write_solution(solution, outputs["solution"])
    io.write_json(summary, outputs["fit"])


def fit_and_write(
    data: pd.DataFrame, *, dataset: str, formula: str, engine: str, outputs: dict[str, str], reml: bool = True
) -> None:
    """Fit ``formula`` to ``data`` with ``engine`` by REML (or ML: ``reml=False``; ``fit_model``)
    and write every output of the model (``write_model_outputs``; fit.json is ``extract.fit_summary``)."""
    design = build_design(formula, data)
    fit = fit_model(design, engine, reml=reml)
    summary = extract.fit_summary(design, fit, dataset=dataset, formula=formula)
    write_model_outputs(design, fit, summary, outputs)
