"""Blocks of one model: its tables, the singular-fit note, a summary, and single values for the prose."""

from __future__ import annotations

import pandas as pd

from lmmflow.report.formatting import callout, code, listing, number, p_value, pipe_table
from lmmflow.report.results import ReportError, Results


def singular_note(results: Results, model: str) -> str:
    fit = results.fit(model)
    if not fit.get("singular"):
        return ""
    return callout(
        "warning",
        f"**Singular fit:** {code(model)} is singular (as lme4's `isSingular`): a random-effect "
        "variance is zero or a correlation is ±1, so some of its variance components sit on the "
        "boundary of the parameter space.",
    )


def with_note(results: Results, model: str, block: str) -> str:
    note = singular_note(results, model)
    return f"{note}\n\n{block}" if note else block


def fixed_effects(results: Results, model: str, columns: str = "full", caption: str = "", note: str = "yes") -> str:
    table = results.csv(f"{results.model_dir(model)}/fixed_effects.csv")
    if columns == "short":
        table = table[["term", "value", "se", "lower_2.5", "upper_97.5"]]
    else:
        table = table.drop(columns="p_value_z")
        table["p_value"] = table["p_value"].map(p_value)
    criterion = "REML" if results.fit(model).get("REML", True) else "ML"
    caption = caption or (
        f"Fixed effects of {code(model)} ({criterion}; p-values from t tests on Satterthwaite's degrees "
        "of freedom, as lmerTest; Wald 95% intervals)."
    )
    table = pipe_table(table, caption)
    return with_note(results, model, table) if note == "yes" else table


def variance_components(results: Results, model: str, caption: str = "", note: str = "yes") -> str:
    table = results.csv(f"{results.model_dir(model)}/variance_components.csv", keep_default_na=False)
    caption = caption or f"Variance components of {code(model)}; var_prop is each variance's share of their sum."
    table = pipe_table(table, caption)
    return with_note(results, model, table) if note == "yes" else table


def correlation_matrix(results: Results, model: str, caption: str = "") -> str:
    """The random-effect correlation matrix of each grouping factor with correlated effects."""
    pairs = results.csv(f"{results.model_dir(model)}/re_correlations.csv")
    if pairs.empty:
        return f"{code(model)} estimates no correlations between random effects."
    blocks = []
    for group, rows in pairs.groupby("group", sort=False):
        effects = list(dict.fromkeys([*rows["effect_1"], *rows["effect_2"]]))
        matrix = pd.DataFrame(1.0, index=effects, columns=effects)
        for row in rows.itertuples(index=False):
            matrix.loc[row.effect_1, row.effect_2] = matrix.loc[row.effect_2, row.effect_1] = row.correlation
        table = matrix.reset_index(names="effect")
        blocks.append(
            pipe_table(table, caption or f"Correlations of the random effects of {code(model)} by {code(group)}.")
        )
    return "\n\n".join(blocks)


def value(results: Results, model: str, quantity: str, digits: str = "3") -> str:
    """One number (or phrase) computed from a model's tables, for the prose.

    ``formula``, ``n_obs``, ``n_groups``, ``fixef.TERM``, ``sd.EFFECT``, ``variance.EFFECT``,
    ``cor.E1.E2``, ``cor_reading.E1.E2`` (which way the correlation goes), ``low.TERM`` and
    ``high.TERM`` (the fixed effect -+ 2 random-effect SDs: where most groups' effects lie),
    ``sd_ratio.TERM`` (random-effect SD / fixed effect).
    """
    digits = int(digits)
    folder = results.model_dir(model)
    kind, _, rest = quantity.partition(".")
    if kind == "formula":
        return code(results.fit(model)["formula"])
    if kind in ("n_obs", "K"):
        return number(results.fit(model)[kind])
    if kind == "n_groups":
        return number(sum(results.fit(model)["n_groups"].values()))
    if kind in ("cor", "cor_reading"):
        first, second = rest.split(".")
        pairs = results.csv(f"{folder}/re_correlations.csv")
        match = pairs[
            ((pairs["effect_1"] == first) & (pairs["effect_2"] == second))
            | ((pairs["effect_1"] == second) & (pairs["effect_2"] == first))
        ]
        if match.empty:
            raise ReportError(f"{model}: no correlation of {first} and {second}")
        correlation = float(match["correlation"].iloc[0])
        if kind == "cor":
            return number(correlation, digits)
        return f"lower {first} values go with {'larger' if correlation < 0 else 'smaller'} {second} effects"
    fixed = results.csv(f"{folder}/fixed_effects.csv").set_index("term")["value"]
    components = results.csv(f"{folder}/variance_components.csv", keep_default_na=False)
    components = components[components["group"] != "Residual"]

    def fixef(term: str) -> float:
        if term not in fixed.index:
            raise ReportError(f"{model}: {quantity}: no fixed effect {term!r} in fixed_effects.csv")
        return fixed[term]

    def component(effect: str) -> pd.Series:
        rows = components[components["effect"] == effect]
        if len(rows) != 1:
            raise ReportError(
                f"{model}: {quantity}: {len(rows)} random effects named {effect!r} in "
                f"variance_components.csv (groups {list(rows['group'])}); expected exactly one"
            )
        return rows.iloc[0]

    quantities = {
        "fixef": fixef,
        "sd": lambda effect: component(effect)["sd"],
        "variance": lambda effect: component(effect)["variance"],
        "low": lambda term: fixef(term) - 2 * component(term)["sd"],
        "high": lambda term: fixef(term) + 2 * component(term)["sd"],
        "sd_ratio": lambda term: component(term)["sd"] / fixef(term),
    }
    if kind not in quantities:
        raise ReportError(f"value: unknown quantity {quantity!r}")
    return number(float(quantities[kind](rest)), digits)


