"""A fitted model's design on new rows, for predictions (lme4's ``predict(m, newdata)``).

The fixed-effect and random-effect columns are evaluated with the fit's own formulaic specs,
learnt on the rows the fit learnt them on (``lmmflow.model.design.model_frame``): factor levels and
contrasts, and the state of ``scale(x)`` or ``poly(x, 2)``, are the fit's, as R's ``predict``
uses the model frame's. Factor values are matched to the fit's levels by their R labels
(``lmmflow.model.labels``), so 308, 308.0 and "308" are one level. A grouping-factor level the fit
has not seen gets code -1 (no random effect); a level of a factor in the fixed part or in a random
term's effects that the fit has not seen has no column to go to, and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmmflow.model.design import Design, model_frame, offset_values
from lmmflow.model.formula import ModelFormula
from lmmflow.model.labels import value_labels
from lmmflow.model.r_terms import model_spec, spec_matrix


class NewDataError(ValueError):
    """New rows that a fitted model cannot predict; the message names the column or level."""


@dataclass(frozen=True)
class NewDesign:
    """``X`` has the fit's fixed-effect columns; ``Z[b]`` and ``level_codes[b]`` are block b's
    effect columns and each row's index into ``Design.blocks[b].levels`` (-1: a level not seen
    in fitting); ``new_levels`` maps a grouping factor to its unseen levels, in order of appearance;
    ``offset`` is what the formula's ``offset()`` terms add to each row (0 without them)."""

    X: np.ndarray
    Z: tuple[np.ndarray, ...]
    level_codes: tuple[np.ndarray, ...]
    new_levels: dict[str, list[str]]
    offset: np.ndarray | float = 0.0


def new_design(formula: ModelFormula, data: pd.DataFrame, design: Design, newdata: pd.DataFrame) -> NewDesign:
    """``design`` (of ``formula`` on ``data``) evaluated on the rows of ``newdata``."""
    frame, _, all_rows = model_frame(formula, data)
    learnt = frame if all_rows is None else all_rows
    effects = formula.fixed_variables | {v for term in formula.random for v in _effect_variables(term)}
    grouping = {factor for term in formula.random for factor in term.group_factors}
    new = _matched(newdata, learnt, effects, grouping)
    X, names = spec_matrix(model_spec(formula.fixed, learnt), new, formula.fixed)
    X = X[:, [names.index(name) for name in design.fixed_names]]
    terms = {f"({term.expr} | {term.group})": term for term in formula.random}
    Z, codes, unseen = [], [], {}
    for block in design.blocks:
        term = terms[block.term]
        Z.append(spec_matrix(model_spec(term.expr, learnt), new, term.expr)[0])
        labels = _group_labels(new, term.group_factors)
        position = {level: k for k, level in enumerate(block.levels)}
        codes.append(np.array([position.get(label, -1) for label in labels], dtype=np.int64))
        missing = [label for label in dict.fromkeys(labels) if label not in position]
        if missing:
            unseen[block.group_var] = missing
    offset = offset_values(formula.offsets, new)
    return NewDesign(
        X=X, Z=tuple(Z), level_codes=tuple(codes), new_levels=unseen, offset=0.0 if offset is None else offset
    )


def _effect_variables(term) -> set[str]:
    return term.variables - set(term.group_factors)


def _matched(newdata: pd.DataFrame, learnt: pd.DataFrame, effects: set[str], grouping: set[str]) -> pd.DataFrame:
    """The model's columns of ``newdata`` typed as the fit had them: factors with the fit's
    levels (an unseen level refused), grouping factors as R labels, numbers as numbers."""
    needed = sorted(effects | grouping)
    absent = [column for column in needed if column not in newdata.columns]
    if absent:
        raise NewDataError(f"newdata: column(s) {absent} of the model not found (columns: {list(newdata.columns)})")
    new = newdata[needed].reset_index(drop=True)
    incomplete = [column for column in needed if new[column].isna().any()]
    if incomplete:
        raise NewDataError(f"newdata: column(s) {incomplete} have missing values; predictions need every model column")
    for column in sorted(effects):
        fitted = learnt[column]
        if isinstance(fitted.dtype, pd.CategoricalDtype):
            new[column] = _with_levels(new[column], list(fitted.cat.categories), column)
        elif not pd.api.types.is_numeric_dtype(new[column]) or pd.api.types.is_bool_dtype(new[column]):
            raise NewDataError(f"newdata: column {column!r} must be numeric as in fitting, found {new[column].dtype}")
    for column in sorted(grouping - effects):
        new[column] = value_labels(new[column]).astype(str)
    return new


def _with_levels(values: pd.Series, levels: list[str], column: str) -> pd.Categorical:
    labels = value_labels(values).astype(str)
    unseen = [label for label in dict.fromkeys(labels) if label not in levels]
    if unseen:
        raise NewDataError(
            f"newdata: factor {column!r} has level(s) {unseen} not seen in fitting (its levels: {levels}); "
            "the model has no coefficient for them"
        )
    return pd.Categorical(labels, categories=levels)


def _group_labels(new: pd.DataFrame, factors: tuple[str, ...]) -> list[str]:
    """Each row's label of the (interaction of) grouping factors, as the design labels levels."""
    labels = value_labels(new[factors[0]]).astype(str)
    for factor in factors[1:]:
        labels = labels + ":" + value_labels(new[factor]).astype(str)
    return labels.tolist()
