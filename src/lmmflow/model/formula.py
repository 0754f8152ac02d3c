"""Parse lme4 model formulas: ``response ~ fixed part + (expr | group) + ...``.

Random terms are expanded as lme4 expands them: ``(expr || g)`` into uncorrelated terms
(``expandDoubleVerts``) and ``g/h`` into ``h:g`` and ``g`` (``findbars``). Grouping factors may
be crossed, partially crossed or nested; which it is, is a property of the data
(``lmmflow.model.design``), not of the formula.

``offset(expr)`` terms of the fixed part are split off (``split_offsets``; ``ModelFormula.offsets``)
and evaluated by ``lmmflow.model.design.offset_values``, for LMMs and GLMMs alike. R's rules for
the model frame are kept: the response's own term on the right is dropped with R's warning
(``ModelFormula.warnings``), interaction variables are ordered as R orders them
(``lmmflow.model.r_terms.model_matrix``), only functions lmmflow evaluates may be called
(``r_terms.SUPPORTED_FUNCTIONS``), and, stricter than lme4, a random term given twice is refused.

Only the bar terms are parsed here; the response, the fixed part and each term's left-hand
expression are R expressions and Wilkinson formulas that formulaic evaluates once
``lmmflow.model.r_terms`` has put them in its dialect (``^`` in calls is power, dotted names). We do not use ``formulae``
(bambi's parser) because it builds every ``g:h`` combination, present in the data or not
(150 school x ses cells for the chapter's model 3 where lme4 has 148), and does not expose the
term structure the fitting paths need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import formulaic

from lmmflow.model.r_terms import (
    SUPPORTED_FUNCTIONS,
    RSyntaxError,
    deparse,
    functions,
    split_outside_parentheses,
    term_label,
    to_formulaic,
    variables,
)

_NAME = re.compile(r"^(?:[^\W\d]|\.)[\w.]*$")  # R's names: letters of any alphabet, dots, underscores
_QUOTED_NAMES = re.compile(r"`([^`]+)`")
_OFFSET = re.compile(r"^offset\s*\((.*)\)$", re.DOTALL)


class FormulaError(ValueError):
    """A formula that cannot be turned into a model; the message names the offending term."""


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term; ``group`` is a factor name or an interaction ``g:h``.

    ``text`` is the term as written, before any ``||`` or ``/`` expansion produced this one.
    """

    expr: str
    group: str
    text: str

    @property
    def group_factors(self) -> tuple[str, ...]:
        return tuple(factor.strip("()") for factor in self.group.split(":"))  # lme4's a:(b:c) too

    @property
    def variables(self) -> set[str]:
        return variables(self.expr) | set(self.group_factors)


@dataclass(frozen=True)
class ModelFormula:
    """``response`` is a column name or an R expression of columns (``log(y)``), as R prints it."""

    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def response_variables(self) -> set[str]:
        return variables(self.response)

    @property
    def fixed_variables(self) -> set[str]:
        """The columns of the fixed part, its ``offset(...)`` terms included."""
        return variables(self.fixed).union(*(variables(offset) for offset in self.offsets))


# The start-up checks and the fit-job plan parse every configured formula: once each (~1 ms).
@lru_cache(maxsize=4096)
def parse_formula(text: str) -> ModelFormula:
    """Split an lme4 formula into response, fixed part and random terms."""
    _check_parentheses(text)
    _check_functions(text)
    if text.count("~") != 1:
        raise FormulaError(f"formula {text!r}: expected exactly one '~' between response and terms")
    response, rhs = (part.strip() for part in text.split("~"))
    response = _response(response, text)
    fixed_terms, random_terms = [], []
    for term in split_top_level(rhs):
        if "|" in term:
            random_terms.extend(_parse_random_term(term, text))
        else:
            fixed_terms.append(term)
    if not random_terms:
        raise FormulaError(f"formula {text!r}: no random term such as (1 | group); fit it with OLS instead")
    _check_repeated_terms(random_terms, text)
    fixed, offsets = split_offsets(fixed_terms)
    _check_fixed_syntax(fixed, text)
    warnings = ()
    if response in _term_labels(fixed):
        # R's model.matrix drops the response's own term from the right (of y * x, y; y:x stays),
        # with this warning, which lme4 passes on
        fixed, warnings = f"{fixed} - {response}", (RESPONSE_ON_RIGHT,)
    if "offset(" in fixed.replace(" ", ""):
        raise FormulaError(f"formula {text!r}: offset(...) must be a term of its own in the fixed part, added with '+'")
    for offset in offsets:
        _check_fixed_syntax(f"0 + I({offset})", text, f"offset({offset})")
    return ModelFormula(
        text=text, response=response, fixed=fixed, random=tuple(random_terms), offsets=offsets, warnings=warnings
    )


