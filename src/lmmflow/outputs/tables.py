"""mixedup-style tables from a fit: fixed effects, variance components, correlations, random effects.

Column names and row order follow R's mixedup (``extract_fixed_effects``, ``extract_vc``,
``extract_random_effects``, ``extract_random_coefs``); Wald intervals use the normal
distribution, as mixedup does; fixed effects' p-values are lmerTest's (Satterthwaite df, t test),
with mixedup's normal-approximation p-value beside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import ndtri

from lmmflow.engine.estimates import Estimates
from lmmflow.engine.parameters import correlation_matrix, covariances_to_theta, theta_lower_bounds

if TYPE_CHECKING:  # only for annotations: the table readers (coefficient checks, shrinkage) need no formulaic
    from lmmflow.model.design import Design

Z_975 = ndtri(0.975)
SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular default, on the relative Cholesky factor


def fixed_effects(design: Design, fit: Estimates) -> pd.DataFrame:
    """fixed_effects.csv: term, value, se (lme4's ``vcov``), t, df and p_value (lmerTest's
    Satterthwaite degrees of freedom and two-sided t test), p_value_z (the normal approximation,
    as mixedup), lower_2.5, upper_97.5 (Wald interval, as mixedup); one row per fixed effect."""
    # the engines (scipy.optimize, scipy.sparse) are needed for the tests only, not by the readers
    from lmmflow.inference.satterthwaite import fixed_effect_tests

    se = fixed_effect_se(fit)
    lower, upper = wald_interval(fit.beta, se)
    tests = fixed_effect_tests(design, fit)
    return pd.DataFrame(
        {
            "term": design.fixed_names,
            "value": fit.beta,
            "se": se,
            "t": fit.beta / se,
            "df": tests["df"].to_numpy(),
            "p_value": tests["p_value"].to_numpy(),
            "p_value_z": tests["p_value_z"].to_numpy(),
            "lower_2.5": lower,
            "upper_97.5": upper,
        }
    )


def fixed_effect_se(fit: Estimates) -> np.ndarray:
    """The fixed effects' standard errors, from lme4's ``vcov``."""
    return np.sqrt(np.diag(fit.beta_cov))


def wald_interval(value, se):
    """The 95% Wald interval value -+ z_0.975 se (mixedup's, lme4's ``confint(method = "Wald")``)."""
    return value - Z_975 * se, value + Z_975 * se


def variance_components(design: Design, fit: Estimates) -> pd.DataFrame:
    """variance_components.csv: group (the block's label), effect, variance, sd, var_prop (share of
    all variances, the residual's included); one row per random effect, then ``Residual``."""
    rows = [
        (block.label, effect, cov[j, j])
        for block, cov in zip(design.blocks, fit.covariances)
        for j, effect in enumerate(block.effects)
    ]
    rows.append(("Residual", "", fit.sigma2))
    table = pd.DataFrame(rows, columns=["group", "effect", "variance"])
    table["sd"] = np.sqrt(table["variance"])
    table["var_prop"] = table["variance"] / table["variance"].sum()
    return table


def re_correlations(design: Design, fit: Estimates) -> pd.DataFrame:
    """re_correlations.csv: group, effect_1, effect_2, correlation; one row per pair of effects of
    a block (none for uncorrelated blocks). NaN where an SD is zero, as lme4 (``lmmflow.engine.parameters``)."""
    rows = []
    for block, cov in zip(design.blocks, fit.covariances):
        correlations = correlation_matrix(cov)
        for i in range(block.n_effects):
            for j in range(i + 1, block.n_effects):
                rows.append((block.label, block.effects[i], block.effects[j], correlations[i, j]))
    return pd.DataFrame(rows, columns=["group", "effect_1", "effect_2", "correlation"])


def random_effects(design: Design, fit: Estimates) -> pd.DataFrame:
    """random_effects.csv: group_var, effect, group, value, se, lower_2.5, upper_97.5: conditional
    modes and conditional SDs (lme4's ``ranef(condVar = TRUE)``), block by block, effect by effect."""
    frames = []
    for block, modes, sds in zip(design.blocks, fit.modes, fit.conditional_sds):
        for j, effect in enumerate(block.effects):
            frames.append(
                pd.DataFrame(
                    {
                        "group_var": block.group_var,
                        "effect": effect,
                        "group": block.levels,
                        "value": modes[:, j],
                        "se": sds[:, j],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table["lower_2.5"], table["upper_97.5"] = wald_interval(table["value"], table["se"])
    return table


def random_coefficients(design: Design, fit: Estimates) -> pd.DataFrame:
    """random_coefficients.csv, lme4's ``coef``: group_var, effect, group, value (fixed effect +
    random effect, matched by name) per grouping factor.

    Effects only random (``seslow`` in ``(0 + ses | g)``) come first, then every fixed effect,
    as lme4 orders them.
    """
    ranef = random_effects(design, fit)
    fixed = dict(zip(design.fixed_names, fit.beta))
    frames = []
    for group_var, blocks in _blocks_by_group_var(design).items():
        levels = blocks[0].levels
        random_names = [e for block in blocks for e in block.effects]
        effects = [e for e in random_names if e not in fixed] + list(design.fixed_names)
        own = ranef[ranef["group_var"] == group_var]
        for effect in effects:
            values = own[own["effect"] == effect].set_index("group")["value"]
            frames.append(
                pd.DataFrame(
                    {
                        "group_var": group_var,
                        "effect": effect,
                        "group": levels,
                        "value": fixed.get(effect, 0.0) + values.reindex(levels, fill_value=0.0).to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def coefficient_check(fixed: pd.DataFrame, random: pd.DataFrame, coefficients: pd.DataFrame) -> pd.DataFrame:
    """The chapter's sleep exercise: fixef + ranef beside lme4's coef, and their difference."""
    table = coefficients.rename(columns={"value": "coef"})
    table["fixef"] = table["effect"].map(fixed.set_index("term")["value"]).fillna(0.0)
    ranef = random.groupby(["group_var", "effect", "group"])["value"].sum()
    keys = pd.MultiIndex.from_frame(table[["group_var", "effect", "group"]].astype(str))
    table["ranef"] = ranef.reindex(keys, fill_value=0.0).to_numpy()
    table["fixef_plus_ranef"] = table["fixef"] + table["ranef"]
    table["difference"] = table["coef"] - table["fixef_plus_ranef"]
    return table[["group_var", "effect", "group", "fixef", "ranef", "fixef_plus_ranef", "coef", "difference"]]


def _blocks_by_group_var(design: Design) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for block in design.blocks:
        grouped.setdefault(block.group_var, []).append(block)
    return grouped


def n_parameters(design: Design) -> int:
    """K: fixed effects + variances and covariances of every block + the residual variance."""
    return len(design.fixed_names) + sum(b.n_effects * (b.n_effects + 1) // 2 for b in design.blocks) + 1


def information_criteria(loglik: float, k: int, n: int) -> dict[str, float]:
    """AIC, BIC (log(n) per parameter, as lme4's ``BIC``) and AICc of a log-likelihood with ``k``
    parameters and ``n`` observations; of the criterion the model was fitted by (REML or ML), as
    lme4 computes them."""
    aic = -2 * loglik + 2 * k
    return {"AIC": aic, "BIC": -2 * loglik + np.log(n) * k, "AICc": aic + 2 * k * (k + 1) / (n - k - 1)}


def is_singular(fit: Estimates) -> bool:
    """lme4's isSingular: a bounded (diagonal) entry of theta below 1e-4; a zero variance and a
    correlation at +-1 both show up there."""
    theta = covariances_to_theta(fit.covariances, fit.sigma2)
    bounded = theta_lower_bounds([len(cov) for cov in fit.covariances]) == 0
    return bool(np.any(theta[bounded] < SINGULAR_TOLERANCE))


def fit_summary(design: Design, fit: Estimates, *, dataset: str, formula: str) -> dict:
    """The content of fit.json: everything but timings, so reruns are byte-identical.

    ``grouping_factor`` is the factor every term nests in (null when factors are crossed);
    ``path`` the engine that fitted; ``verification`` the independent re-evaluation of the REML
    criterion at the solution, ``verification_logLik`` its value and ``verification_difference``
    the absolute difference from ``logLik`` (null when none could run); ``dropped_fixed_effects``
    the aliased fixed-effect columns dropped as lme4 drops them (``design.lme4_rank_columns``).
    """
    k = n_parameters(design)
    warnings = [*design.warnings, *fit.warnings]
    if design.n_dropped:
        warnings.append(f"{design.n_dropped} rows with missing values in model columns were dropped")
    if design.dropped_fixed:
        from lmmflow.model.design import rank_deficiency_warning  # fit jobs only, which built the design

        warnings.append(rank_deficiency_warning(len(design.dropped_fixed)))
    from lmmflow.engine.choice import design_work  # as in fixed_effects
    from lmmflow.inference.satterthwaite import skipped_reason

    if (reason := skipped_reason(design_work(design), len(fit.lme4_theta()))) is not None:
        warnings.append(reason)
    return {
        "dataset": dataset,
        "formula": formula,
        "n_obs": design.n_obs,
        "n_dropped": design.n_dropped,
        "grouping_factor": design.group_var,
        "n_groups": {block.group_var: block.n_levels for block in design.blocks},
        "REML": bool(fit.reml),
        "logLik": fit.loglik,
        "K": k,
        **information_criteria(fit.loglik, k, design.n_obs),
        "n_random_effects": design.n_random_effects,
        "fixed_effects": list(design.fixed_names),
        "dropped_fixed_effects": list(design.dropped_fixed),
        "converged": bool(fit.converged),
        "singular": is_singular(fit),
        "engine": fit.engine,
        "verification": fit.verification,
        "verification_logLik": fit.verification_loglik,
        "verification_difference": fit.verification_difference,
        "statsmodels_logLik": fit.statsmodels_loglik,
        "optimizer": fit.optimizer,
        "warnings": warnings,
    } | _offset_and_weights(design)


def _offset_and_weights(design: Design) -> dict:
    """fit.json's record of an offset and prior weights, only when the model has them."""
    return {
        key: True for key, value in (("offset", design.offset), ("prior_weights", design.weights)) if value is not None
    }
