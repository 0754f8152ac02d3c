"""A GLMM's outputs under results/models/<m>/: the LMMs' files where they apply (docs/outputs.md).

fixed_effects.csv has z and a normal p-value (lme4's glmer ``summary()``), variance_components.csv
no residual row, fitted.csv the response and link scales; fit.json records the family, link,
nAGQ, what the optimizer ran (``GLMMFit.record``, timings left out so reruns are byte-identical)
and the independent re-evaluation of the deviance at the solution.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmmflow.engine.glmm_design import GLMMDesign
from lmmflow.engine.glmm_results import GLMMFit
from lmmflow.outputs import io
from lmmflow.outputs.tables import wald_interval

GLMM_FAMILIES = ("binomial", "poisson")
TIMINGS = ("seconds",)  # left out of fit.json: deterministic outputs


def lme4_name(name: str) -> str:
    """The design's effect name as the LMM tables spell it (``Intercept``)."""
    return "Intercept" if name == "(Intercept)" else name


def fixed_effects(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    """term, value, se, z, p_value (lme4's Wald z test), lower_2.5, upper_97.5 (Wald interval)."""
    lower, upper = wald_interval(fit.beta, fit.se)
    return pd.DataFrame(
        {
            "term": list(gd.design.fixed_names),
            "value": fit.beta,
            "se": fit.se,
            "z": fit.z,
            "p_value": fit.p_values,
            "lower_2.5": lower,
            "upper_97.5": upper,
        }
    )


def variance_components(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    """group, effect, variance, sd, var_prop (share of the random-effect variances: no residual)."""
    rows = [(r["grp"], lme4_name(r["var1"]), r["vcov"]) for r in fit.varcorr if r["var2"] is None]
    table = pd.DataFrame(rows, columns=["group", "effect", "variance"])
    table["sd"] = np.sqrt(table["variance"])
    table["var_prop"] = table["variance"] / table["variance"].sum()
    return table


def re_correlations(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    rows = [
        (r["grp"], lme4_name(r["var1"]), lme4_name(r["var2"]), r["sdcor"]) for r in fit.varcorr if r["var2"] is not None
    ]
    return pd.DataFrame(rows, columns=["group", "effect_1", "effect_2", "correlation"])


def random_effects(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    """group_var, effect, group, value, se, lower_2.5, upper_97.5: conditional modes and SDs."""
    frames = []
    for block in gd.design.blocks:
        modes, sds = fit.ranef[block.label], fit.ranef_sd[block.label]
        for column in modes.columns:
            frames.append(
                pd.DataFrame(
                    {
                        "group_var": block.group_var,
                        "effect": lme4_name(column),
                        "group": list(block.levels),
                        "value": modes[column].to_numpy(),
                        "se": sds[column].to_numpy(),
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table["lower_2.5"], table["upper_97.5"] = wald_interval(table["value"], table["se"])
    return table


def random_coefficients(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    """group_var, effect, group, value (fixed + random: lme4's ``coef``), as the LMM table."""
    from lmmflow.outputs.tables import random_coefficients as lmm_random_coefficients

    return lmm_random_coefficients(gd.design, EstimatesView(gd, fit))


class EstimatesView:
    """What ``tables.random_coefficients`` and ``predictions.linear_predictor`` read of an LMM's
    fit (beta, per-block modes and conditional SDs), from a GLMMFit."""

    def __init__(self, gd: GLMMDesign, fit: GLMMFit):
        self.beta = fit.beta
        self.modes = [fit.ranef[b.label].to_numpy() for b in gd.design.blocks]
        self.conditional_sds = [fit.ranef_sd[b.label].to_numpy() for b in gd.design.blocks]


def fitted(gd: GLMMDesign, fit: GLMMFit) -> pd.DataFrame:
    """row (in the prepared data), fitted (response scale: probability or mean), link (eta),
    residual (response - fitted; binomial: the observed proportion)."""
    return pd.DataFrame({"row": gd.design.rows, "fitted": fit.mu, "link": fit.eta, "residual": gd.y - fit.mu})


def attempts(fit: GLMMFit) -> pd.DataFrame:
    """One row per optimizer run: optimizer, criterion (the deviance it reached), grad_norm,
    converged; the last run's row, whose end was polished into the solution, has the checks at
    the optimum (max |gradient| and ``converged``)."""
    runs = fit.optimizer.get("runs") or [{"method": fit.optimizer["method"]}]
    table = pd.DataFrame(
        {
            "optimizer": [run.get("method", "") for run in runs],
            "criterion": [run.get("fun", np.nan) for run in runs],
            "grad_norm": np.nan,  # the runs record no gradient
            "converged": ["success" in str(run.get("message", "")).lower() for run in runs],
        }
    )
    last = table.index[-1]
    table.loc[last, ["criterion", "grad_norm"]] = fit.objective, fit.optimizer["max_abs_gradient"]
    table.loc[last, "converged"] = converged(fit)
    return table


def converged(fit: GLMMFit) -> bool:
    """At the optimum: PIRLS converged there, the Hessian positive definite, the gradient scaled
    by it (the Newton step) below lme4's 1e-3 check."""
    record = fit.optimizer
    return bool(
        record["pirls_converged_at_solution"]
        and record["hessian_positive_definite"]
        and record["max_abs_scaled_gradient"] < 1e-3
    )


def _deterministic(value):
    """``value`` without timings (fit.json is byte-identical on reruns)."""
    if isinstance(value, dict):
        return {k: _deterministic(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list | tuple):
        return [_deterministic(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def fit_summary(gd: GLMMDesign, fit: GLMMFit, *, dataset: str, formula: str, weights: str | None) -> dict:
    """fit.json of a GLMM: the LMMs' keys where they apply, then the GLMM's own."""
    n_dropped = gd.design.n_dropped
    record = _deterministic(fit.record())
    verification = record.pop("verification", {}) or {}
    warnings = list(fit.warnings)
    if n_dropped:
        warnings.append(f"{n_dropped} rows with missing values in model columns were dropped")
    return {
        "dataset": dataset,
        "formula": formula,
        "family": fit.family,
        "link": fit.link,
        "nAGQ": fit.nAGQ,
        "weights": weights,
        "response": gd.response_kind,
        "n_obs": gd.design.n_obs,
        "n_dropped": n_dropped,
        "grouping_factor": gd.design.group_var,
        "n_groups": {block.group_var: block.n_levels for block in gd.design.blocks},
        "REML": False,
        "logLik": fit.logLik,
        "K": fit.npar,
        "AIC": fit.AIC,
        "BIC": fit.BIC,
        "AICc": fit.AICc,
        "deviance": fit.deviance,
        "deviance_lme4": fit.deviance_lme4,
        "n_random_effects": gd.design.n_random_effects,
        "fixed_effects": list(gd.design.fixed_names),
        "converged": converged(fit),
        "singular": fit.is_singular,
        "engine": "glmm",
        "verification": "glmm_laplace (sparse LU PIRLS)" if "laplace_deviance_independent" in verification else None,
        "verification_difference": verification.get("abs_difference"),
        "verification_details": verification,
        "optimizer": attempts(fit)["optimizer"].iloc[-1],
        "optimizer_record": record["optimizer"],
        "objective": record["objective"],
        "logLik_lme4_scale": record["logLik_lme4_scale"],
        "warnings": warnings,
    }


def solution(gd: GLMMDesign, fit: GLMMFit, dataset: str) -> dict:
    """solution.json of a GLMM: its parameters at full precision and what the likelihood-ratio
    tests and comparisons read (logLik, npar, n_obs, response) instead of refitting."""
    return {
        "family": fit.family,
        "link": fit.link,
        "nAGQ": fit.nAGQ,
        "theta": [float(t) for t in fit.theta],
        "beta": [float(b) for b in fit.beta],
        "logLik": float(fit.logLik),
        "npar": int(fit.npar),
        "n_obs": int(gd.design.n_obs),
        "dataset": dataset,
        "response": gd.response_text,
        "engine": "glmm",
    }


TABLES = {
    "fixed_effects": fixed_effects,
    "variance_components": variance_components,
    "re_correlations": re_correlations,
    "random_effects": random_effects,
    "random_coefficients": random_coefficients,
    "fitted": fitted,
}


def glmm_fit_and_write(
    gd: GLMMDesign,
    *,
    dataset: str,
    formula: str,
    nAGQ: int,
    weights: str | None,
    outputs: dict[str, str],
    data_warnings: Sequence[warnings.WarningMessage] = (),
) -> None:
    """Fit the GLMM of ``gd`` (``lmmflow.engine.glmm``, verified) and write every output of the
    model; everything is computed before the first file is written, fit.json last. fit.json's
    warnings state ``data_warnings`` (those reading the data raised, e.g. lme4's for non-integer
    counts) and the fit's own, each also shown as it came (the job's log)."""
    from lmmflow.engine.glmm import glmer_on_design

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = glmer_on_design(gd, nAGQ)
    seen = [*data_warnings, *seen]
    stated = [str(w.message) for w in seen if not issubclass(w.category, RuntimeWarning)]  # not numpy's
    fit.warnings.extend(message for message in dict.fromkeys(stated) if message not in fit.warnings)
    for w in seen:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    tables = {name: table(gd, fit) for name, table in TABLES.items()}
    tables["attempts"] = attempts(fit)
    summary = fit_summary(gd, fit, dataset=dataset, formula=formula, weights=weights)
    for name, table in tables.items():
        io.write_csv(table, outputs[name])
    io.write_json(solution(gd, fit, dataset), outputs["solution"])
    io.write_json(summary, outputs["fit"])
