"""A fitted model as text, in the spirit of lme4's ``summary()`` (with lmerTest's t tests).

Every number comes from the model's tables (``lmmflow.outputs.tables``); this module only lays
them out: the formula and criterion, scaled residuals, the variance components with their
correlations, the number of observations and groups, the fixed effects with SE, Satterthwaite
df and p-value, and the fit's warnings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = {"Min": 0.0, "1Q": 0.25, "Median": 0.5, "3Q": 0.75, "Max": 1.0}


def summary_text(
    *,
    formula: str,
    reml: bool,
    criteria: dict[str, float],
    scaled_residuals: np.ndarray,
    variance_components: pd.DataFrame,
    re_correlations: pd.DataFrame,
    n_groups: dict[str, int],
    n_obs: int,
    n_parameters: int,
    fixed_effects: pd.DataFrame,
    fitted_by: str,
    warnings: list[str],
) -> str:
    """The summary's text; ``criteria`` holds logLik, AIC and BIC, ``n_parameters`` is lme4's
    npar (its residual df is n_obs - npar), ``fitted_by`` the engine line."""
    method = "REML" if reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {method} ({fitted_by})", f"Formula: {formula}", ""]
    if reml:
        lines.append(f"REML criterion at convergence: {-2 * criteria['logLik']:.4f}")
    else:
        lines.append(likelihood_line(criteria, n_obs, n_parameters))
    quantiles = np.quantile(scaled_residuals, list(QUANTILES.values()))  # R's quantile type 7
    lines += ["", "Scaled residuals:", _aligned([dict(zip(QUANTILES, (f"{q:.4f}" for q in quantiles)))])]
    lines += ["", "Random effects:", _random_effects(variance_components, re_correlations)]
    groups = "; ".join(f"{name}, {count}" for name, count in n_groups.items())
    lines.append(f"Number of obs: {n_obs}, groups: {groups}")
    lines += ["", "Fixed effects (t tests on Satterthwaite's degrees of freedom, as lmerTest):"]
    lines.append(_fixed_effects(fixed_effects))
    if warnings:
        lines += ["", *(f"Warning: {warning}" for warning in warnings)]
    return "\n".join(lines)


def likelihood_line(criteria: dict, n_obs: int, n_parameters: int) -> str:
    """lme4's AIC, BIC, logLik, deviance and residual df line of a maximum-likelihood fit."""
    header = {
        "AIC": criteria["AIC"],
        "BIC": criteria["BIC"],
        "logLik": criteria["logLik"],
        "deviance": -2 * criteria["logLik"],
        "df.resid": n_obs - n_parameters,
    }
    return pd.DataFrame([header]).to_string(index=False, float_format=lambda v: f"{v:.1f}")


def _random_effects(components: pd.DataFrame, correlations: pd.DataFrame) -> str:
    """lme4's VarCorr layout: group named once, then each effect with its variance, SD and its
    correlations with the block's earlier effects."""
    rows = []
    for group, block in components.groupby("group", sort=False):
        effects = list(block["effect"])
        for j, (effect, variance, sd) in enumerate(zip(effects, block["variance"], block["sd"])):
            row = {"Groups": group if j == 0 else "", "Name": effect, "Variance": f"{variance:.4g}"}
            row["Std.Dev."] = f"{sd:.4g}"
            for i in range(j):
                pair = correlations[
                    (correlations["group"] == group)
                    & (correlations["effect_1"] == effects[i])
                    & (correlations["effect_2"] == effect)
                ]
                row[f"Corr{'' if i == 0 else i + 1}"] = f"{pair['correlation'].iloc[0]:.2f}"
            rows.append(row)
    return _aligned(rows, left=("Groups", "Name"))


def _fixed_effects(table: pd.DataFrame) -> str:
    rows = [
        {
            "": term,
            "Estimate": f"{value:.6g}",
            "Std. Error": f"{se:.4g}",
            "df": f"{df:.2f}",
            "t value": f"{t:.3f}",
            "Pr(>|t|)": f"{p:.3g}",
        }
        for term, value, se, df, t, p in table[["term", "value", "se", "df", "t", "p_value"]].itertuples(index=False)
    ]
    return _aligned(rows, left=("",))


def _aligned(rows: list[dict[str, str]], left: tuple[str, ...] = ()) -> str:
    """Rows of text cells as columns: ``left`` columns left-aligned, the others right-aligned."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    cells = [columns] + [[row.get(column, "") for column in columns] for row in rows]
    widths = [max(len(line[j]) for line in cells) for j in range(len(columns))]
    return "\n".join(
        " ".join(
            cell.ljust(width) if column in left else cell.rjust(width)
            for cell, width, column in zip(line, widths, columns)
        ).rstrip()
        for line in cells
    )