RESPONSE_ON_RIGHT = "the response appeared on the right-hand side and was dropped"


def _term_labels(expr: str) -> list[str]:
    """R's labels of the terms of a formula's right-hand side, expanded (``x * f``: ``x``, ``f``, ``x:f``)."""
    return [term_label(term) for term in formulaic.Formula(to_formulaic(expr))]


def _check_repeated_terms(terms: list[RandomTerm], text: str) -> None:
    """The same random term twice (``(1 | a) + (1 | a)``, or ``(x || a)`` beside ``(0 + x | a)``)
    is refused. lme4 fits it, with a non-identifiable split of one variance between two terms and
    convergence warnings; lmmflow is stricter."""
    seen: dict[tuple, RandomTerm] = {}
    for term in terms:  # a:b and b:a group alike
        key = (frozenset(_effect_labels(term.expr)), frozenset(term.group_factors))
        if key in seen:
            first = seen[key].text
            also = f" (from {first} and {term.text})" if first != term.text else ""
            raise FormulaError(
                f"formula {text!r}: random term ({term.expr} | {term.group}) is given twice{also}; "
                "its variance is not identifiable (lme4 fits it with convergence warnings, lmmflow refuses it)"
            )
        seen[key] = term


def _effect_labels(expr: str) -> list[str]:
    """The effects of a random term's left-hand side, as R labels them ("1" for the intercept)."""
    terms = list(formulaic.Formula(to_formulaic(expr)))
    return [term_label(t) if t.degree > 0 else "1" for t in terms]


def split_offsets(terms: str | list[str]) -> tuple[str, tuple[str, ...]]:
    """The fixed part without its ``offset(expr)`` terms, and each offset's ``expr``.

    As in R's terms(): an offset is no model column, wherever it stands, and several offsets add
    up (``lmmflow.model.design.offset_values`` evaluates them); a fixed part of offsets only keeps
    its intercept (``y ~ offset(z)`` is ``y ~ 1 + offset(z)``). ``terms`` are the fixed part's
    top-level '+' terms, or the fixed part itself (``"a + offset(z)"``, split by ``split_top_level``).
    """
    terms = split_top_level(terms) if isinstance(terms, str) else terms
    offsets = tuple(_OFFSET.match(term).group(1).strip() for term in terms if _is_offset(term))
    kept = [term for term in terms if not _is_offset(term)]
    return (" + ".join(kept) if kept else "1"), offsets


def _is_offset(term: str) -> bool:
    """``offset(...)`` as one whole term: the parenthesis opened after ``offset`` closes at its end."""
    if not _OFFSET.match(term):
        return False
    depth = 0
    for position, char in enumerate(term):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char == ")":
            return position == len(term) - 1
    return False


def _response(response: str, text: str) -> str:
    """The response as R prints it: a column or one numeric expression of columns, ``log(y)``."""
    try:
        terms = list(formulaic.Formula(f"0 + {to_formulaic(response)}")) if response else []
        if not variables(response) or len(terms) != 1:
            raise RSyntaxError("not one expression of columns")
    except Exception:  # formulaic raises several error types for syntax problems
        raise FormulaError(
            f"formula {text!r}: response {response!r} must be a column name or one expression of columns such as log(y)"
        ) from None
    return deparse(response)


def _check_functions(text: str) -> None:
    """Every function called is one lmmflow evaluates (formulaic would fail at fit time)."""
    try:
        called = functions(text.replace("~", "+").replace("|", "+"))
    except RSyntaxError:
        return  # the syntax checks below name the problem
    for name in called:
        if name not in SUPPORTED_FUNCTIONS:
            raise FormulaError(
                f"formula {text!r}: function {name!r} is not one lmmflow evaluates; "
                f"supported: {', '.join(SUPPORTED_FUNCTIONS)}"
            )


