"""GLMM responses, prior weights and offsets read as lme4 / R's glm families read them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmflow.engine.families import GLMMError
from lmmflow.engine.glmm_design import glmm_design
from lmmflow.model.response import glmm_response


def frame():
    return pd.DataFrame(
        {
            "s": [1.0, 0.0, 3.0, 2.0],
            "n": [4.0, 2.0, 3.0, 5.0],
            "b": [True, False, True, False],
            "f": pd.Categorical(["no", "yes", "yes", "no"], categories=["no", "yes"]),
            "t": ["N", "Y", "Y", "N"],
            "y01": [0.0, 1.0, 1.0, 0.0],
            "p": [0.25, 0.0, 1.0, 0.4],
            "k": [0.0, 3.0, 7.0, 1.0],
        }
    )


def test_cbind_with_an_expression_gives_proportion_and_trials_as_weights():
    """R: glmer(cbind(s, n - s) ~ ...): y = s / n, prior weights n."""
    r = glmm_response("cbind(s, n - s)", frame(), "binomial")
    assert np.allclose(r.y, [0.25, 0.0, 1.0, 0.4])
    assert np.allclose(r.weights, [4, 2, 3, 5])
    assert r.kind == "cbind"


def test_logical_factor_and_text_responses_are_zero_one_first_level_failure():
    d = frame()
    assert np.array_equal(glmm_response("b", d, "binomial").y, [1, 0, 1, 0])
    assert np.array_equal(glmm_response("f", d, "binomial").y, [0, 1, 1, 0])
    assert np.array_equal(glmm_response("t", d, "binomial").y, [0, 1, 1, 0])
    assert np.array_equal(glmm_response("y01", d, "binomial").y, [0, 1, 1, 0])


def test_proportion_with_weights_as_trials():
    r = glmm_response("p", frame(), "binomial", weights="n")
    assert np.allclose(r.weights, [4, 2, 3, 5]) and np.allclose(r.y * r.weights, [1, 0, 3, 2])


@pytest.mark.parametrize(
    ("response", "family", "match"),
    [
        ("k", "binomial", "outside \\[0, 1\\]"),
        ("cbind(s, s - n)", "binomial", "negative counts"),
        ("-k", "poisson", "negative"),
        ("cbind(s, n)", "poisson", "binomial response"),
        ("nope", "binomial", "nope"),
    ],
)
def test_bad_responses_raise_naming_the_column(response, family, match):
    with pytest.raises(GLMMError, match=match):
        glmm_response(response, frame(), family)


def test_more_than_two_levels_is_refused():
    d = frame()
    d["three"] = ["a", "b", "c", "a"]
    with pytest.raises(GLMMError, match="'three' has 3 levels"):
        glmm_response("three", d, "binomial")


def test_non_integer_counts_warn_as_r():
    d = frame()
    d["x"] = [0.5, 1.0, 2.0, 3.0]
    with pytest.warns(UserWarning, match="non-integer"):
        glmm_response("x", d, "poisson")
    with pytest.warns(UserWarning, match="non-integer #successes"):
        glmm_response("p", d, "binomial")


def counts():
    return frame().assign(g=["a", "a", "b", "b"], x=[1.0, 2.0, 3.0, 4.0])


def test_offsets_are_the_formulas():
    """The GLMM design takes its offsets from the parsed formula, as an LMM's
    (``lmmflow.model.design.offset_values``); a fixed part of offsets only keeps the intercept."""
    gd = glmm_design("k ~ x + offset(log(n)) + (1 | g)", counts(), "poisson")
    assert np.allclose(gd.offset, np.log([4, 2, 3, 5])) and gd.design.fixed_names == ("Intercept", "x")
    assert glmm_design("k ~ offset(log(n)) + (1 | g)", counts(), "poisson").design.fixed_names == ("Intercept",)


@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("k ~ x + offset(log(nope)) + (1 | g)", r"term 'offset\(log\(nope\)\)' names column\(s\) \['nope'\]"),
        ("k ~ x + offset(log(s)) + (1 | g)", r"offset\(log\(s\)\) is not finite on 1 of the rows used"),
    ],
)
def test_a_bad_offset_is_refused_naming_it(formula, match):
    with pytest.raises(GLMMError, match=match):
        glmm_design(formula, counts(), "poisson")
