"""Model comparison by AICc, as mixedup's ``summarise_model``/AICcmodavg tables print it.

Models that share their fixed effects are compared by their REML fits (the chapter's policy).
REML likelihoods of models with different fixed effects are not comparable, so those are
compared by their ML fits, and the table's ``likelihood`` column says which was used.
"""

from __future__ import annotations

import pandas as pd

CRITERIA = ("AICc", "AIC")
TIE = 1e-6  # criterion differences below this are ties: equal fits agree to about 10 significant digits


class ComparisonError(ValueError):
    """Models that cannot be compared; the message names them."""


def needs_ml(summaries: dict[str, dict]) -> bool:
    """Whether the models' REML criteria are not comparable (different fixed effects), or some
    models were fitted by ML: then the comparison uses every model's ML fit."""
    fixed = {tuple(s["fixed_effects"]) for s in summaries.values()}
    return len(fixed) > 1 or not all(s.get("REML", True) for s in summaries.values())


def compare_models(summaries: dict[str, dict], ml_criteria: dict[str, dict] | None = None) -> pd.DataFrame:
    """Rank models (``summaries``: name -> fit.json) by AICc; logLik and AIC (as lme4's ``AIC``
    prints it) follow, and ``likelihood`` names the likelihood compared: REML where the models
    share their fixed effects, otherwise ML, whose logLik, AIC and AICc ``ml_criteria`` gives
    (name -> ``lrt.ml_criteria_of``). Models on different data are refused."""
    _check_comparable(summaries)
    likelihood = "ML" if needs_ml(summaries) else "REML"
    if likelihood == "ML" and ml_criteria is None:
        raise ComparisonError(
            f"models {list(summaries)} differ in fixed effects (or were fitted by ML): "
            "their comparison needs their ML fits"
        )
    criteria = summaries if likelihood == "REML" else ml_criteria
    table = pd.DataFrame(
        [
            {
                "model": name,
                "K": s["K"],
                "AICc": criteria[name]["AICc"],
                "n_random_effects": s["n_random_effects"],
                "logLik": criteria[name]["logLik"],
                "AIC": criteria[name]["AIC"],
                "likelihood": likelihood,
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
        for key, what in (("dataset", "data set"), ("n_obs", "number of observations")):
            if summary[key] != first[key]:
                raise ComparisonError(
                    f"models {first_name!r} and {name!r} differ in {what} ({first[key]!r} vs {summary[key]!r}); "
                    "likelihoods are comparable only for the same data"
                )
