"""A glmer model's data: response (0/1, factor, cbind, proportion with weights), offsets, prior
weights and the design matrices, with lme4's na.omit of rows missing a model column."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmmflow.engine.families import Family, GLMMError, get_family
from lmmflow.model.design import Design, build_design
from lmmflow.model.response import glmm_response

RESPONSE_COLUMN = "lmmflow_glmm_response"


@dataclass(frozen=True)
class GLMMDesign:
    """``design`` (X, random blocks, and the offset of the formula's ``offset()`` terms) and the
    GLM parts: response ``y`` (binomial: proportion), prior ``weights``, binomial ``trials`` (R's
    aic m), ``offset`` (zeros without offsets); ``formula`` as given."""

    formula: str
    design: Design
    family: Family
    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
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
    lhs = _sides(formula)[0]
    data = data.reset_index(drop=True)
    response = glmm_response(lhs, data, fam.name, weights)
    if RESPONSE_COLUMN in data.columns:
        raise GLMMError(f"data must not have a column named {RESPONSE_COLUMN!r}")
    # a row without its prior weight is dropped as one without its response is
    frame = data.assign(**{RESPONSE_COLUMN: np.where(np.isnan(response.weights), np.nan, response.y)})
    design = _design(formula, frame, lhs)
    rows = design.rows
    return GLMMDesign(
        formula=formula,
        design=design,
        family=fam,
        y=design.y,
        weights=response.weights[rows],
        trials=response.trials[rows],
        offset=np.zeros(design.n_obs) if design.offset is None else design.offset,
        response_kind=response.kind,
        response_text=lhs,
    )


def design_formula(formula: str) -> str:
    """The formula the design of a glmer formula is built from: the response column
    ``RESPONSE_COLUMN`` (the response as ``glmm_response`` reads it) on the left, and the
    formula's right-hand side, whose ``offset()`` terms the design evaluates."""
    return f"{RESPONSE_COLUMN} ~ {_sides(formula)[1]}"


def _sides(formula: str) -> tuple[str, str]:
    """The response and the right-hand side of a glmer formula."""
    if formula.count("~") != 1:
        raise GLMMError(f"formula {formula!r}: expected exactly one '~'")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise GLMMError(f"formula {formula!r}: no response left of '~'")
    return lhs, rhs


def _design(formula: str, frame: pd.DataFrame, response: str) -> Design:
    """``build_design`` of ``design_formula(formula)``, named by the formula and the response as given."""
    internal = design_formula(formula)
    try:
        design = build_design(internal, frame, allow_n=True)
    except ValueError as error:  # DesignError / FormulaError: name the user's formula, not ours
        message = str(error).replace(repr(internal), repr(formula)).replace(RESPONSE_COLUMN, response)
        raise GLMMError(message) from None
    return replace(design, response=response)
