"""Likelihood-ratio tests between models, as lme4's ``anova(m1, m2, ...)`` computes them.

lme4 (1.1-31, ``anova.merMod``) refits REML fits by ML first (``refit = TRUE``), orders the
models by their number of parameters (``order``, which keeps ties in the given order), and
compares each with the one before it:

    Chisq = 2 max(0, logLik_i - logLik_{i-1}),  Df = npar_i - npar_{i-1},
    p_value = P(chi^2_Df > Chisq), NA where Df = 0.

Comparisons need the same data (lme4 refuses models "not all fitted to the same size of
dataset"); ``check_comparable`` refuses them naming the models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import chdtrc  # the chi-square tail, without scipy.stats' ~1 s import

from lmmflow.engine.estimates import Estimates
from lmmflow.model.design import Design, build_design
from lmmflow.outputs.tables import information_criteria, n_parameters

COLUMNS = ["model", "npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "p_value"]
REFIT_NOTE = "refitted with ML (instead of REML)"
# What a row that is no test says: lme4's anova() prints a step of Df 0 with no p-value (two models
# with as many parameters cannot be nested in each other); information criteria compare them
NOT_NESTED = "not nested; compare by AICc"
# The last column of a written table: how each row's likelihood was obtained
FIT_LABELS = {True: "ML refit of the REML fit", False: "ML fit"}


class IncomparableModels(ValueError):
    """Models that a likelihood-ratio test cannot compare; the message names them."""


@dataclass(frozen=True)
class MLFit:
    """One model of a comparison: its ML log-likelihood and what makes models comparable.

    ``npar`` counts fixed effects, variance and covariance parameters and the residual variance
    (lme4's ``attr(logLik, "df")``). ``refitted`` marks a model configured for REML whose ML
    refit this is.
    """

    name: str
    loglik: float
    npar: int
    n_obs: int
    dataset: str = ""
    response: str = ""
    refitted: bool = False


def ml_fit(name: str, design: Design, fit: Estimates, *, dataset: str = "", refitted: bool = False) -> MLFit:
    """The comparison entry of an ML fit of ``design``; a REML fit is refused (refit it by ML)."""
    if fit.reml:
        raise ValueError(f"model {name!r}: a likelihood-ratio test needs its ML fit, not the REML fit")
    return MLFit(
        name=name,
        loglik=float(fit.loglik),
        npar=n_parameters(design),
        n_obs=design.n_obs,
        dataset=dataset,
        response=design.response,
        refitted=refitted,
    )


def check_comparable(models: Sequence[MLFit]) -> None:
    """Raise ``IncomparableModels`` unless there are two or more distinctly named models fitted
    to the same data set, response and number of observations."""
    names = [model.name for model in models]
    if len(models) < 2:
        raise IncomparableModels(f"a likelihood-ratio test compares two or more models, got {names}")
    if len(set(names)) < len(names):
        raise IncomparableModels(f"model names repeat in {names}")
    for attribute, what in (("dataset", "data set"), ("response", "response"), ("n_obs", "number of observations")):
        values = {model.name: getattr(model, attribute) for model in models}
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{name}: {value!r}" for name, value in values.items())
            raise IncomparableModels(f"models are not comparable: they differ in {what} ({listed})")


def anova_table(models: Sequence[MLFit]) -> pd.DataFrame:
    """lme4's ``anova()`` table of ML fits: columns ``COLUMNS``, rows by increasing ``npar`` (ties
    in the given order). Chisq, Df and p_value are NaN on the first row, p_value also where Df is
    0. ``table.attrs["note"]`` says which models were refitted with ML ("" when none)."""
    check_comparable(models)
    ordered = sorted(models, key=lambda model: model.npar)  # stable, as R's order()
    loglik = np.array([model.loglik for model in ordered])
    npar = np.array([model.npar for model in ordered])
    criteria = [information_criteria(model.loglik, model.npar, model.n_obs) for model in ordered]
    steps = np.diff(npar)
    chisq = 2.0 * np.maximum(0.0, np.diff(loglik))
    p_value = [chdtrc(k, x) if k > 0 else np.nan for x, k in zip(chisq, steps)]
    table = pd.DataFrame(
        {
            "model": [model.name for model in ordered],
            "npar": npar,
            "AIC": [c["AIC"] for c in criteria],
            "BIC": [c["BIC"] for c in criteria],
            "logLik": loglik,
            "deviance": -2.0 * loglik,
            "Chisq": [np.nan, *chisq],
            "Df": pd.array([pd.NA, *steps], dtype="Int64"),
            "p_value": [np.nan, *p_value],
        }
    )
    refitted = [model.name for model in ordered if model.refitted]
    table.attrs["note"] = f"{', '.join(refitted)} {REFIT_NOTE}" if refitted else ""
    return table


def is_test(df, smaller_fixed: Sequence[str] | None = None, bigger_fixed: Sequence[str] | None = None) -> bool:
    """Whether a row of ``anova_table`` with this ``Df`` tests nested models (else ``NOT_NESTED``):
    the first row (NA) is no test; neither is a step of 0 parameters (lme4 prints no p-value), nor
    one whose smaller model has a fixed effect the bigger one lacks (``smaller_fixed`` and
    ``bigger_fixed``: the two models' fixed-effect names, when known), where lme4 prints a p-value
    of models that are not nested."""
    if pd.isna(df) or int(df) <= 0:
        return False
    return smaller_fixed is None or bigger_fixed is None or set(smaller_fixed) <= set(bigger_fixed)


def ml_fits(data: pd.DataFrame, models: Mapping[str, dict], solutions: Mapping[str, str], dataset: str) -> list[MLFit]:
    """The ML fit of each configured model (``models``: name -> its config entry), as lme4's
    ``anova()`` with ``refit = TRUE`` uses them: a model fitted by ML is read back from its
    solution (``solutions``: name -> solution.json), a REML one is refitted by ML; a GLMM is read
    back as fitted (``lmmflow.inference.glmm_anova``)."""
    from lmmflow.fit import fit_model  # the fitting stack only where a refit needs it
    from lmmflow.inference.glmm_anova import glmm_ml_fit, is_glmm
    from lmmflow.outputs.solution import read_fit

    fits = []
    for name, spec in models.items():
        if is_glmm(spec):  # glmer fits: anova() uses them as fitted
            fits.append(glmm_ml_fit(name, solutions[name], dataset))
            continue
        if spec["reml"]:
            design = build_design(spec["formula"], data, spec.get("weights"))
            fit = fit_model(design, spec["engine"], reml=False)
        else:
            design, fit = read_fit(data, spec["formula"], solutions[name], spec.get("weights"))
        fits.append(ml_fit(name, design, fit, dataset=dataset, refitted=spec["reml"]))
    return fits


def ml_criteria_of(fits: Sequence[MLFit]) -> dict[str, dict]:
    """name -> ML logLik, AIC, BIC and AICc: what ``compare.compare_models`` ranks ML fits by."""
    return {fit.name: {"logLik": fit.loglik, **information_criteria(fit.loglik, fit.npar, fit.n_obs)} for fit in fits}


def likelihood_ratio_test(fits: Sequence[MLFit]) -> pd.DataFrame:
    """The table written to results/lrt/<name>.csv: ``anova_table``'s columns, then ``fit``
    saying of each row whether it is an ML refit of a REML fit (lme4's refit = TRUE)."""
    table = anova_table(fits)
    refitted = {fit.name: fit.refitted for fit in fits}
    table["fit"] = [FIT_LABELS[refitted[name]] for name in table["model"]]
    return table
