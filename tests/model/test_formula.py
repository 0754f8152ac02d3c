import re

import pytest

from lmmflow.model.formula import FormulaError, parse_formula


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


def test_slash_expands_to_nested_terms_named_as_lme4_names_them():
    """lme4's findbars: g/h is (1 | h:g) + (1 | g), innermost first, inner factor first; g/h/k's
    innermost is k:(h:g): names(ranef(lmer(Reaction ~ Days + (1 | c/b/a), ss))) is
    "a:(b:c)" "b:c" "c" in lme4 1.1-31."""
    assert [t.group for t in parse_formula("y ~ x + (1 | g/h)").random] == ["h:g", "g"]
    assert [t.group for t in parse_formula("y ~ x + (1 | g/h/k)").random] == ["k:(h:g)", "h:g", "g"]
    assert [t.group for t in parse_formula("y ~ x + (1 | a/b/c/d)").random][0] == "d:(c:(b:a))"
    assert parse_formula("y ~ x + (1 | g/h/k)").random[0].group_factors == ("k", "h", "g")


def _terms(text: str) -> list[tuple[str, str]]:
    return [(t.expr, t.group) for t in parse_formula(text).random]


def test_double_bar_with_a_numeric_slope_is_intercept_plus_uncorrelated_slope():
    assert _terms("y ~ x + (x || g)") == [("1", "g"), ("0 + x", "g")]
    assert _terms("y ~ x + (1 + x || g)") == [("1", "g"), ("0 + x", "g")]
    assert _terms("y ~ x + (0 + x || g)") == [("0 + x", "g")]
    assert _terms("y ~ x + (1 || g)") == [("1", "g")]


def test_double_bar_splits_by_the_terms_of_the_expression_as_lme4_does():
    """One (0 + t | g) per term of the expression, interactions included (expandDoubleVerts
    takes terms()' term.labels); a factor's term is not split per level."""
    assert _terms("y ~ (x * z || g)") == [("1", "g"), ("0 + x", "g"), ("0 + z", "g"), ("0 + x:z", "g")]
    assert _terms("y ~ (f || g)") == [("1", "g"), ("0 + f", "g")]


def test_double_bar_expands_before_slash_as_in_lme4():
    assert _terms("y ~ (x || g/h)") == [("1", "h:g"), ("1", "g"), ("0 + x", "h:g"), ("0 + x", "g")]


def test_crossed_nested_and_interaction_grouping_factors_are_parsed():
    assert _terms("y ~ (1 + x | g1) + (1 | g2) + (1 | dept:service)") == [
        ("1 + x", "g1"),
        ("1", "g2"),
        ("1", "dept:service"),
    ]


def test_expanded_terms_keep_the_term_as_written():
    assert {t.text for t in parse_formula("y ~ (x || g)").random} == {"(x || g)"}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("y ~ x + (1 | g", "unclosed '('"),
        ("y ~ x + 1 | g)", "unbalanced ')'"),
        ("y ~ x + (1 | g | h)", "term '(1 | g | h)': expected one '|'"),
        ("y ~ x + (1 || g | h)", "term '(1 || g | h)': expected one '|' (or '||')"),
        ("y ~ x + (0 || g)", "term '(0 || g)': no effect left of '||'"),
        ("y ~ x + (1 | g/)", "term '(1 | g/)': empty grouping factor"),
        ("y x + (1 | g)", "exactly one '~'"),
        ("y + z ~ x + (1 | g)", "one expression of columns"),
        ("y ~ x", "no random term"),
        ("y ~ x + ( | g)", "nothing left of '|'"),
        ("y ~ x + (1 | g + h)", "grouping factor 'g + h'"),
        ("y ~ x + + (1 | g)", "empty term"),
    ],
)
def test_bad_formulas_are_refused_naming_the_problem(text, fragment):
    with pytest.raises(FormulaError, match=re.escape(fragment)):
        parse_formula(text)


def test_response_may_be_an_expression_printed_as_r_prints_it():
    formula = parse_formula("log( y+1 ) ~ I(x.1^2) + (1 | g.h)")
    assert (formula.response, formula.response_variables) == ("log(y + 1)", {"y"})
    assert formula.fixed_variables == {"x.1"}
    assert formula.random[0].variables == {"g.h"}
