"""A fitted GLMM as text, as lme4's ``summary(glmer(...))`` lays it out: the method, family and
link, AIC / BIC / logLik / deviance / df.resid, Pearson residuals, random effects (no residual),
fixed effects with Wald z tests. The numbers come from the model's tables (``glmm_tables``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmflow.outputs.model_summary import QUANTILES, _aligned, _random_effects, likelihood_line


def glmm_summary_text(
    *,
    formula: str,
    family: str,
    link: str,
    nAGQ: int,
    criteria: dict[str, float],
    n_parameters: int,
    pearson_residuals: np.ndarray,
    variance_components: pd.DataFrame,
    re_correlations: pd.DataFrame,
    n_groups: dict[str, int],
    n_obs: int,
    fixed_effects: pd.DataFrame,
    fitted_by: str,
    warnings: list[str],
) -> str:
    approximation = "Laplace Approximation" if nAGQ == 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {nAGQ}"
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood ({approximation}) ({fitted_by})",
        f" Family: {family}  ( {link} )",
        f"Formula: {formula}",
        "",
        likelihood_line(criteria, n_obs, n_parameters),
    ]
    quantiles = np.quantile(pearson_residuals, list(QUANTILES.values()))
    lines += ["", "Scaled residuals:", _aligned([dict(zip(QUANTILES, (f"{q:.4f}" for q in quantiles)))])]
    lines += ["", "Random effects:", _random_effects(variance_components, re_correlations)]
    groups = "; ".join(f"{name}, {count}" for name, count in n_groups.items())
    lines += [f"Number of obs: {n_obs}, groups: {groups}", "", "Fixed effects:", _fixed_effects(fixed_effects)]
    if warnings:
        lines += ["", *(f"Warning: {warning}" for warning in warnings)]
    return "\n".join(lines)


def _fixed_effects(table: pd.DataFrame) -> str:
    rows = [
        {"": term, "Estimate": f"{value:.6g}", "Std. Error": f"{se:.4g}", "z value": f"{z:.3f}", "Pr(>|z|)": f"{p:.3g}"}
        for term, value, se, z, p in table[["term", "value", "se", "z", "p_value"]].itertuples(index=False)
    ]
    return _aligned(rows, left=("",))
