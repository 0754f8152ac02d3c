"""Parse lme4 model formulas: ``response ~ fixed part + (expr | group) + ...``.

Only the bar terms are parsed here; the fixed part and each term's left-hand expression are
Wilkinson formulas that formulaic evaluates (``lmmflow.design``). We do not use ``formulae``
(bambi's parser) because it builds every ``g:h`` combination, present in the data or not
(150 school x ses cells for the chapter's model 3 where lme4 has 148), and does not expose the
term structure the fitting paths need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import formulaic

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


class FormulaError(ValueError):
    """A formula that cannot be turned into a model; the message names the offending term."""


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term; ``group`` is a factor name or an interaction ``g:h``."""

    expr: str
    group: str
    text: str

    @property
    def group_factors(self) -> tuple[str, ...]:
        return tuple(self.group.split(":"))

    @property
    def variables(self) -> set[str]:
        return set(formulaic.Formula(self.expr).required_variables) | set(self.group_factors)


@dataclass(frozen=True)
class ModelFormula:
    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]

    @property
    def fixed_variables(self) -> set[str]:
        return set(formulaic.Formula(self.fixed).required_variables)


def parse_formula(text: str) -> ModelFormula:
    """Split an lme4 formula into response, fixed part and random terms."""
    _check_parentheses(text)
    if text.count("~") != 1:
        raise FormulaError(f"formula {text!r}: expected exactly one '~' between response and terms")
    response, rhs = (part.strip() for part in text.split("~"))
    if not _NAME.match(response):
        raise FormulaError(f"formula {text!r}: response {response!r} must be a single column name")
    fixed_terms, random_terms = [], []
    for term in _split_top_level(rhs):
        if "|" in term:
            random_terms.extend(_parse_random_term(term, text))
        else:
            fixed_terms.append(term)
    if not random_terms:
        raise FormulaError(f"formula {text!r}: no random term such as (1 | group); fit it with OLS instead")
    fixed = " + ".join(fixed_terms) if fixed_terms else "1"
    _check_fixed_syntax(fixed, text)
    return ModelFormula(text=text, response=response, fixed=fixed, random=tuple(random_terms))


def _check_parentheses(text: str) -> None:
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise FormulaError(f"formula {text!r}: unbalanced ')' at character {position + 1}")
    if depth:
        raise FormulaError(f"formula {text!r}: {depth} unclosed '('")


def _split_top_level(rhs: str) -> list[str]:
    """Split on '+' outside parentheses, so (1 + x | g) stays one term."""
    terms, depth, current = [], 0, ""
    for char in rhs:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "+" and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    if any(not term for term in terms):
        raise FormulaError(f"formula right-hand side {rhs!r}: empty term between '+' signs")
    return terms


def _parse_random_term(term: str, text: str) -> list[RandomTerm]:
    if not (term.startswith("(") and term.endswith(")")):
        raise FormulaError(f"formula {text!r}: term {term!r}: a random term must be parenthesised, (expr | group)")
    inner = term[1:-1]
    if "||" in inner:
        raise FormulaError(
            f"formula {text!r}: term {term!r}: '||' is not supported; write uncorrelated terms "
            "separately, e.g. (1 | g) + (0 + x | g)"
        )
    if inner.count("|") != 1:
        raise FormulaError(f"formula {text!r}: term {term!r}: expected one '|' between effects and group")
    expr, group = (part.strip() for part in inner.split("|"))
    if not expr:
        raise FormulaError(f"formula {text!r}: term {term!r}: nothing left of '|'")
    groups = _expand_nesting(group, term, text)
    for name in (factor for g in groups for factor in g.split(":")):
        if not _NAME.match(name):
            raise FormulaError(
                f"formula {text!r}: term {term!r}: grouping factor {name!r} must be a column name "
                "(or g:h for nested grouping)"
            )
    _check_fixed_syntax(expr, text, term)
    return [RandomTerm(expr=expr, group=g, text=term) for g in groups]


def _expand_nesting(group: str, term: str, text: str) -> list[str]:
    """lme4's g/h means (.|g) + (.|g:h)."""
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise FormulaError(f"formula {text!r}: term {term!r}: empty grouping factor")
    return [":".join(parts[: i + 1]) for i in range(len(parts))]


def _check_fixed_syntax(expr: str, text: str, term: str | None = None) -> None:
    try:
        formulaic.Formula(expr)
    except Exception as error:  # formulaic raises several error types for syntax problems
        where = f"term {term!r}" if term else f"fixed part {expr!r}"
        raise FormulaError(f"formula {text!r}: {where} is not a valid formula: {error}") from None
