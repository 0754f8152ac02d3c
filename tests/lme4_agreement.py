"""Assertions that a model's tables agree with lme4's, with the project's fixed tolerances.

Tolerances (never loosen them; find the cause instead): REML logLik 1e-4 absolute; fixed-effect
values and SEs 1e-3 relative; variances 1% relative or 1e-4 absolute; correlations 0.01; random
effects and random coefficients 0.5% of that effect's SD; conditional SEs 1% relative;
Satterthwaite df 1% relative and their p-values 2% relative (or 1e-12 absolute), where the oracle
has lmerTest's (lme4_extensions.json).
"""

import numpy as np
import pandas as pd

from lmmflow.outputs import tables

CHAPTER_MODELS = {
    "gpa_mixed": ("gpa", "gpa ~ occasion + (1 + occasion | student)"),
    "ach_cat_re_1": ("pupils", "achievement ~ ses + (1 + ses | primary_school_id)"),
    "ach_cat_re_2": ("pupils", "achievement ~ ses + (0 + ses | primary_school_id)"),
    "ach_cat_re_3": ("pupils", "achievement ~ ses + (1 | primary_school_id) + (1 | primary_school_id:ses)"),
    "sleep_slopes": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleep_uncorrelated": ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
}


def oracle_table(oracle: dict, name: str, keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame(oracle[name]).drop(columns="_row", errors="ignore").set_index(keys)


def assert_fixed_effects(table: pd.DataFrame, oracle: dict) -> None:
    ours = table.set_index("term")
    lme4 = oracle_table(oracle, "fixed_effects", ["term"])
    assert list(ours.index) == list(lme4.index)
    np.testing.assert_allclose(ours["value"], lme4["value"], rtol=1e-3)
    np.testing.assert_allclose(ours["se"], lme4["se"], rtol=1e-3)
    if "df_satterthwaite" in lme4 and "df" in ours:  # tables from tables.fixed_effects have df
        np.testing.assert_allclose(ours["df"], lme4["df_satterthwaite"], rtol=1e-2)
        np.testing.assert_allclose(ours["p_value"], lme4["p_satterthwaite"], rtol=2e-2, atol=1e-12)


def assert_variance_components(table: pd.DataFrame, oracle: dict) -> None:
    ours = table.set_index(["group", "effect"])
    lme4 = oracle_table(oracle, "variance_components", ["group", "effect"])
    assert list(ours.index) == list(lme4.index)
    np.testing.assert_allclose(ours["variance"], lme4["variance"], rtol=1e-2, atol=1e-4)


def assert_correlations(table: pd.DataFrame, oracle: dict) -> None:
    lme4 = pd.DataFrame(oracle["re_correlations"], columns=["group", "effect_1", "effect_2", "correlation"])
    keys = ["group", "effect_1", "effect_2"]
    assert table[keys].values.tolist() == lme4[keys].values.tolist()
    np.testing.assert_allclose(table["correlation"].astype(float), lme4["correlation"].astype(float), atol=0.01)


def effect_sds(oracle: dict) -> dict[tuple[str, str], float]:
    """SD of each random effect keyed by (grouping factor, effect); lme4's 'Subject.1' is 'Subject'."""
    return {
        (row["group"].split(".")[0], row["effect"]): row["sd"]
        for row in oracle["variance_components"]
        if row["group"] != "Residual"
    }


def aligned(table: pd.DataFrame, oracle: dict, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our rows and lme4's of a per-group table, the same keys in lme4's order."""
    keys = ["group_var", "effect", "group"]
    ours = table.set_index(keys)
    lme4 = oracle_table(oracle, name, keys)
    assert sorted(ours.index) == sorted(lme4.index)
    return ours.loc[lme4.index], lme4


def assert_random_effects(table: pd.DataFrame, oracle: dict) -> None:
    ours, lme4 = aligned(table, oracle, "random_effects")
    sds = effect_sds(oracle)
    tolerance = np.array([0.005 * sds[(g, e)] for g, e, _ in lme4.index])
    assert np.all(np.abs(ours["value"] - lme4["value"]) <= tolerance)
    np.testing.assert_allclose(ours["se"], lme4["se"], rtol=1e-2)


def assert_random_coefficients(table: pd.DataFrame, oracle: dict) -> None:
    """Coefficients with a random part within 0.5% of its SD; purely fixed ones as fixed effects."""
    ours, lme4 = aligned(table, oracle, "random_coefficients")
    sds = effect_sds(oracle)
    tolerance = np.array(
        [0.005 * sds[(g, e)] if (g, e) in sds else 1e-3 * abs(v) for (g, e, _), v in zip(lme4.index, lme4["value"])]
    )
    assert np.all(np.abs(ours["value"] - lme4["value"]) <= tolerance)


def assert_parameters_match_lme4(design, fit, oracle: dict) -> None:
    """logLik (REML or ML, as fitted) within 1e-4, fixed effects, variance components, correlations."""
    assert fit.reml == oracle.get("REML", True)
    assert abs(fit.loglik - oracle["logLik"]) < 1e-4
    assert_fixed_effects(tables.fixed_effects(design, fit), oracle)
    assert_variance_components(tables.variance_components(design, fit), oracle)
    assert_correlations(tables.re_correlations(design, fit), oracle)


def assert_fit_matches_lme4(design, fit, oracle: dict) -> None:
    """A fit (any path) against lme4: its parameters, then the random-effect tables."""
    assert_parameters_match_lme4(design, fit, oracle)
    assert_random_effects(tables.random_effects(design, fit), oracle)
    assert_random_coefficients(tables.random_coefficients(design, fit), oracle)


def assert_fit_matches_lme4_tables(folder, oracle: dict) -> None:
    """A model's written tables (results/models/<model>/) against lme4, as ``assert_fit_matches_lme4``."""
    assert_fixed_effects(pd.read_csv(folder / "fixed_effects.csv"), oracle)
    assert_variance_components(pd.read_csv(folder / "variance_components.csv", keep_default_na=False), oracle)
    assert_correlations(pd.read_csv(folder / "re_correlations.csv"), oracle)
    assert_random_effects(pd.read_csv(folder / "random_effects.csv", dtype={"group": str}), oracle)
