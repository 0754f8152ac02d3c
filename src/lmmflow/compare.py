"""Model comparison by REML AICc, as mixedup's ``summarise_model``/AICcmodavg tables print it."""

from __future__ import annotations

import pandas as pd

CRITERIA = ("AICc", "AIC")
TIE = 1e-6  # criterion differences below this are ties: equal fits agree to about 10 significant digits


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


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Each model's standing under each criterion of a comparison table (lower is better), best
    first: ``preferred`` when tied at the lowest value (``delta`` below ``tie_tolerance``),
    ``runner-up`` for the best of the rest, ``worse`` for the others."""
    return pd.concat([standing(table, criterion) for criterion in CRITERIA], ignore_index=True)


def standing(table: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """The verdict under one criterion (``verdicts``' rows for it)."""
    ranked = table.sort_values(criterion, kind="stable", ignore_index=True)
    delta = ranked[criterion] - ranked[criterion].iloc[0]
    verdict = pd.Series("worse", index=ranked.index).where(delta >= TIE, "preferred")
    rest = verdict.index[verdict == "worse"]
    if len(rest):
        verdict[rest[0]] = "runner-up"
    return pd.DataFrame(
        {"criterion": criterion, "model": ranked["model"], "delta": delta, "verdict": verdict, "tie_tolerance": TIE}
    )


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
