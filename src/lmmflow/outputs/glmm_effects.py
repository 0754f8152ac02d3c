"""A binomial GLMM's effects on the scales a reader thinks in: odds ratios, and what the
random-intercept variance means for probabilities (from the model's fixed_effects.csv and
variance_components.csv, as the workflow writes them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

INTERCEPT = "Intercept"


def odds_ratios(fixed: pd.DataFrame) -> pd.DataFrame:
    """term, odds_ratio, lower_2.5, upper_97.5 (the Wald interval exponentiated), p_value; the
    intercept's row is the odds at the reference levels with every covariate at 0."""
    return pd.DataFrame(
        {
            "term": fixed["term"],
            "odds_ratio": np.exp(fixed["value"]),
            "lower_2.5": np.exp(fixed["lower_2.5"]),
            "upper_97.5": np.exp(fixed["upper_97.5"]),
            "p_value": fixed["p_value"],
        }
    )


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
