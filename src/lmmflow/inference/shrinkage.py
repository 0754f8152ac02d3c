"""Shrinkage: separate per-group regressions against a mixed model's random coefficients.

The per-group ("many regressions", no pooling) fits are computed for all groups at once from
per-group sums (``np.bincount``), in closed form; the mixed-model coefficients come from
``lmmflow.outputs.tables.random_coefficients`` of a REML fit of ``y ~ x + (1 + x | group)`` built by the
package's own formula machinery.

The fitting half (``analyze``, ``mixed_coefficients``, ``run_setting``) imports the model
machinery (formulaic, the engines, scipy.special, statsmodels) where it runs: the table and
figure jobs, which import this module for ``per_group_ols`` or ``read_coefficients``, need none
of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lmmflow.engine.estimates import Estimates
from lmmflow.model.labels import single_factor

if TYPE_CHECKING:  # only for annotations (module docstring)
    from lmmflow.model.design import Design

COEFFICIENTS = ("intercept", "slope")
SEPARATE, MIXED = "separate", "mixed"


def random_slope_formula(response: str, predictor: str, group: str) -> str:
    return f"{response} ~ {predictor} + (1 + {predictor} | {group})"


def per_group_ols(data: pd.DataFrame, group: str, predictor: str, response: str) -> pd.DataFrame:
    """OLS of ``response`` on ``predictor`` within each group, vectorized over groups.

    Two passes over per-group sums (means, then centred cross-products), which is as accurate as
    a per-group least-squares solve. A group whose predictor does not vary has no slope: its
    intercept and slope are NaN. Rows with a missing value are dropped first.
    """
    frame = data[[group, predictor, response]].dropna()
    codes, labels = single_factor(frame[group])
    x = frame[predictor].to_numpy(dtype=float)
    y = frame[response].to_numpy(dtype=float)
    n_groups = len(labels)
    n = np.bincount(codes, minlength=n_groups).astype(float)
    x_mean = np.bincount(codes, weights=x, minlength=n_groups) / n
    y_mean = np.bincount(codes, weights=y, minlength=n_groups) / n
    dx = x - x_mean[codes]
    dy = y - y_mean[codes]
    sxx = np.bincount(codes, weights=dx * dx, minlength=n_groups)
    sxy = np.bincount(codes, weights=dx * dy, minlength=n_groups)
    # "no variation" relative to the scale of x, so rounding noise in sxx does not pass as a slope
    flat = sxx <= (np.finfo(float).eps * n * np.maximum(np.abs(x_mean), 1.0)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(flat, np.nan, sxy / sxx)
    intercept = y_mean - slope * x_mean
    return pd.DataFrame({group: labels, "n": n.astype(np.int64), "intercept": intercept, "slope": slope})


def pooled_ols(data: pd.DataFrame, predictor: str, response: str) -> pd.DataFrame:
    """The standard regression ``response ~ predictor`` ignoring groups (complete pooling)."""
    frame = data[[predictor, response]].dropna()
    X = np.column_stack([np.ones(len(frame)), frame[predictor].to_numpy(dtype=float)])
    beta, *_ = np.linalg.lstsq(X, frame[response].to_numpy(dtype=float), rcond=None)
    return pd.DataFrame({"term": ["Intercept", predictor], "value": beta})


def population_line(data: pd.DataFrame, predictor: str, response: str) -> dict[str, float]:
    """Intercept and slope of the pooled regression, for drawing the population line."""
    intercept, slope = pooled_ols(data, predictor, response)["value"]
    return {"intercept": float(intercept), "slope": float(slope)}


def mixed_coefficients(design: Design, fit: Estimates, predictor: str) -> pd.DataFrame:
    """Each group's intercept and slope from the mixed model (lme4's ``coef``)."""
    from lmmflow.outputs import tables

    table = tables.random_coefficients(design, fit)
    wide = table.pivot(index="group", columns="effect", values="value")
    wide = wide.reindex(list(design.blocks[0].levels))
    return pd.DataFrame(
        {
            design.group_var: wide.index.astype(str),
            "intercept": wide["Intercept"].to_numpy(),
            "slope": wide[predictor].to_numpy(),
        }
    )


def coefficient_table(separate: pd.DataFrame, mixed: pd.DataFrame, group: str) -> pd.DataFrame:
    """One row per group: ``group, n, intercept_separate, slope_separate, intercept_mixed, slope_mixed``."""
    if set(separate[group]) != set(mixed[group]) or len(separate) != len(mixed):
        raise ValueError(f"separate and mixed fits have different groups ({len(separate)} vs {len(mixed)})")
    # an inner merge keeps the left table's (the groups') order
    merged = separate.merge(mixed, on=group, how="inner", suffixes=(f"_{SEPARATE}", f"_{MIXED}"), validate="1:1")
    columns = [group, "n"] + [f"{c}_{kind}" for kind in (SEPARATE, MIXED) for c in COEFFICIENTS]
    return merged[columns]


def sd_summary(coefficients: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Standard deviation (n - 1 denominator, as R's ``sd``) of each coefficient across groups."""
    rows = [
        (
            setting,
            coefficient,
            coefficients[f"{coefficient}_{SEPARATE}"].std(ddof=1),
            coefficients[f"{coefficient}_{MIXED}"].std(ddof=1),
        )
        for coefficient in COEFFICIENTS
    ]
    table = pd.DataFrame(rows, columns=["setting", "coefficient", "sd_separate", "sd_mixed"])
    table["sd_ratio"] = table["sd_mixed"] / table["sd_separate"]
    return table


