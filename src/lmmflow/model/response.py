"""Responses and prior weights of a GLMM as lme4 (R's ``glm`` families) reads them.

Binomial: 0/1 numbers, TRUE/FALSE, a two-level factor (the first level is failure; a text
column is a factor with sorted levels, as R's ``factor()``), a proportion with prior weights =
trials, or ``cbind(successes, failures)`` whose arguments may be expressions of columns
(``cbind(incidence, size - incidence)``): the response becomes the proportion and the trials the
prior weights. Poisson: non-negative counts (non-integers warn, as R's ``dpois`` does).

Offsets are the formula's, for LMMs and GLMMs alike (``lmmflow.model.formula.split_offsets``,
evaluated by ``lmmflow.model.design.offset_values``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmmflow.engine.families import GLMMError
from lmmflow.model.r_terms import evaluate, split_outside_parentheses, variables

_CBIND = re.compile(r"^cbind\s*\((.*)\)$", re.S)


@dataclass(frozen=True)
class Response:
    """``y`` the response (binomial: the proportion of successes), ``weights`` the prior weights
    (cbind: times the trials), ``trials`` the binomial m of R's ``binomial()$aic`` (the trials of
    a cbind if any exceeds 1, else the prior weights); NaN where a value is missing."""

    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    kind: str  # bernoulli, factor, logical, cbind, proportion, counts
    levels: tuple[str, ...] | None = None


def _column_or_expression(expr: str, data: pd.DataFrame, what: str) -> pd.Series:
    expr = expr.strip()
    name = expr[1:-1] if expr.startswith("`") and expr.endswith("`") else expr
    if name in data.columns:
        return data[name]
    missing = sorted(variables(expr) - set(data.columns))
    if missing:
        raise GLMMError(f"{what} {expr!r} names column(s) {missing} not found in data")
    frame = data.reset_index(drop=True)
    try:
        return pd.Series(evaluate(f"I({expr})", frame, None))
    except Exception as error:  # formulaic raises several types
        raise GLMMError(f"{what} {expr!r} cannot be evaluated as a numeric expression: {error}") from None


def _numeric(series: pd.Series, what: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float).to_numpy()
    if not pd.api.types.is_numeric_dtype(series):
        raise GLMMError(f"{what} must be numeric, found {series.dtype}")
    return series.to_numpy(dtype=float)


def binomial_response(text: str, data: pd.DataFrame, weights: np.ndarray | None = None) -> Response:
    """lme4's binomial response ``text`` (a column, an expression or ``cbind(s, f)``) on ``data``."""
    n = len(data)
    prior = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    match = _CBIND.match(text.strip())
    if match:
        args = split_outside_parentheses(match.group(1), ",")
        if len(args) != 2:
            raise GLMMError(f"response {text!r}: cbind() needs exactly two columns (successes, failures)")
        s = _numeric(_column_or_expression(args[0], data, f"response {text!r}: successes"), f"successes {args[0]!r}")
        f = _numeric(_column_or_expression(args[1], data, f"response {text!r}: failures"), f"failures {args[1]!r}")
        bad = (s < 0) | (f < 0)
        if np.any(bad):
            row = int(np.flatnonzero(bad)[0])
            raise GLMMError(
                f"response {text!r}: negative counts in {np.sum(bad)} row(s) (first: row {row + 1}, "
                f"successes {s[row]:g}, failures {f[row]:g})"
            )
        trials = s + f
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, s / np.where(trials > 0, trials, 1.0), 0.0)
        y = np.where(np.isnan(trials), np.nan, y)
        if np.any(np.abs(s[~np.isnan(s)] - np.round(s[~np.isnan(s)])) > 1e-7):
            warnings.warn(f"response {text!r}: non-integer #successes in a binomial glm!", stacklevel=3)
        # R's binomial aic: m = n (the trials) if any n > 1, else the prior weights
        m = trials if np.nanmax(trials, initial=0.0) > 1 else prior * trials
        return Response(y=y, weights=prior * trials, trials=m, kind="cbind")
    series = _column_or_expression(text, data, "response")
    column = text.strip()
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or pd.api.types.is_string_dtype(series):
        if isinstance(series.dtype, pd.CategoricalDtype):
            levels = [str(c) for c in series.cat.remove_unused_categories().cat.categories]
            labels = series.astype(object).where(series.notna())
        else:
            labels = series.where(series.notna())
            levels = sorted({str(v) for v in labels.dropna()})
        if len(levels) > 2:
            raise GLMMError(
                f"binomial response {column!r} has {len(levels)} levels {levels[:6]}: "
                "a binomial response needs two (first level = failure)"
            )
        y = np.where(labels.isna(), np.nan, (labels.astype(str) != levels[0]).astype(float)).astype(float)
        return Response(y=y, weights=prior, trials=prior, kind="factor", levels=tuple(levels))
    kind = "logical" if pd.api.types.is_bool_dtype(series) else "bernoulli"
    y = _numeric(series, f"binomial response {column!r}")
    present = y[~np.isnan(y)]
    if np.any((present < 0) | (present > 1)):
        bad = present[(present < 0) | (present > 1)]
        raise GLMMError(
            f"binomial response {column!r} has values outside [0, 1] (e.g. {bad[0]:g}): use 0/1, a proportion "
            "with weights = trials, or cbind(successes, failures)"
        )
    if weights is not None:
        kind = "proportion"
    successes = present * prior[~np.isnan(y)]
    if np.any(np.abs(successes - np.round(successes)) > 1e-7):
        warnings.warn(f"response {column!r}: non-integer #successes in a binomial glm!", stacklevel=3)
    return Response(y=y, weights=prior, trials=prior, kind=kind)


def poisson_response(text: str, data: pd.DataFrame, weights: np.ndarray | None = None) -> Response:
    """A Poisson count response: non-negative; non-integer values warn (R's dpois does)."""
    n = len(data)
    prior = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if _CBIND.match(text.strip()):
        raise GLMMError(f"response {text!r}: cbind() is a binomial response, not a Poisson count")
    series = _column_or_expression(text, data, "response")
    y = _numeric(series, f"Poisson response {text.strip()!r}")
    present = y[~np.isnan(y)]
    if np.any(present < 0):
        raise GLMMError(f"Poisson response {text.strip()!r} has negative values (e.g. {present[present < 0][0]:g})")
    if np.any(np.abs(present - np.round(present)) > 1e-7):
        warnings.warn(
            f"Poisson response {text.strip()!r} has non-integer values (R: non-integer x in dpois)", stacklevel=3
        )
    return Response(y=y, weights=prior, trials=prior, kind="counts")


def glmm_response(text: str, data: pd.DataFrame, family: str, weights=None) -> Response:
    """The response of family ``family`` (``binomial`` / ``poisson``); ``weights`` a column name
    or an array of prior weights (the trials of a proportion)."""
    if isinstance(weights, str):
        if weights not in data.columns:
            raise GLMMError(f"weights column {weights!r} not found in data")
        weights = _numeric(data[weights], f"weights {weights!r}")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if len(weights) != len(data):
            raise GLMMError(f"weights have {len(weights)} values for {len(data)} rows")
        if np.any(weights[~np.isnan(weights)] < 0):
            raise GLMMError("negative weights not allowed")
    if family == "binomial":
        return binomial_response(text, data, weights)
    return poisson_response(text, data, weights)
