"""R's reading of the expressions in a model formula, evaluated by formulaic.

In an R formula, a call such as ``I(x^2)``, ``log(y)`` or ``poly(x, 2)`` is R code: ``^`` inside
it is power, not Python's xor; names may contain dots (``x.1``) or, backquoted, anything
(`` `a b` ``). ``to_formulaic`` rewrites an R expression into formulaic's dialect (``^`` inside
calls becomes ``**``, names that are not Python identifiers are backquoted, ``TRUE`` is
``True``); ``variables`` lists the columns it reads, including those of stateful transforms
such as ``scale(x)`` whose columns formulaic's ``required_variables`` omits; ``deparse`` prints
an expression as R's ``deparse`` does, so that term names read as in lme4's output
(``I(x^2)``, ``poly(x, 2)1``, ``scale(x)``).
"""

from __future__ import annotations

import re

import formulaic
import numpy as np
import pandas as pd
from formulaic.parser.types import Factor, Term
from formulaic.transforms import poly, stateful_transform

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<backquoted>`[^`]*`)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
    |(?P<name>(?:[^\W\d_]|\.)[\w.]*)
    |(?P<string>"[^"]*"|'[^']*')
    |(?P<operator>\*\*|%[^%]*%|==|!=|<=|>=|&&|\|\||[-+*/^:(),|~=<>!&$\[\]])
    )""",
    re.VERBOSE,
)
_CONSTANTS = {"TRUE": "True", "FALSE": "False", "T": "True", "F": "False", "pi": "pi", "Inf": "inf"}
_R_CONSTANTS = {"True": "TRUE", "False": "FALSE", "inf": "Inf"}
_PYTHON_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# R's syntactic names: a letter of any alphabet (größe, età) or a dot not before a digit, then
# letters, digits, dots and underscores
_R_NAME = re.compile(r"^(?:[^\W\d_]|\.(?![0-9]))[\w.]*$")
_UNSPACED = {"^", ":", "$", "(", ")", "[", "]", "!", "/"}
_PYTHON_OPERATORS = {"^": "**", "&&": "and", "||": "or", "%%": "%", "%/%": "//"}


@stateful_transform
def _scale(data, center=True, scale=True, _state=None):
    """R's ``scale(x, center, scale)``: mean and SD (n - 1) of the values present, so that,
    as in R, rows dropped for missing values elsewhere still count (formulaic's ``scale``
    takes NaN means)."""
    data = np.asarray(data, dtype=float)
    if "center" not in _state:
        present = data[~np.isnan(data)]
        _state["center"] = float(np.mean(present)) if center is True else float(center or 0.0)
        present = present - _state["center"]
        spread = np.sqrt(np.sum(present**2) / max(1, len(present) - 1))
        _state["scale"] = float(spread) if scale is True else float(scale or 1.0)
    return (data - _state["center"]) / _state["scale"]


@stateful_transform
def _center(data, _state=None):
    """R's ``scale(x, scale = FALSE)``: ``x`` less the mean of the values present."""
    return _scale(data, scale=False, _state=_state)


@stateful_transform
def _poly(data, *args, _state=None, **kwargs):
    """formulaic's ``poly`` (R's orthonormal columns and signs), refusing missing values as R
    does rather than fitting the polynomial to the values present."""
    if np.isnan(np.asarray(data, dtype=float)).any():
        raise ValueError("missing values are not allowed in 'poly' (R's poly refuses them too)")
    return poly(data, *args, _state=_state, **kwargs)


# Functions R formulas commonly call that formulaic does not provide (sqrt, log2, ...), and
# scale/center/poly with R's handling of missing values in place of formulaic's.
CONTEXT = {
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "pi": np.pi,
    "inf": np.inf,
    "scale": _scale,
    "center": _center,
    "poly": _poly,
}


# The functions a formula may call: CONTEXT's, formulaic's I() and C(), offset() (split off
# by lmmflow.model.formula.split_offsets) and cbind() (a binomial GLMM's response, read by
# lmmflow.model.response; lmmflow.pipeline.glmm_config refuses it in an LMM)
SUPPORTED_FUNCTIONS = tuple(
    sorted({name for name, value in CONTEXT.items() if callable(value)} | {"I", "C", "offset", "cbind"})
)


def functions(text: str) -> list[str]:
    """The functions an R expression calls, in order of first call."""
    return list(dict.fromkeys(value for kind, value, _ in _classified(text) if kind == "function"))


def split_outside_parentheses(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` where no parenthesis is open, each part stripped: a
    formula's terms (``(1 + x | g)`` one of them) or a call's arguments (``n - s`` of ``cbind(s, n - s)``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


class RSyntaxError(ValueError):
    """Text that is not an R expression this module can read."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise RSyntaxError(f"cannot read {text[position:].strip()!r} in {text!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _classified(text: str) -> list[tuple[str, str, bool]]:
    """Tokens as (kind, text, inside_call); kind is refined to "function", "argument" (a
    keyword argument's name), "variable", "constant" or "unary" (a unary + or -)."""
    tokens = _tokens(text)
    out: list[tuple[str, str, bool]] = []
    calls: list[bool] = []  # for each open parenthesis: is it a call's?
    for i, (kind, value) in enumerate(tokens):
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        inside = any(calls)
        if kind in ("name", "backquoted"):
            if following == "(" and kind == "name":
                kind = "function"
            elif following == "=" and inside:
                kind = "argument"
            elif kind == "name" and value in _CONSTANTS and inside:
                kind = "constant"
            else:
                kind = "variable"
        elif value == "(":
            calls.append(bool(out) and out[-1][0] == "function")
        elif value == ")":
            if calls:
                calls.pop()
        elif value in "+-" and (not out or out[-1][0] in ("operator", "unary") and out[-1][1] not in ")]"):
            kind = "unary"
        out.append((kind, value, inside))
    return out


def _name(value: str) -> str:
    return value[1:-1] if value.startswith("`") else value


def variables(text: str) -> set[str]:
    """The column names an R expression reads (not functions, argument names or constants)."""
    return {_name(value) for kind, value, _ in _classified(text) if kind == "variable"}


def to_formulaic(text: str) -> str:
    """The R expression in formulaic's dialect."""
    out = ""
    for kind, value, inside in _classified(text):
        if kind == "variable":
            name = _name(value)
            value = name if _PYTHON_NAME.match(name) else f"`{name}`"
        elif kind == "constant":
            value = _CONSTANTS[value]
        elif kind == "number":
            value = value.removesuffix("L")  # R's integer literal 2L
        elif inside and value in _PYTHON_OPERATORS:
            value = _PYTHON_OPERATORS[value]
        out += value if kind == "function" else f"{value} "
    return out.strip()


def deparse(text: str) -> str:
    """The expression as R's deparse prints it: ``I(x ^ 2)`` is ``I(x^2)``, ``log(y+1)`` is
    ``log(y + 1)``; non-syntactic names are backquoted."""
    out = ""
    for kind, value, _ in _classified(text):
        if kind == "variable" and value in _R_CONSTANTS:
            value = _R_CONSTANTS[value]  # formulaic prints the Python constants it was given
        elif kind == "variable":
            name = _name(value)
            value = name if _R_NAME.match(name) else f"`{name}`"
        elif kind == "number":
            value = _r_number(value)
        if value == "**":
            value = "^"
        if kind == "operator" and value == ",":
            out += ", "
        elif kind == "operator" and value not in _UNSPACED and not value.startswith("%"):
            out += f" {value} "
        else:
            out += value
    return out.replace("  ", " ").strip()


def _r_number(value: str) -> str:
    """R prints a double without trailing zeros or exponent when it is a moderate integer
    (``2.0`` and ``1e3`` print as ``2`` and ``1000``); other numbers are kept as written."""
    if value.endswith("L"):
        return value
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e5 else value


def factor_label(factor: Factor) -> str:
    """R's name of one formulaic factor: a column name (backquoted if R needs it) or the
    expression as R prints it."""
    name = str(factor)
    if factor.eval_method == Factor.EvalMethod.LOOKUP:
        return name if _R_NAME.match(name) else f"`{name}`"
    return deparse(name)


def term_label(term: Term) -> str:
    """R's label of a formulaic term: ``I(x^2)``, ``x.1:g``."""
    return ":".join(factor_label(factor) for factor in term.factors)


def model_matrix(
    expr: str, frame: pd.DataFrame, all_rows: pd.DataFrame | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The model matrix of the R expression ``expr`` (a formula's right-hand side) on ``frame``
    and its column names as R's model.matrix names them (``I(x^2)``, ``poly(x, 2)1``, ``sesmid``).

    ``all_rows``, when rows with missing values were dropped to make ``frame``, is the data
    before the drop: R's model.frame evaluates ``scale(x)`` or ``poly(x, 2)`` on every row and
    drops rows after, so their means, SDs and polynomial coefficients come from ``all_rows``."""
    if all_rows is None:
        return named_matrix(formulaic.model_matrix(to_formulaic(expr), frame, context=CONTEXT, na_action="raise"), expr)
    return spec_matrix(model_spec(expr, all_rows), frame, expr)


def model_spec(expr: str, data: pd.DataFrame) -> formulaic.ModelSpec:
    """formulaic's spec of ``expr`` learnt on ``data``: factor levels and the state of
    ``scale(x)`` or ``poly(x, 2)``, to evaluate the same columns on other rows (``spec_matrix``)."""
    return formulaic.model_matrix(to_formulaic(expr), data, context=CONTEXT, na_action="ignore").model_spec


def spec_matrix(spec: formulaic.ModelSpec, data: pd.DataFrame, expr: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The model matrix of ``spec`` (learnt from ``expr``) on ``data``, as ``model_matrix`` gives it."""
    return named_matrix(spec.get_model_matrix(data, context=CONTEXT), expr)


def named_matrix(matrix, expr: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """A formulaic model matrix of ``expr`` as an array, its columns in R's order, and R's names of them."""
    names, order = {}, []
    text = to_formulaic(expr)
    appearance = list(dict.fromkeys(_name(value) for kind, value, _ in _classified(text) if kind == "variable"))
    for structure in matrix.model_spec.structure:
        columns = _in_r_order(structure.columns, structure.term, appearance)
        order += [column for column, _ in columns]
        names |= dict(columns)
    return np.asarray(matrix[order], dtype=float), tuple(names[column] for column in order)


def _in_r_order(columns: list[str], term: Term, appearance: list[str]) -> list[tuple[str, str]]:
    """A term's columns and R's names of them. R orders an interaction's variables as they first
    appear in the formula (``x + f:x`` is ``x:flo``), its columns with the first variable varying
    fastest; formulaic keeps them as written in the term."""
    if not term.factors or str(term) == "1":
        return [(column, column) for column in columns]  # the design calls the intercept "Intercept"
    parts = {column: _column_parts(column, term) for column in columns}
    rank = [
        min((appearance.index(v) for v in _factor_variables(f) if v in appearance), default=0) for f in term.factors
    ]
    permutation = sorted(range(len(rank)), key=rank.__getitem__)
    if permutation == sorted(permutation):
        return [(column, ":".join(parts[column])) for column in columns]
    levels = [list(dict.fromkeys(parts[column][j] for column in columns)) for j in range(len(rank))]
    fastest_first = sorted(columns, key=lambda c: [levels[j].index(parts[c][j]) for j in reversed(permutation)])
    return [(column, ":".join(parts[column][j] for j in permutation)) for column in fastest_first]


def _factor_variables(factor: Factor) -> list[str]:
    name = str(factor)
    return [name] if factor.eval_method == Factor.EvalMethod.LOOKUP else sorted(variables(name))


def _column_parts(column: str, term: Term) -> list[str]:
    """``poly(x, 2)[1]:g[T.b]`` of the term ``poly(x, 2):g`` is R's ``poly(x, 2)1`` and ``gb``."""
    parts, rest = [], column
    for factor in term.factors:
        name = str(factor)
        if not rest.startswith(name):
            raise RSyntaxError(f"column {column!r} does not follow its term {term}")
        rest = rest[len(name) :]
        suffix = ""
        if rest.startswith("["):
            end = rest.index("]")
            suffix, rest = rest[1:end].removeprefix("T."), rest[end + 1 :]
        parts.append(factor_label(factor) + suffix)
        rest = rest.removeprefix(":")
    return parts


def evaluate(expr: str, frame: pd.DataFrame, all_rows: pd.DataFrame | None = None) -> np.ndarray:
    """The values of a numeric R expression (a model's response, ``log(y)``) on ``frame``
    (``all_rows`` as for ``model_matrix``)."""
    values, names = model_matrix(f"0 + {expr}", frame, all_rows)
    if values.shape[1] != 1:
        raise RSyntaxError(f"{expr!r} gives {values.shape[1]} columns {list(names)}, not one numeric vector")
    return values[:, 0]