def _check_parentheses(text: str) -> None:
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise FormulaError(f"formula {text!r}: unbalanced ')' at character {position + 1}")
    if depth:
        raise FormulaError(f"formula {text!r}: {depth} unclosed '('")


def split_top_level(rhs: str) -> list[str]:
    """Split on '+' outside parentheses, so (1 + x | g) stays one term."""
    terms = split_outside_parentheses(rhs, "+")
    if any(not term for term in terms):
        raise FormulaError(f"formula right-hand side {rhs!r}: empty term between '+' signs")
    return terms


def _parse_random_term(term: str, text: str) -> list[RandomTerm]:
    if not (term.startswith("(") and term.endswith(")")):
        raise FormulaError(f"formula {text!r}: term {term!r}: a random term must be parenthesised, (expr | group)")
    inner = term[1:-1]
    uncorrelated = "||" in inner
    parts = [part.strip() for part in inner.split("||" if uncorrelated else "|")]
    if len(parts) != 2 or any("|" in part for part in parts):
        raise FormulaError(f"formula {text!r}: term {term!r}: expected one '|' (or '||') between effects and group")
    expr, group = parts
    if not expr:
        raise FormulaError(f"formula {text!r}: term {term!r}: nothing left of '|'")
    _check_fixed_syntax(expr, text, term)
    groups = _expand_nesting(group, term, text)
    for name in (factor.strip("()") for g in groups for factor in g.split(":")):
        if not (_NAME.match(name) or name in _QUOTED_NAMES.findall(group)):
            raise FormulaError(
                f"formula {text!r}: term {term!r}: grouping factor {name!r} must be a column name "
                "(or g:h for an interaction, g/h for nesting)"
            )
    exprs = _uncorrelated_parts(expr, term, text) if uncorrelated else [expr]
    return [RandomTerm(expr=e, group=g, text=term) for e in exprs for g in groups]


def _uncorrelated_parts(expr: str, term: str, text: str) -> list[str]:
    """lme4's expandDoubleVerts: (expr || g) is (1 | g) if expr has an intercept, then
    (0 + t | g) for each term t of expr. A factor's term stays whole: (0 + f | g) has correlated
    effects for all levels of f, as in lme4 (only afex's expand_re splits it per level)."""
    terms = list(formulaic.Formula(to_formulaic(expr)))
    labels = [term_label(t) for t in terms if t.degree > 0]
    parts = (["1"] if len(labels) < len(terms) else []) + [f"0 + {label}" for label in labels]
    if not parts:
        raise FormulaError(f"formula {text!r}: term {term!r}: no effect left of '||'")
    return parts


def _expand_nesting(group: str, term: str, text: str) -> list[str]:
    """lme4's g/h is (. | h:g) + (. | g), g/h/k is (. | k:h:g) + (. | h:g) + (. | g): innermost first,
    each interaction named inner factor first (lme4's findbars)."""
    parts = [":".join(_unquoted(f.strip()) for f in p.split(":")) for p in group.split("/")]
    if any(not p for p in parts):
        raise FormulaError(f"formula {text!r}: term {term!r}: empty grouping factor")
    return [_nested_name(list(reversed(parts[:i]))) for i in range(len(parts), 0, -1)]


def _nested_name(factors: list[str]) -> str:
    """lme4's name of a nested factor, innermost first: ``c/b/a`` gives ``a:(b:c)``, ``b:c`` and ``c``
    (findbars builds ``a:(b:c)`` from ``c/b/a`` recursively)."""
    name = factors[-1]
    for factor in reversed(factors[:-1]):
        name = f"{factor}:({name})" if ":" in name else f"{factor}:{name}"
    return name


def _unquoted(name: str) -> str:
    """A backquoted grouping factor, `` `my group` ``, is the column ``my group`` (lme4 names the
    group ``my group`` too)."""
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == "`" else name


def _check_fixed_syntax(expr: str, text: str, term: str | None = None) -> None:
    try:
        formulaic.Formula(to_formulaic(expr))
    except Exception as error:  # formulaic raises several error types for syntax problems
        where = f"term {term!r}" if term else f"fixed part {expr!r}"
        raise FormulaError(f"formula {text!r}: {where} is not a valid formula: {error}") from None