def negative_slopes(coefficients: pd.DataFrame) -> pd.DataFrame:
    """How many groups have a negative slope, per approach (mixed model vs separate regressions)."""
    rows = [
        (kind, int((coefficients[f"slope_{kind}"] < 0).sum()), int(coefficients[f"slope_{kind}"].notna().sum()))
        for kind in (MIXED, SEPARATE)
    ]
    return pd.DataFrame(rows, columns=["estimate", "n_negative_slopes", "n_groups"])


def analyze(
    data: pd.DataFrame, *, group: str, predictor: str, response: str, engine: str = "fast"
) -> tuple[pd.DataFrame, Design, Estimates]:
    """Fit the random-slope mixed model and the separate regressions; the coefficient table."""
    from lmmflow.fit import fit_model
    from lmmflow.model.design import build_design

    design = build_design(random_slope_formula(response, predictor, group), data)
    fit = fit_model(design, engine)
    separate = per_group_ols(data, group, predictor, response)
    mixed = mixed_coefficients(design, fit, predictor)
    return coefficient_table(separate, mixed, group), design, fit


def setting_variables(setting: Mapping) -> dict[str, str]:
    """Group, predictor and response columns of a setting: configured for observed data, the
    simulation's columns (student, occasion, y) otherwise."""
    if "simulate" in setting:
        return {"group": "student", "predictor": "occasion", "response": "y"}
    return {key: setting[key] for key in ("group", "predictor", "response")}


def setting_data(setting: Mapping, observed: pd.DataFrame | None = None) -> pd.DataFrame:
    """The data of a setting: simulated from its parameters and seed, or the observed data given."""
    from lmmflow.data.simulate import simulate_from_config

    if "simulate" in setting:
        return simulate_from_config(setting["simulate"], setting["seed"])
    if observed is None:
        raise ValueError(f"setting on data set {setting.get('dataset')!r}: the observed data must be given")
    return observed


def run_setting(name: str, setting: Mapping, data: pd.DataFrame, engine: str = "fast") -> dict:
    """Everything one setting produces: coefficient table, SD summary, variance components and
    the fit summary (as ``lmmflow.outputs.tables.fit_summary``)."""
    from lmmflow.outputs import tables

    variables = setting_variables(setting)
    coefficients, design, fit = analyze(data, engine=engine, **variables)
    formula = random_slope_formula(variables["response"], variables["predictor"], variables["group"])
    return {
        "coefficients": coefficients,
        "sd_summary": sd_summary(coefficients, name),
        "variance_components": tables.variance_components(design, fit),
        "fit": tables.fit_summary(design, fit, dataset=setting.get("dataset", f"simulated:{name}"), formula=formula),
    }


def coefficient_statistics(coefficients: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD (n - 1 denominator), minimum and maximum of each per-group coefficient, separate
    regressions vs the mixed model; ``n_groups`` is the number of groups (rows) summarized."""
    rows = []
    for coefficient in COEFFICIENTS:
        for kind in (SEPARATE, MIXED):
            values = coefficients[f"{coefficient}_{kind}"]
            statistics = (values.mean(), values.std(ddof=1), values.min(), values.max())
            rows.append((coefficient, kind, len(coefficients), *statistics))
    return pd.DataFrame(rows, columns=["coefficient", "estimate", "n_groups", "mean", "sd", "min", "max"])


def observed_tables(coefficients: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The chapter's many-regressions table (without the per-group counts), its statistics, and
    negative slopes."""
    return {
        "coefficients": coefficients.drop(columns="n"),
        "coefficient_statistics": coefficient_statistics(coefficients),
        "negative_slopes": negative_slopes(coefficients),
    }


def read_coefficients(path) -> pd.DataFrame:
    """A coefficient table written by a setting job, its group labels (first column) kept as text."""
    group = pd.read_csv(path, nrows=0).columns[0]
    return pd.read_csv(path, dtype={group: str})


def summarize_settings(sd_summaries: list[pd.DataFrame], coefficients: dict[str, pd.DataFrame]) -> dict:
    """All settings' SD summaries in one table, and negative-slope counts per setting."""
    negative = [negative_slopes(table).assign(setting=name) for name, table in coefficients.items()]
    negative_table = pd.concat(negative, ignore_index=True)
    return {
        "sd_summary": pd.concat(sd_summaries, ignore_index=True),
        "negative_slopes": negative_table[["setting", "estimate", "n_negative_slopes", "n_groups"]],
    }
