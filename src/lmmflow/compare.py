"""Model comparison by REML AICc, as mixedup's ``summarise_model``/AICcmodavg tables print it."""

from __future__ import annotations

import pandas as pd


class ComparisonError(ValueError):
    """Models that REML likelihoods cannot compare; the message names them."""


def compare_models(summaries: dict[str, dict]) -> pd.DataFrame:
    """Rank models by AICc; logLik (REML) and AIC (as lme4's ``AIC`` prints it) follow.
    Under REML, likelihoods are comparable only for the same data and the same fixed effects,
    so anything else is refused."""
    _check_comparable(summaries)
    table = pd.DataFrame(
        [
            {
                "model": name,
                "K": s["K"],
                "AICc": s["AICc"],
                "n_random_effects": s["n_random_effects"],
                "logLik": s["logLik"],
                "AIC": s["AIC"],
            }
            for name, s in summaries.items()
        ]
    )
    table = table.sort_values("AICc", kind="stable", ignore_index=True)
    table.insert(3, "delta_AICc", table["AICc"] - table["AICc"].iloc[0])
    return table


def _check_comparable(summaries: dict[str, dict]) -> None:
    if len(summaries) < 2:
        raise ComparisonError(f"a comparison needs at least two models, got {list(summaries)}")
    first_name, first = next(iter(summaries.items()))
    for name, summary in summaries.items():
        for key, what in (
            ("dataset", "data set"),
            ("n_obs", "number of observations"),
            ("fixed_effects", "fixed effects"),
        ):
            if summary[key] != first[key]:
                raise ComparisonError(
                    f"models {first_name!r} and {name!r} differ in {what} ({first[key]!r} vs {summary[key]!r}); "
                    "REML criteria are comparable only for the same data and fixed effects"
                )
