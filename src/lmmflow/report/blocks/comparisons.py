"""Blocks across models: comparisons (tables and the verdicts ``lmmflow.inference.comparison`` wrote) and a
focus group's random effects and predictions in each model."""

from __future__ import annotations

import pandas as pd

from lmmflow.report.blocks.models import model_summary, with_note
from lmmflow.report.formatting import code, listing, number, pipe_table
from lmmflow.report.results import MissingResult, Results

COMPARISONS = r"comparisons/(\w+)\.csv"


def comparison_models(results: Results, name: str | None = None, level: str = "3") -> str:
    blocks = []
    for comparison in results.names(COMPARISONS, name):
        models = results.csv(f"comparisons/{comparison}.csv")["model"]
        blocks += [
            model_summary(results, model, level) for model in results.config["comparisons"].get(comparison, models)
        ]
    return "\n\n".join(blocks)


def comparison(results: Results, name: str | None = None) -> str:
    """The AICc table of each comparison, the preferred model, and the check that makes it valid."""
    return "\n\n".join(aicc_comparison(results, comparison) for comparison in results.names(COMPARISONS, name))


def aicc_comparison(results: Results, comparison: str) -> str:
    table = results.csv(f"comparisons/{comparison}.csv")
    likelihood = table["likelihood"].iloc[0]
    table = table[["model", "K", "AICc", "delta_AICc", "n_random_effects"]].copy()
    fits = {model: results.fit(model) for model in table["model"]}
    table["singular"] = [fits[m]["singular"] for m in table["model"]]
    caption = (
        f"Comparison {code(comparison)} by {likelihood} AICc; K counts fixed effects, "
        "variance/covariance parameters and the residual variance."
    )
    return "\n\n".join([same_data(fits, likelihood), pipe_table(table, caption), aicc_verdict(results, comparison)])


def same_data(fits: dict[str, dict], likelihood: str) -> str:
    """Why the criteria are comparable: REML fits of the same fixed effects, or else ML fits (the
    comparison job chose, ``lmmflow.inference.comparison``)."""
    first = next(iter(fits.values()))
    data = f"All {len(fits)} models are fitted to the same {number(first['n_obs'])} observations of {code(first['dataset'])}"
    if likelihood == "REML":
        fixed = ", ".join(map(code, first["fixed_effects"]))
        return f"{data} with the same fixed effects ({fixed}), so their REML criteria are comparable."
    return (
        f"{data}, but their fixed effects differ (or some were fitted by ML): REML criteria are not "
        "comparable then, so the models are compared by their ML fits."
    )


def standings(results: Results, comparison: str, criterion: str) -> pd.DataFrame:
    """The comparison's verdict under one criterion, best first (as ``lmmflow.inference.comparison.verdicts``)."""
    verdicts = results.csv(f"comparisons/{comparison}.verdict.csv")
    return verdicts[verdicts["criterion"] == criterion]


def aicc_verdict(results: Results, comparison: str) -> str:
    rows = standings(results, comparison, "AICc")
    preferred = [code(model) for model in rows.loc[rows["verdict"] == "preferred", "model"]]
    if len(preferred) == 1:
        text = f"**Preferred model: {preferred[0]}**, with the lowest AICc"
    else:
        text = (
            f"**Preferred models: {listing(preferred)}**, tied at the lowest AICc "
            f"(ΔAICc below {rows['tie_tolerance'].iloc[0]:g}): the same fit, differently parameterized"
        )
    runner_up = rows[rows["verdict"] == "runner-up"]
    if runner_up.empty:
        return text + "."
    row = runner_up.iloc[0]
    return text + f"; the next, {code(row['model'])}, is {number(row['delta'])} AICc units worse."


def aic(results: Results, name: str) -> str:
    """A comparison read as lme4's ``AIC`` (REML log-likelihood); lower is better."""
    rows = standings(results, name, "AIC")
    table = results.csv(f"comparisons/{name}.csv").set_index("model").loc[rows["model"], ["K", "logLik", "AIC"]]
    table = table.reset_index()
    table["singular"] = [results.fit(m)["singular"] for m in table["model"]]
    formulas = "\n".join(f"- {code(m)}: {code(results.fit(m)['formula'])}" for m in table["model"])
    preferred = [code(model) for model in rows.loc[rows["verdict"] == "preferred", "model"]]
    return (
        f"{formulas}\n\n"
        + pipe_table(table, f"AIC of the models of {code(name)} (REML log-likelihood, as lme4's `AIC`).")
        + f"\n\n**Lower AIC is better: {listing(preferred)}**, by {number(rows['delta'].max())} AIC units."
    )


def focus_random_effects(results: Results, name: str | None = None) -> str:
    blocks = []
    for focus in results.names(r"tables/(\w+)_random_effects\.csv", name):
        if not results.has(f"tables/{focus}_predictions.csv"):
            continue
        table = results.csv(f"tables/{focus}_random_effects.csv", dtype={"group": str})
        for model, rows in table.groupby("model", sort=False):
            rows = rows.drop(columns="model")
            blocks.append(
                with_note(results, model, pipe_table(rows, f"Random effects of {code(model)} for this group."))
            )
    if not blocks:
        raise MissingResult("results/tables/<focus>_random_effects.csv")
    return "\n\n".join(blocks)


def focus_predictions(results: Results, name: str | None = None) -> str:
    blocks = []
    for focus in results.names(r"tables/(\w+)_predictions\.csv", name):
        table = results.csv(f"tables/{focus}_predictions.csv", dtype=str)
        for column in table.columns[2:]:
            table[column] = table[column].astype(float)
        blocks.append(pipe_table(table, "Conditional predictions (fixed + random effects), one column per model."))
    return "\n\n".join(blocks)
