"""Conditional predictions (fixed + random parts) for the rows a model was fitted to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lmmflow.engine.estimates import Estimates

if TYPE_CHECKING:  # only for annotations: focus-group tables read fitted values, no formulaic
    from lmmflow.model.design import Design


def conditional_fitted(design: Design, fit: Estimates) -> np.ndarray:
    """X beta + offset + sum over blocks of Z b[level], as lme4's ``fitted`` with all random effects."""
    codes = [block.level_codes for block in design.blocks]
    return linear_predictor(design.X, [block.Z for block in design.blocks], codes, fit) + design.linear_offset()


def linear_predictor(
    X: np.ndarray, Z: Sequence[np.ndarray], level_codes: Sequence[np.ndarray] | None, fit: Estimates
) -> np.ndarray:
    """X beta + sum over blocks of Z_b times the conditional modes of each row's level, as lme4's
    ``predict`` (an offset is the caller's); a level code -1 (a level not seen in fitting) adds
    nothing, as lme4's ``allow.new.levels = TRUE``. ``level_codes`` None: the population level
    (``re.form = NA``)."""
    values = X @ fit.beta
    for Z_b, codes, modes in zip(Z, level_codes or [], fit.modes):
        seen = codes >= 0
        effects = modes[np.where(seen, codes, 0)]
        if not seen.all():
            effects = effects * seen[:, None]
        values += np.einsum("ij,ij->i", Z_b, effects)
    return values


def fitted_values(design: Design, fit: Estimates) -> pd.DataFrame:
    """Per data row used (``row`` = position in the prepared data): fitted value and residual
    (lme4's response residual, y - fitted, unweighted as ``residuals(fit)``)."""
    fitted = conditional_fitted(design, fit)
    return pd.DataFrame({"row": design.rows, "fitted": fitted, "residual": design.y - fitted})


def focus_grouping_factor(focus: str, factors: dict[str, str | None]) -> str:
    """The one grouping factor the models of focus group ``focus`` nest in (``factors``: model ->
    fit.json's ``grouping_factor``, None for crossed factors); refused naming the model otherwise."""
    first = next(iter(factors))
    for model, factor in factors.items():
        if factor is None:
            raise ValueError(
                f"focus group {focus!r}: model {model!r} has crossed grouping factors; a focus group needs "
                "models whose random terms all nest in one grouping factor"
            )
        if factor != factors[first]:
            raise ValueError(
                f"focus group {focus!r}: model {model!r} nests in {factor!r}, model {first!r} in {factors[first]!r}"
            )
    return factors[first]


def group_predictions(
    data: pd.DataFrame, fitted: dict[str, pd.DataFrame], group_var: str, group: str, by: str
) -> pd.DataFrame:
    """The chapter's school-10 table: each model's conditional prediction for one group at each
    level of ``by`` present in it, taken from the fitted values of that group's rows."""
    for column in (group_var, by):
        if column not in data.columns:
            raise ValueError(f"column {column!r} not found in data (columns: {list(data.columns)})")
    in_group = data[group_var].astype(str) == group
    if not in_group.any():
        raise ValueError(f"group {group!r} not found in column {group_var!r}")
    table = None
    for model, values in fitted.items():
        rows = data.loc[in_group, [by]].join(values.set_index("row")["fitted"], how="inner")
        per_level = rows.groupby(by, observed=True)["fitted"]
        if (per_level.max() - per_level.min()).max() > 1e-9:
            raise ValueError(
                f"model {model!r}: predictions in group {group!r} vary within levels of {by!r}; "
                "the model has other covariates, so one prediction per level is not defined"
            )
        column = per_level.first().rename(model)
        table = column.to_frame() if table is None else table.join(column)
    table = table.reset_index()
    table.insert(0, group_var, group)
    table[by] = table[by].astype(str)
    return table


def group_random_effects(random_effects: dict[str, pd.DataFrame], group: str) -> pd.DataFrame:
    """Each model's random effects for one top-level group, nested cells (``10:low``) included."""
    frames = []
    for model, table in random_effects.items():
        labels = table["group"].astype(str)
        mine = table[(labels == group) | labels.str.startswith(f"{group}:")]
        frames.append(mine.assign(model=model))
    combined = pd.concat(frames, ignore_index=True)
    return combined[["model", *(c for c in combined.columns if c != "model")]]
