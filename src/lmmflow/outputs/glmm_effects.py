"""A binomial GLMM's effects on the scales a reader thinks in: odds ratios, and what the
random-intercept variance means for probabilities (from the model's fixed_effects.csv and
variance_components.csv, and its profile.csv when the model has profile intervals, as the
workflow writes them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

INTERCEPT = "Intercept"


def odds_ratios(fixed: pd.DataFrame, profile: pd.DataFrame | None = None) -> pd.DataFrame:
    """term, odds_ratio, lower_2.5, upper_97.5, p_value (Wald z test); the intercept's row is the
    odds at the reference levels with every covariate at 0. The interval is the exponentiated
    profile-likelihood interval of ``profile`` (the model's profile.csv: lme4's default
    ``confint``) if given, else the exponentiated Wald interval of ``fixed``."""
    if profile is None:
        lower, upper = fixed["lower_2.5"], fixed["upper_97.5"]
    else:
        lower, upper = profile_bounds(fixed, profile)
    # The odds ratio's interval is exp of the log-odds bounds. For the profile interval this is
    # exact: profile-likelihood intervals are invariant to monotone transformations (the
    # likelihood-ratio statistic of exp(beta) = c is that of beta = log c), so profiling the odds
    # ratio itself gives these bounds. The Wald interval is symmetric on the log-odds scale, where
    # its normal approximation is made; its exp is not a delta-method interval of exp(beta).
    return pd.DataFrame(
        {
            "term": fixed["term"],
            "odds_ratio": np.exp(fixed["value"]),
            "lower_2.5": np.exp(lower),
            "upper_97.5": np.exp(upper),
            "p_value": fixed["p_value"],
        }
    )


def profile_name(term: str) -> str:
    """A fixed_effects.csv term's parameter name in profile.csv (lme4's: ``(Intercept)``)."""
    return "(Intercept)" if term == INTERCEPT else term


def profile_bounds(fixed: pd.DataFrame, profile: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The profile.csv bounds (log-odds scale) of each fixed_effects.csv term, in its order;
    an error if a term is not profiled or the two tables are not of one fit (their estimates differ)."""
    rows = profile.set_index("parameter")
    names = [profile_name(term) for term in fixed["term"]]
    missing = [name for name in names if name not in rows.index]
    if missing:
        raise ValueError(f"profile.csv has no interval for {', '.join(missing)} (it has {', '.join(rows.index)})")
    rows = rows.loc[names]
    if not np.allclose(rows["estimate"].to_numpy(float), fixed["value"].to_numpy(float), rtol=1e-6, atol=1e-9):
        raise ValueError("profile.csv's fixed-effect estimates differ from fixed_effects.csv's: not the same fit")
    return rows["lower_2.5"].to_numpy(float), rows["upper_97.5"].to_numpy(float)


def intercept_sd_interval(profile: pd.DataFrame, group: str) -> tuple[float, float]:
    """The profile-likelihood interval of the random intercept's SD of ``group`` (profile.csv's
    ``sd_(Intercept)|group``)."""
    name = f"sd_(Intercept)|{group}"
    rows = profile[profile["parameter"] == name]
    if rows.empty:
        raise ValueError(f"profile.csv has no interval for {name} (it has {', '.join(profile['parameter'])})")
    return float(rows["lower_2.5"].iloc[0]), float(rows["upper_97.5"].iloc[0])


def intercept_sd(components: pd.DataFrame, group: str | None = None) -> tuple[str, float]:
    """The grouping factor and SD of the (first) random intercept."""
    rows = components[components["effect"] == INTERCEPT]
    if group is not None:
        rows = rows[rows["group"] == group]
    if rows.empty:
        raise ValueError(f"no random intercept{'' if group is None else f' for {group!r}'} in the model")
    return str(rows["group"].iloc[0]), float(rows["sd"].iloc[0])


def person_spread(fixed: pd.DataFrame, components: pd.DataFrame, group: str | None = None) -> dict:
    """The probability of a success for a typical member of the grouping factor (random
    intercept 0) and for members 1 SD below and above, at the reference levels and covariates 0;
    the median odds ratio (Merlo et al. 2006: the median odds ratio between two random members,
    exp(sqrt(2) sd z_0.75)); the intercept's variance and SD."""
    group, sd = intercept_sd(components, group)
    b0 = float(fixed.loc[fixed["term"] == INTERCEPT, "value"].iloc[0])
    return {
        "group": group,
        "variance": sd**2,
        "sd": sd,
        "p_typical": float(expit(b0)),
        "p_minus_1sd": float(expit(b0 - sd)),
        "p_plus_1sd": float(expit(b0 + sd)),
        "p_minus_2sd": float(expit(b0 - 2 * sd)),
        "p_plus_2sd": float(expit(b0 + 2 * sd)),
        "median_odds_ratio": float(np.exp(np.sqrt(2.0) * sd * ndtri(0.75))),
    }


def strongest_covariate(fixed: pd.DataFrame, data: pd.DataFrame) -> str:
    """The numeric covariate (a fixed-effect term that is a numeric column) with the largest |z|."""
    numeric = fixed[fixed["term"].isin([c for c in data.columns if pd.api.types.is_numeric_dtype(data[c])])]
    if numeric.empty:
        raise ValueError("the model has no numeric covariate to draw predicted probabilities against")
    return str(numeric.loc[numeric["z"].abs().idxmax(), "term"])


def probability_curves(fixed: pd.DataFrame, sd: float, x: str, grid: np.ndarray) -> pd.DataFrame:
    """Predicted probability over ``grid`` of covariate ``x`` (the others at 0, reference levels)
    for a typical member (random intercept 0) and members at -+1 and -+2 SD."""
    beta = fixed.set_index("term")["value"]
    eta = beta[INTERCEPT] + beta[x] * grid
    return pd.DataFrame({x: grid, **{f"{k:+d} SD": expit(eta + k * sd) for k in (-2, -1, 0, 1, 2)}})
