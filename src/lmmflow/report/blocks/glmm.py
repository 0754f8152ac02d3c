"""Blocks of a binomial GLMM: its fixed effects as odds ratios, and what the random-intercept
variance means on the probability scale (``lmmflow.outputs.glmm_effects``)."""

from __future__ import annotations

from lmmflow.outputs.glmm_effects import odds_ratios, person_spread
from lmmflow.report.formatting import code, number, p_value, pipe_table
from lmmflow.report.results import ReportError, Results


def _tables(results: Results, model: str):
    folder = results.model_dir(model)
    fit = results.fit(model)
    if fit.get("family") != "binomial" or fit.get("link") != "logit":
        raise ReportError(f"model {model!r} is not a binomial GLMM with the logit link: no odds ratios")
    return results.csv(f"{folder}/fixed_effects.csv"), results.csv(f"{folder}/variance_components.csv")


def odds_ratio_table(results: Results, model: str, caption: str = "") -> str:
    """The fixed effects as odds ratios with their Wald 95% intervals and z-test p-values."""
    fixed, _ = _tables(results, model)
    table = odds_ratios(fixed)
    table["p_value"] = table["p_value"].map(p_value)
    caption = caption or (
        f"Fixed effects of {code(model)} as odds ratios (exp of the estimates; Wald 95% intervals, "
        "z tests). The intercept's row is the odds at the reference levels with every covariate at 0."
    )
    return pipe_table(table, caption)


def glmm_value(results: Results, model: str, quantity: str, digits: str = "3") -> str:
    """One number of ``person_spread`` (``sd``, ``variance``, ``p_typical``, ``p_minus_1sd``,
    ``p_plus_1sd``, ``p_minus_2sd``, ``p_plus_2sd``, ``median_odds_ratio``, ``group``), or
    ``odds_ratio.TERM``, for the prose."""
    fixed, components = _tables(results, model)
    kind, _, term = quantity.partition(".")
    if kind == "odds_ratio":
        table = odds_ratios(fixed).set_index("term")
        if term not in table.index:
            raise ReportError(f"lmmflow:glmm_value: no term {term!r} in {model!r} ({', '.join(table.index)})")
        return number(float(table.loc[term, "odds_ratio"]), int(digits))
    spread = person_spread(fixed, components)
    if quantity not in spread:
        raise ReportError(f"lmmflow:glmm_value quantity={quantity!r}: expected one of {', '.join(spread)}")
    value = spread[quantity]
    return value if isinstance(value, str) else number(value, int(digits))
