"""Shrinkage blocks: separate regressions vs the mixed model, from the tables ``lmmflow.inference.shrinkage``
wrote (the report computes no statistic of its own)."""

from __future__ import annotations

import pandas as pd

from lmmflow.report.formatting import number, pipe_table
from lmmflow.report.results import MissingResult, Results

ESTIMATES = {"separate": "separate regressions", "mixed": "mixed model"}


def setting_label(results: Results, setting: str) -> str:
    return results.config.get("shrinkage", {}).get("settings", {}).get(setting, {}).get("label", setting)


def many_regressions(results: Results, setting: str) -> str:
    """Separate regressions vs the mixed model's coefficients: spread and range of each."""
    table = results.csv(f"tables/{setting}_coefficient_statistics.csv")
    n_groups = int(table.pop("n_groups").iloc[0])
    table["estimate"] = table["estimate"].map(ESTIMATES)
    return pipe_table(
        table,
        f"{setting_label(results, setting)}: per-group coefficients of {number(n_groups)} groups, "
        "separate regressions vs the mixed model.",
    )


def shrinkage_sd(results: Results) -> str:
    table = results.csv("shrinkage/sd_summary.csv")
    table.insert(0, "setting", table.pop("setting").map(lambda s: setting_label(results, s)))
    return pipe_table(
        table, "SD of the per-group coefficients: separate regressions vs mixed model (sd_ratio = mixed / separate)."
    )


def shrinkage_settings(results: Results) -> str:
    """The settings as configured: observed data or simulation parameters."""
    rows = []
    for name, spec in results.config.get("shrinkage", {}).get("settings", {}).items():
        if results.has(f"shrinkage/{name}/coefficients.csv"):
            rows.append(setting_row(spec, name))
    return pipe_table(pd.DataFrame(rows), "Shrinkage settings (simulations: GPA-like parameters).")


def setting_row(spec: dict, name: str) -> dict:
    simulate = spec.get("simulate", {})
    return {
        "setting": spec.get("label", name),
        "data": f"observed ({spec['dataset']})" if "dataset" in spec else f"simulated, seed {spec['seed']}",
        "groups": simulate.get("n_groups", float("nan")),
        "occasions": simulate.get("n_per_group", float("nan")),
        "sd_intercept": simulate.get("sd_intercept", float("nan")),
        "sd_slope": simulate.get("sd_slope", float("nan")),
        "sd_residual": simulate.get("sd_residual", float("nan")),
        "dropout": "yes" if "dropout" in simulate else "no",
    }


def negative_slopes(results: Results, setting: str | None = None, estimate: str | None = None) -> str:
    """Inline count (``setting`` and ``estimate``) or the table across all settings."""
    table = results.csv("shrinkage/negative_slopes.csv")
    if setting is not None:
        row = table[(table["setting"] == setting) & (table["estimate"] == estimate)]
        if row.empty:
            raise MissingResult(f"results/shrinkage/negative_slopes.csv: {setting}/{estimate}")
        return number(int(row["n_negative_slopes"].iloc[0]))
    wide = table.pivot(index="setting", columns="estimate", values="n_negative_slopes")
    wide = wide.loc[list(dict.fromkeys(table["setting"]))]
    wide = wide.reset_index()
    wide["setting"] = wide["setting"].map(lambda s: setting_label(results, s))
    wide = wide.rename(columns=ESTIMATES)
    wide["groups"] = table.drop_duplicates("setting")["n_groups"].to_numpy()
    return pipe_table(wide, "Number of negative per-group slopes.")
