"""Blocks of a binomial GLMM: its fixed effects as odds ratios, and what the random-intercept
variance means on the probability scale (``lmmflow.outputs.glmm_effects``).

The intervals are lme4's default, the profile-likelihood ones, when the model's
``intervals/<model>/profile.csv`` is among the job's inputs (the report rule declares it for the
models of ``intervals.models``), else the Wald intervals of its fixed_effects.csv; the table
says which."""

from __future__ import annotations

import pandas as pd

from lmmflow.outputs.glmm_effects import intercept_sd, intercept_sd_interval, odds_ratios, person_spread
from lmmflow.report.formatting import code, number, p_value, pipe_table
from lmmflow.report.results import ReportError, Results

SD_INTERVAL = ("sd_lower", "sd_upper", "sd_interval")


def _tables(results: Results, model: str):
    folder = results.model_dir(model)
    fit = results.fit(model)
    if fit.get("family") != "binomial" or fit.get("link") != "logit":
        raise ReportError(f"model {model!r} is not a binomial GLMM with the logit link: no odds ratios")
    return results.csv(f"{folder}/fixed_effects.csv"), results.csv(f"{folder}/variance_components.csv")


def profile_key(model: str) -> str:
    return f"intervals/{model}/profile.csv"


def _profile(results: Results, model: str) -> pd.DataFrame | None:
    """The model's profile intervals, None if they are not among the job's inputs."""
    return results.csv(profile_key(model)) if results.has(profile_key(model)) else None


def odds_ratio_table(results: Results, model: str, caption: str = "") -> str:
    """The fixed effects as odds ratios with their 95% intervals (profile if the model has them,
    else Wald; the column headers name the kind) and z-test p-values."""
    fixed, _ = _tables(results, model)
    profile = _profile(results, model)
    try:
        table = odds_ratios(fixed, profile)
    except ValueError as error:
        raise ReportError(f"lmmflow:odds_ratios model={model}: {error}") from None
    kind = "Wald" if profile is None else "profile"
    table = table.rename(columns={"lower_2.5": f"lower_2.5 ({kind})", "upper_97.5": f"upper_97.5 ({kind})"})
    table["p_value"] = table["p_value"].map(p_value)
    if profile is None:
        intervals = f"Wald 95% intervals ({code(model)} has no profile intervals: it is not in `intervals.models`)"
    else:
        intervals = "profile-likelihood 95% intervals, lme4's default `confint`"
    caption = caption or (
        f"Fixed effects of {code(model)} as odds ratios: exp of the estimates and of their "
        f"{intervals}; p-values from Wald z tests. The intercept's row is the odds at the reference "
        "levels with every covariate at 0."
    )
    return pipe_table(table, caption)


def glmm_value(results: Results, model: str, quantity: str, digits: str = "3") -> str:
    """One number of ``person_spread`` (``sd``, ``variance``, ``p_typical``, ``p_minus_1sd``,
    ``p_plus_1sd``, ``p_minus_2sd``, ``p_plus_2sd``, ``median_odds_ratio``, ``group``), or
    ``odds_ratio.TERM``, for the prose. The SD's profile interval: ``sd_lower`` and ``sd_upper``
    (the model's profile.csv must be among the results), or ``sd_interval``, a sentence stating it,
    empty when the model has no profile intervals."""
    fixed, components = _tables(results, model)
    kind, _, term = quantity.partition(".")
    if kind == "odds_ratio":
        table = odds_ratios(fixed).set_index("term")
        if term not in table.index:
            raise ReportError(f"lmmflow:glmm_value: no term {term!r} in {model!r} ({', '.join(table.index)})")
        return number(float(table.loc[term, "odds_ratio"]), int(digits))
    if quantity in SD_INTERVAL:
        return _sd_interval(results, model, components, quantity, int(digits))
    spread = person_spread(fixed, components)
    if quantity not in spread:
        known = [*spread, *SD_INTERVAL, "odds_ratio.TERM"]
        raise ReportError(f"lmmflow:glmm_value quantity={quantity!r}: expected one of {', '.join(known)}")
    value = spread[quantity]
    return value if isinstance(value, str) else number(value, int(digits))


def _sd_interval(results: Results, model: str, components: pd.DataFrame, quantity: str, digits: int) -> str:
    if quantity == "sd_interval" and not results.has(profile_key(model)):
        return ""
    group, _ = intercept_sd(components)
    try:
        lower, upper = intercept_sd_interval(results.csv(profile_key(model)), group)
    except ValueError as error:
        raise ReportError(f"lmmflow:glmm_value model={model} quantity={quantity}: {error}") from None
    if quantity == "sd_lower":
        return number(lower, digits)
    if quantity == "sd_upper":
        return number(upper, digits)
    return (
        f"The SD's profile-likelihood 95% interval (lme4's default `confint`) is "
        f"{number(lower, digits)} to {number(upper, digits)}."
    )