def variance_shares(results: Results, model: str, residual: str = "the residual") -> str:
    """How the total variance splits between the random effects and the residual (``var_prop``
    of variance_components.csv), largest share first, as a sentence; ``residual`` names the
    level the residual varies over (e.g. "pupils")."""
    table = results.csv(f"{results.model_dir(model)}/variance_components.csv", keep_default_na=False)
    table = table.sort_values("var_prop", ascending=False, kind="stable")
    shares = [
        f"{code(row.group) if row.group != 'Residual' else residual}"
        f"{'' if row.effect in ('', 'Intercept') else f' ({code(row.effect)})'}: **{100 * row.var_prop:.1f}%**"
        for row in table.itertuples()
    ]
    total = number(float(table["variance"].sum()))
    return f"Of the total variance, {total}, {listing(shares)}."


def model_summary(results: Results, model: str, level: str = "3") -> str:
    """A model's formula, variance components, random-effect correlations and fixed effects."""
    hashes = "#" * int(level)
    fit = results.fit(model)
    parts = [
        f"{hashes} {model}",
        f"{code(fit['formula'])}, {number(fit['n_obs'])} observations.",
        singular_note(results, model),
        variance_components(results, model, note="no"),
        correlation_matrix(results, model),
        fixed_effects(results, model, note="no"),
    ]
    return "\n\n".join(part for part in parts if part)


def coefficient_check(results: Results, model: str) -> str:
    """lme4's coef beside fixef + ranef: one row per group, coef and difference per effect."""
    table = results.csv(f"tables/{model}_coefficient_check.csv", dtype={"group": str})
    wide = table.pivot(index="group", columns="effect", values="coef")
    wide = wide[list(dict.fromkeys(table["effect"]))]
    effects = list(wide.columns)
    group_var = table["group_var"].iloc[0]
    check = table.pivot(index="group", columns="effect", values="fixef_plus_ranef")[effects]
    wide.columns = [f"coef {e}" for e in effects]
    for effect in effects:
        wide[f"fixef + ranef {effect}"] = check[effect]
    wide = wide.loc[list(dict.fromkeys(table["group"]))].reset_index(names=group_var)
    largest = table["difference"].abs().max()
    return (
        pipe_table(wide, f"{code(model)}: lme4's coef per {code(group_var)} and fixed + random effects.")
        + f"\n\nThe largest absolute difference between coef and fixef + ranef is {largest:.1e} "
        "(the tables' rounding): the random coefficients are the fixed effects plus each "
        f"{code(group_var)}'s random effects."
    )


def intervals(results: Results, model: str, digits: str = "3") -> str:
    table = results.csv(f"intervals/{model}/profile.csv")
    table = table[["parameter", "estimate", "lower_2.5", "upper_97.5"]]
    return pipe_table(
        table, f"Profile-likelihood 95% intervals of {code(model)} (lme4's `confint`).", digits=int(digits)
    )
