"""Design matrices of a linear mixed model: response, fixed-effect matrix and random-effect blocks.

Grouping factors may be crossed, partially crossed or nested. When, in the data, every term's
levels nest in the levels of one of the terms' grouping factors (``Design.group_var``: ``g`` in
``(1 | g) + (1 | h:g)``, or ``school`` in ``(1 | school) + (1 | class)`` when every class is in
one school), the design nests in one factor: the groups-last REML path (``lmmflow.engine.groups_last``) and
statsmodels' MixedLM can express it. Otherwise ``group_var`` is None and only the blocked
Cholesky engine (``lmmflow.engine.blocked``) fits it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmmflow.model.formula import ModelFormula, RandomTerm, parse_formula
from lmmflow.model.labels import single_factor
from lmmflow.model.r_terms import evaluate, model_matrix, variables


@dataclass(frozen=True)
class RandomBlock:
    """One random term ``(expr | group_var)``: its effects are correlated with each other only.

    ``is_nested`` is True for a term on a factor below the top-level factor (``h:g`` below
    ``g``): its levels are cells within the top-level groups, each cell drawing its effects
    independently. False for terms on the top-level factor, and for every term of a design that
    does not nest in one factor.

    ``Z[:, j]`` is the model-matrix column of effect ``effects[j]`` (row values, not yet
    multiplied by group indicators). ``level_codes[i]`` is the index into ``levels`` of row i's
    level of ``group_var``; ``parent_codes[k]`` is the index into ``Design.group_levels`` of
    the top-level group that level k belongs to (None when the design does not nest in one
    factor). ``term`` is the term as lme4 names it, ``(expr | group_var)``.
    """

    group_var: str
    effects: tuple[str, ...]
    Z: np.ndarray
    level_codes: np.ndarray
    levels: tuple[str, ...]
    parent_codes: np.ndarray | None
    label: str
    is_nested: bool
    term: str

    @property
    def n_effects(self) -> int:
        return len(self.effects)

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class Design:
    """``rows`` are the positions in the source data of the rows used (complete cases).

    ``dropped_fixed`` are the fixed-effect columns dropped as aliased (``lme4_rank_columns``), as lme4
    drops them from a rank-deficient model matrix.

    ``group_var``, ``group_codes`` (per row) and ``group_levels`` describe the top-level factor
    every term nests in; all three are None when the grouping factors are crossed.

    ``offset`` (per row, the sum of the formula's ``offset(expr)`` terms) and ``weights`` (lme4's
    prior weights: row i's residual variance is sigma^2 / w_i) are None when the model has none.
    The engines fit ``whitened()``, the same model with neither (lme4's criterion differs from its
    criterion by ``log_weight_sum``); fitted values, predictions and simulations use them as they are.
    ``warnings`` are lme4's warnings about the model frame (a response also on the right).
    """

    response: str
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    group_var: str | None
    group_codes: np.ndarray | None
    group_levels: tuple[str, ...] | None
    blocks: tuple[RandomBlock, ...]
    rows: np.ndarray
    n_dropped: int = 0
    dropped_fixed: tuple[str, ...] = ()
    offset: np.ndarray | None = None
    weights: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def log_weight_sum(self) -> float:
        """sum(log w): lme4's (RE)ML deviance is the whitened design's less this (lmerResp's ldW)."""
        return 0.0 if self.weights is None else float(np.log(self.weights).sum())

    def linear_offset(self) -> np.ndarray | float:
        """What the offset adds to each row's linear predictor (0 without one)."""
        return 0.0 if self.offset is None else self.offset

    def whitened(self) -> Design:
        """The same model without offset and weights: y - offset, then every row of y, X and Z
        times sqrt(w), so that its residuals have a common variance sigma^2. Itself when it has neither."""
        if self.offset is None and self.weights is None:
            return self
        scale = np.ones(self.n_obs) if self.weights is None else np.sqrt(self.weights)
        blocks = tuple(replace(block, Z=block.Z * scale[:, None]) for block in self.blocks)
        y = (self.y - self.linear_offset()) * scale
        return replace(self, y=y, X=self.X * scale[:, None], blocks=blocks, offset=None, weights=None)

    @property
    def nests_in_one_factor(self) -> bool:
        """True when every term nests in ``group_var``: the groups-last REML path applies."""
        return self.group_var is not None

    @property
    def grouping_factors(self) -> tuple[str, ...]:
        """The distinct grouping factors, in the order of their first term."""
        return tuple(dict.fromkeys(block.group_var for block in self.blocks))

    @property
    def n_random_effects(self) -> int:
        return sum(b.n_effects * b.n_levels for b in self.blocks)


class DesignError(ValueError):
    """Data that cannot be used with a formula; the message names the term or column."""


def build_design(
    formula: ModelFormula | str, data: pd.DataFrame, weights: str | None = None, *, allow_n: bool = False
) -> Design:
    """Model matrices for ``formula`` on ``data``, dropping rows with missing model values as lme4 does.

    ``weights`` names the column of prior weights (lme4's ``lmer(weights = )``), None for none.
    ``allow_n``: lme4's ``allow.n`` of checkNlevels/checkZdims, TRUE for glmer (a grouping factor
    may have as many levels, and a term as many random effects, as there are observations)."""
    formula = parse_formula(formula) if isinstance(formula, str) else formula
    frame, rows, all_rows = model_frame(formula, data, weights)
    y = evaluate(formula.response, frame, all_rows)
    offset = offset_values(formula.offsets, frame, all_rows)
    prior_weights = None if weights is None else _prior_weights(formula, frame[weights], weights)
    _check_fixed_factors(formula, frame)
    X, fixed_names = model_matrix(formula.fixed, frame, all_rows)
    keep = lme4_rank_columns(X)
    dropped = tuple(name for j, name in enumerate(fixed_names) if j not in keep)
    if dropped:
        warnings.warn(rank_deficiency_warning(len(dropped)), stacklevel=2)
        X, fixed_names = X[:, keep], tuple(fixed_names[j] for j in keep)
    blocks = _in_lme4_order([_random_block(term, frame, all_rows) for term in formula.random])
    _check_levels(formula, blocks, len(y), allow_n)
    top = _nesting_factor(blocks)
    group_codes = group_levels = None
    if top is not None:
        group_codes, group_levels = top.level_codes, top.levels
        blocks = tuple(_nested_in(block, top) for block in blocks)
    return Design(
        response=formula.response,
        y=y,
        X=X,
        fixed_names=fixed_names,
        group_var=None if top is None else top.group_var,
        group_codes=group_codes,
        group_levels=group_levels,
        blocks=blocks,
        rows=rows,
        n_dropped=len(data) - len(rows),
        dropped_fixed=dropped,
        offset=offset,
        weights=prior_weights,
        warnings=formula.warnings,
    )


def model_frame(
    formula: ModelFormula, data: pd.DataFrame, weights: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame | None]:
    """R's model frame: the model's columns (and the ``weights`` column) on the rows without missing
    values, those rows' positions in ``data``, and, when rows were dropped, the columns on every row
    of ``data`` (where R evaluates ``scale(x)``; ``lmmflow.model.r_terms.model_matrix``), else None."""
    _check_columns(formula, data, weights)
    frame, rows = _complete_cases(formula, data, weights)
    if frame.empty:
        raise DesignError(f"formula {formula.text!r}: no rows left after dropping rows with missing values")
    return frame, rows, _all_rows(data, frame) if len(rows) < len(data) else None


def offset_values(offsets: tuple[str, ...], frame: pd.DataFrame, all_rows: pd.DataFrame | None = None):
    """The sum of the ``offset(expr)`` terms' values per row of ``frame`` (``all_rows`` as for
    ``model_matrix``: R evaluates ``offset(scale(z))`` on every row, then drops rows), None without
    offsets. ``offsets`` are the expressions of ``lmmflow.model.formula.split_offsets``."""
    if not offsets:
        return None
    return np.sum([_offset_value(offset, frame, all_rows) for offset in offsets], axis=0)


def _offset_value(offset: str, frame: pd.DataFrame, all_rows: pd.DataFrame | None) -> np.ndarray:
    """One offset's values on ``frame``, refused where not finite, naming the term: an infinite
    offset (``log(0)``) leaves no finite likelihood, and a NaN one (``log(-1)``), whose row R's
    model frame would drop with a warning, is refused rather than dropped without a word."""
    # numpy's own warnings are silenced: the rows used are checked below, and ``all_rows`` may
    # hold a log(0) on a row that is dropped for a missing value and does not matter. Without
    # ``all_rows`` the expression is learnt on ``frame`` itself: formulaic's direct evaluation
    # would stop at a NaN with a message that does not name the offset.
    with np.errstate(divide="ignore", invalid="ignore"):
        # I(): inside offset() the expression is R arithmetic (0.1 * z), not formula operators
        values = evaluate(f"I({offset})", frame, frame if all_rows is None else all_rows)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DesignError(
            f"offset({offset}) is not finite on {len(bad)} of the rows used (the first: {values[bad[0]]:g}; "
            "the log of 0 is -inf, of a negative number NaN)"
        )
    return values


def _prior_weights(formula: ModelFormula, values: pd.Series, column: str) -> np.ndarray:
    """lme4's prior weights: finite and positive (lme4 refuses negative ones; a zero weight makes
    its criterion infinite)."""
    weights = values.to_numpy(dtype=float)
    if not np.all(np.isfinite(weights) & (weights > 0)):
        bad = float(weights[~(np.isfinite(weights) & (weights > 0))][0])
        raise DesignError(
            f"formula {formula.text!r}: weights column {column!r} has the value {bad!r}; weights must be positive"
        )
    return weights


def lme4_rank_columns(X: np.ndarray, tol: float = 1e-7) -> list[int]:
    """The columns of ``X`` lme4 keeps (``chkRank.drop.cols``): R's ``qr(X, tol = 1e-7)``, whose
    LINPACK dqrdc2 takes the columns in order and moves a column to the end when its norm,
    orthogonal to the columns kept before it, is below ``tol`` times its own norm. So of aliased
    columns the later is dropped (not the one a largest-norm pivoting would choose)."""
    norms = np.linalg.norm(X, axis=0)
    norms[norms == 0] = 1.0  # dqrdc2: a zero column is compared with tol, so dropped
    n, p = X.shape
    if n >= p and np.all(np.abs(np.diag(np.linalg.qr(X, mode="r"))) >= tol * norms):
        return list(range(p))  # full rank: |R_jj| is column j's norm orthogonal to those before it
    keep: list[int] = []
    basis = np.zeros((X.shape[0], 0))
    for j in range(p):
        residual = X[:, j] - basis @ (basis.T @ X[:, j])
        residual -= basis @ (basis.T @ residual)  # reorthogonalised, as accurate as Householder
        size = np.linalg.norm(residual)
        if size >= tol * norms[j] and len(keep) < n:
            keep.append(j)
            basis = np.column_stack([basis, residual / size])
    return keep


def rank_deficiency_warning(n_dropped: int) -> str:
    """lme4's warning for ``n_dropped`` dropped fixed-effect columns."""
    if n_dropped == 1:
        return "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient"
    return f"fixed-effect model matrix is rank deficient so dropping {n_dropped} columns / coefficients"


def _check_columns(formula: ModelFormula, data: pd.DataFrame, weights: str | None = None) -> None:
    response = formula.response_variables
    if not response - set(data.columns):
        for column in sorted(response):
            if not pd.api.types.is_numeric_dtype(data[column]) or pd.api.types.is_bool_dtype(data[column]):
                raise DesignError(
                    f"formula {formula.text!r}: response {formula.response!r} must be numeric, "
                    f"found column {column!r} of {data[column].dtype}"
                )
    terms = [(f"response {formula.response!r}", response), (f"fixed part {formula.fixed!r}", variables(formula.fixed))]
    terms += [(f"term 'offset({offset})'", variables(offset)) for offset in formula.offsets]
    terms += [(f"term {term.text!r}", term.variables) for term in formula.random]
    terms += [("weights", {weights})] if weights is not None else []
    for where, names in terms:
        missing = sorted(names - set(data.columns))
        if missing:
            raise DesignError(
                f"formula {formula.text!r}: {where} names column(s) {missing} not found in data "
                f"(columns: {list(data.columns)})"
            )
    if weights is not None and (
        not pd.api.types.is_numeric_dtype(data[weights]) or pd.api.types.is_bool_dtype(data[weights])
    ):
        raise DesignError(
            f"formula {formula.text!r}: weights column {weights!r} must be numeric, found {data[weights].dtype}"
        )


def _check_fixed_factors(formula: ModelFormula, frame: pd.DataFrame) -> None:
    """A categorical column of the fixed part with fewer than two levels in the rows used is refused,
    as lme4 refuses it ("contrasts can be applied only to factors with 2 or more levels"; formulaic
    would drop it without a word)."""
    for column in sorted(variables(formula.fixed)):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        levels = single_factor(values)[1]
        if len(levels) < 2:
            raise DesignError(
                f"formula {formula.text!r}: factor {column!r} of the fixed part has only the level "
                f"{levels[0]!r} in the rows used; a factor needs 2 or more levels (lme4: contrasts can be "
                "applied only to factors with 2 or more levels)"
            )


def _check_levels(formula: ModelFormula, blocks: tuple[RandomBlock, ...], n_obs: int, allow_n: bool = False) -> None:
    """What lme4's checkNlevels and checkZdims refuse by default (lmerControl's "stop" checks)."""
    for block in blocks:
        if block.n_effects == 0:
            raise DesignError(f"formula {formula.text!r}: term {block.term} has no random effect (no model column)")
        if block.n_levels < 2:
            raise DesignError(
                f"formula {formula.text!r}: grouping factor {block.group_var!r} has only one level "
                f"({block.levels[0]!r}) in the rows used; a random effect needs more than one level "
                "(lme4: grouping factors must have > 1 sampled level)"
            )
        if block.n_levels > n_obs or (block.n_levels == n_obs and not allow_n):
            raise DesignError(
                f"formula {formula.text!r}: grouping factor {block.group_var!r} has {block.n_levels} levels "
                f"for {n_obs} observations (lme4: number of levels of each grouping factor must be < number "
                "of observations)"
            )
        if block.n_levels * block.n_effects > n_obs or (block.n_levels * block.n_effects == n_obs and not allow_n):
            raise DesignError(
                f"formula {formula.text!r}: term {block.term} has {block.n_levels * block.n_effects} random "
                f"effects for {n_obs} observations (lme4: number of observations <= number of random effects "
                "for the term; the random-effects parameters and the residual variance are probably "
                "unidentifiable)"
            )


def _complete_cases(
    formula: ModelFormula, data: pd.DataFrame, weights: str | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows without missing model values (weights included, as in R's model frame), and their positions in ``data``."""
    columns = formula.response_variables | formula.fixed_variables | ({weights} if weights else set())
    columns |= {variable for term in formula.random for variable in term.variables}
    complete = data[sorted(columns)].notna().all(axis=1).to_numpy()
    frame = data.loc[complete, sorted(columns)].reset_index(drop=True)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].cat.remove_unused_categories()
    return frame, np.flatnonzero(complete)


def _all_rows(data: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The model columns on every row of ``data``, as R's model.frame evaluates transforms
    (``lmmflow.model.r_terms.model_matrix``); a factor keeps only the levels of the complete cases
    ``frame``, as lme4's model frame drops unused levels."""
    all_rows = data[list(frame.columns)].reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            all_rows[column] = all_rows[column].cat.set_categories(values.cat.categories)
        elif not pd.api.types.is_numeric_dtype(values):
            all_rows[column] = all_rows[column].where(all_rows[column].isin(values.unique()))
    return all_rows


def _nesting_factor(blocks: tuple[RandomBlock, ...]) -> RandomBlock | None:
    """A block whose grouping factor every term's levels nest in (in the data), or None if crossed.

    Factors that all terms nest in have the same levels up to relabelling; the one with the
    fewest ':' (then the first) is taken, so that ``(1 | g) + (1 | h:g)`` nests in ``g``.
    """
    nesting = [top for top in blocks if all(_parents(block, top) is not None for block in blocks)]
    return min(nesting, key=lambda top: top.group_var.count(":"), default=None)


def _parents(block: RandomBlock, top: RandomBlock) -> np.ndarray | None:
    """Index into ``top.levels`` of each level of ``block``, None if a level spans several."""
    parents = np.zeros(block.n_levels, dtype=np.int64)
    parents[block.level_codes] = top.level_codes
    return parents if np.array_equal(parents[block.level_codes], top.level_codes) else None


def _nested_in(block: RandomBlock, top: RandomBlock) -> RandomBlock:
    return replace(block, parent_codes=_parents(block, top), is_nested=block.group_var != top.group_var)


def _factor_codes(frame: pd.DataFrame, factors: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and labels of the (interaction of) factors, levels present only, in R's order."""
    codes = np.zeros(len(frame), dtype=np.int64)
    labels = np.array([""], dtype=object)
    for factor in factors:
        factor_codes, factor_labels = single_factor(frame[factor])
        codes = codes * len(factor_labels) + factor_codes
        labels = np.array([f"{a}:{b}" if a else b for a in labels for b in factor_labels], dtype=object)
    present, codes = np.unique(codes, return_inverse=True)
    return codes.astype(np.int64), tuple(labels[present])


def _random_block(term: RandomTerm, frame: pd.DataFrame, all_rows: pd.DataFrame | None) -> RandomBlock:
    Z, effects = model_matrix(term.expr, frame, all_rows)
    level_codes, levels = _factor_codes(frame, list(term.group_factors))
    return RandomBlock(
        group_var=term.group,
        effects=effects,
        Z=Z,
        level_codes=level_codes,
        levels=levels,
        parent_codes=None,
        label=term.group,
        is_nested=False,
        term=f"({term.expr} | {term.group})",
    )


def _in_lme4_order(blocks: list[RandomBlock]) -> tuple[RandomBlock, ...]:
    """lme4 orders terms by decreasing number of levels and names repeats of a factor g.1, g.2."""
    ordered = sorted(blocks, key=lambda block: -block.n_levels)
    seen: dict[str, int] = {}
    labelled = []
    for block in ordered:
        count = seen.get(block.group_var, 0)
        seen[block.group_var] = count + 1
        label = block.group_var if count == 0 else f"{block.group_var}.{count}"
        labelled.append(replace(block, label=label))
    return tuple(labelled)
