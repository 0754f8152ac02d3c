"""A glmer model's data: response (0/1, factor, cbind, proportion with weights), offsets, prior
weights and the design matrices, with lme4's na.omit of rows missing a model column."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmmflow.engine.families import Family, GLMMError, get_family
from lmmflow.model.design import Design, build_design
from lmmflow.model.response import glmm_response, offset_values, split_offsets

RESPONSE_COLUMN = "lmmflow_glmm_response"


@dataclass(frozen=True)
class GLMMDesign:
    """``design`` (X, random blocks) and the GLM parts: response ``y`` (binomial: proportion),
    prior ``weights``, binomial ``trials`` (R's aic m), ``offset``; ``formula`` as given."""

    formula: str
    design: Design
    family: Family
    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    offsets: tuple[str, ...]
    response_kind: str
    response_text: str

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return tuple("(Intercept)" if n == "Intercept" else n for n in self.design.fixed_names)


def glmm_design(
    formula: str, data: pd.DataFrame, family: str = "binomial", link: str | None = None, weights=None
) -> GLMMDesign:
    """Response, offset, prior weights and design matrices of a glmer formula on ``data``.

    Rows with a missing value in any model column (response, offset, weights included) are
    dropped, as lme4's na.omit model frame."""
    fam = get_family(family, link)
    text, offsets = split_offsets(formula)
    if text.count("~") != 1:
        raise GLMMError(f"formula {formula!r}: expected exactly one '~'")
    lhs, rhs = (part.strip() for part in text.split("~"))
    if not lhs:
        raise GLMMError(f"formula {formula!r}: no response left of '~'")
    data = data.reset_index(drop=True)
    response = glmm_response(lhs, data, fam.name, weights)
    offset = offset_values(offsets, data)
    y = response.y.copy()
    missing = np.isnan(offset) | np.isnan(response.weights)
    y[missing] = np.nan
    frame = data.copy()
    if RESPONSE_COLUMN in frame.columns:
        raise GLMMError(f"data must not have a column named {RESPONSE_COLUMN!r}")
    frame[RESPONSE_COLUMN] = y
    internal = f"{RESPONSE_COLUMN} ~ {rhs}"
    try:
        design = build_design(internal, frame, allow_n=True)
    except ValueError as error:  # DesignError / FormulaError: name the user's formula, not ours
        message = str(error).replace(repr(internal), repr(formula)).replace(RESPONSE_COLUMN, lhs)
        raise GLMMError(message) from None
    rows = design.rows
    design = _renamed(design, lhs)
    return GLMMDesign(
        formula=formula,
        design=design,
        family=fam,
        y=design.y,
        weights=response.weights[rows],
        trials=response.trials[rows],
        offset=offset[rows],
        offsets=tuple(offsets),
        response_kind=response.kind,
        response_text=lhs,
    )


def _renamed(design: Design, response: str) -> Design:
    return replace(design, response=response)
