"""Likelihood-ratio tests as lme4's anova() prints them (the tables ``lmmflow.inference.likelihood_ratio`` wrote)."""

from __future__ import annotations

from lmmflow.inference.likelihood_ratio import NOT_NESTED, is_test
from lmmflow.report.formatting import code, listing, p_value, pipe_table
from lmmflow.report.results import Results

LRT_TABLES = r"lrt/(\w+)\.csv"


def likelihood_ratio_tests(results: Results, name: str | None = None) -> str:
    """Each configured test: the models' formulas, the anova() table, which fits were ML refits."""
    return "\n\n".join(likelihood_ratio_test(results, test) for test in results.names(LRT_TABLES, name))


def likelihood_ratio_test(results: Results, test: str) -> str:
    table = results.csv(f"lrt/{test}.csv")
    formulas = "\n".join(f"- {code(m)}: {code(results.fit(m)['formula'])}" for m in table["model"])
    refitted = [code(m) for m, fit in zip(table["model"], table["fit"]) if fit.startswith("ML refit")]
    shown = table.drop(columns="fit").astype({"p_value": object})
    shown["p_value"] = [p if p != p else p_value(p) for p in shown["p_value"]]  # NaN stays "–"
    fixed = [results.fit(m).get("fixed_effects") for m in table["model"]]
    not_nested = [i for i, df in enumerate(table["Df"]) if i > 0 and not is_test(df, fixed[i - 1], fixed[i])]
    shown.loc[not_nested, "Chisq"] = float("nan")  # lme4: Df 0, no p-value
    shown.loc[not_nested, "p_value"] = NOT_NESTED
    refits = (
        f"{listing(refitted)} {'was' if len(refitted) == 1 else 'were'} fitted by REML and refitted by ML "
        "for the test, as lme4's `anova()` does (`refit = TRUE`)."
        if refitted
        else "All models were fitted by ML."
    )
    caption = (
        f"Likelihood-ratio test {code(test)}: each row against the one above it "
        "(Chisq on Df degrees of freedom), where it has more parameters; ML log-likelihoods."
    )
    return f"{formulas}\n\n{pipe_table(shown, caption)}\n\n{refits}"
