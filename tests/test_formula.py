import re

import pytest

from lmmflow.formula import FormulaError, parse_formula


def test_splits_fixed_part_and_random_terms():
    formula = parse_formula("achievement ~ ses + (1 | primary_school_id) + (1 | primary_school_id:ses)")
    assert formula.response == "achievement"
    assert formula.fixed == "ses"
    assert [(t.expr, t.group) for t in formula.random] == [
        ("1", "primary_school_id"),
        ("1", "primary_school_id:ses"),
    ]


def test_random_slope_term_keeps_its_expression():
    formula = parse_formula("gpa ~ occasion + (1 + occasion | student)")
    assert formula.random[0].expr == "1 + occasion"
    assert formula.random[0].variables == {"occasion", "student"}


def test_intercept_only_fixed_part():
    assert parse_formula("y ~ (1 | g)").fixed == "1"


def test_slash_expands_to_nested_terms():
    groups = [t.group for t in parse_formula("y ~ x + (1 | g/h)").random]
    assert groups == ["g", "g:h"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("y ~ x + (1 | g", "unclosed '('"),
        ("y ~ x + 1 | g)", "unbalanced ')'"),
        ("y ~ x + (1 || g)", "'||' is not supported"),
        ("y ~ x + (1 | g | h)", "expected one '|'"),
        ("y x + (1 | g)", "exactly one '~'"),
        ("log(y) ~ x + (1 | g)", "single column name"),
        ("y ~ x", "no random term"),
        ("y ~ x + ( | g)", "nothing left of '|'"),
        ("y ~ x + (1 | g + h)", "grouping factor 'g + h'"),
        ("y ~ x + + (1 | g)", "empty term"),
    ],
)
def test_bad_formulas_are_refused_naming_the_problem(text, fragment):
    with pytest.raises(FormulaError, match=re.escape(fragment)):
        parse_formula(text)
