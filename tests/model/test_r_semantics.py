"""lme4's numbers for formulas that use R's semantics: ``^`` as power in
``I()`` on integer and float columns, ``log``/``sqrt``/``exp`` and arithmetic on the response and
predictors, ``scale``/``center``/``poly``, dotted and backquoted names, and rank-deficient fixed
effects (lme4 drops the later of aliased columns). Tolerances are the chapter's
(``tests/lme4_agreement.py``): logLik 1e-4 absolute, fixed effects and SEs 1e-3 relative,
variances 1% relative; term names must be R's.

The numbers were computed once with R 4.2 and lme4 by this script (sleepstudy from the raw
mirror, with three derived columns built the same way in ``data`` below), and pasted here:

    library(lme4)
    d <- read.csv("sleepstudy.csv")
    d$Subject <- factor(d$Subject)
    d$day.frac <- d$Days / 2 + 0.25
    d[["sleep loss"]] <- (d$Days * 7) %% 5 + 0.5
    d$Days.x2 <- 2 * d$Days
    models <- list(...)  # the formulas of LME4 below, by name
    out <- list()
    for (name in names(models)) {
      m <- lmer(as.formula(models[[name]]), data = d, REML = TRUE)
      vc <- as.data.frame(VarCorr(m))
      vc <- vc[is.na(vc$var2), ]
      dropped <- attr(getME(m, "X"), "col.dropped")
      out[[name]] <- list(formula = models[[name]], logLik = as.numeric(logLik(m)),
        terms = names(fixef(m)), fixef = unname(fixef(m)),
        se = unname(sqrt(diag(as.matrix(vcov(m))))), variances = unname(vc$vcov),
        dropped = if (is.null(dropped)) character(0) else names(dropped))
    }
    cat(jsonlite::toJSON(out, digits = 12, pretty = TRUE))

``LME4_MISSING`` are fits to the same data with missing values (rows 1, 5, 12, 40, 41, 99, 150
of Reaction, and for all but poly rows 2 and 77 of Days; R's row numbers), by the same loop with
``d$Reaction[c(1, 5, 12, 40, 41, 99, 150)] <- NA; d$Days[c(2, 77)] <- NA`` first: R's model.frame
evaluates scale() and poly() on every row and drops incomplete rows after, so the mean, SD and
polynomial come from all values present, not from the complete cases (poly refuses a missing x).

lme4 reports the rank deficiency as a message, "fixed-effect model matrix is rank deficient so
dropping 1 column / coefficient", for the three ``rank_*`` models only.
"""

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from lmmflow.fit import fit_model
from lmmflow.model import r_terms
from lmmflow.model.design import build_design, lme4_rank_columns
from lmmflow.outputs import tables


class Lme4Fit(NamedTuple):
    formula: str
    loglik: float
    terms: tuple[str, ...]
    fixef: tuple[float, ...]
    se: tuple[float, ...]
    variances: tuple[float, ...]  # random-effect variances in lme4's order, then the residual's
    dropped: tuple[str, ...]


LME4 = {
    "int_power": Lme4Fit(
        "Reaction ~ Days + I(Days^2) + (Days | Subject)",
        loglik=-871.4077998,
        terms=("(Intercept)", "Days", "I(Days^2)"),
        fixef=(255.4493728, 7.434085013, 0.3370223274),
        se=(7.513546706, 2.818871899, 0.2619153762),
        variances=(613.1241663, 35.10770628, 651.9712094),
        dropped=(),
    ),
    "float_power_log": Lme4Fit(
        "log(Reaction) ~ day.frac + I(day.frac^2) + (1 | Subject)",
        loglik=127.6794671,
        terms=("(Intercept)", "day.frac", "I(day.frac^2)"),
        fixef=(5.521761412, 0.05715025206, 0.002037163933),
        se=(0.03746605163, 0.02060278125, 0.003994707943),
        variances=(0.01640964803, 0.009478868779),
        dropped=(),
    ),
    "scale": Lme4Fit(
        "Reaction ~ scale(Days) + (Days | Subject)",
        loglik=-870.7562439,
        terms=("(Intercept)", "scale(Days)"),
        fixef=(298.5078917, 30.14885342),
        se=(9.049972551, 4.452327525),
        variances=(612.1001581, 35.07171445, 654.9400083),
        dropped=(),
    ),
    "center": Lme4Fit(
        "Reaction ~ scale(Days, scale = FALSE) + (1 | Subject)",
        loglik=-893.2325427,
        terms=("(Intercept)", "scale(Days, scale = FALSE)"),
        fixef=(298.5078917, 10.46728596),
        se=(9.049936069, 0.804221429),
        variances=(1378.178514, 960.4565786),
        dropped=(),
    ),
    "poly": Lme4Fit(
        "Reaction ~ poly(Days, 2) + (Days | Subject)",
        loglik=-863.1764808,
        terms=("(Intercept)", "poly(Days, 2)1", "poly(Days, 2)2"),
        fixef=(298.5078917, 403.3641679, 32.85578798),
        se=(9.049960809, 59.56808691, 25.5337269),
        variances=(613.1241663, 35.10770628, 651.9712094),
        dropped=(),
    ),
    "sqrt_exp_backquote": Lme4Fit(
        "sqrt(Reaction) ~ exp(-Days/10) + `sleep loss` + (1 | Subject)",
        loglik=-257.1758054,
        terms=("(Intercept)", "exp(-Days/10)", "`sleep loss`"),
        fixef=(20.4287242, -4.571644062, -0.07564737697),
        se=(0.392710409, 0.3559397011, 0.04760375188),
        variances=(1.175308078, 0.7606169725),
        dropped=(),
    ),
    "arithmetic_response": Lme4Fit(
        "I(Reaction/100 - 1) ~ I((Days - 4.5)^3) + (1 | Subject)",
        loglik=-88.35153661,
        terms=("(Intercept)", "I((Days - 4.5)^3)"),
        fixef=(1.985078917, 0.006064797785),
        se=(0.09049936072, 0.0005459993425),
        variances=(0.1362635803, 0.1115883696),
        dropped=(),
    ),
    "rank_two_columns": Lme4Fit(
        "Reaction ~ Days.x2 + Days + (Days | Subject)",
        loglik=-872.5072832,
        terms=("(Intercept)", "Days.x2"),
        fixef=(251.4051048, 5.23364298),
        se=(6.824596695, 0.7728948219),
        variances=(612.100158, 35.07171445, 654.9400083),
        dropped=("Days",),
    ),
    "rank_later_larger": Lme4Fit(
        "Reaction ~ Days + Days.x2 + (1 | Subject)",
        loglik=-893.2325427,
        terms=("(Intercept)", "Days"),
        fixef=(251.4051048, 10.46728596),
        se=(9.746716269, 0.8042214289),
        variances=(1378.178514, 960.4565786),
        dropped=("Days.x2",),
    ),
    "dotted_uncorrelated": Lme4Fit(
        "Reaction ~ Days + (1 + day.frac || Subject)",
        loglik=-871.8278567,
        terms=("(Intercept)", "Days"),
        fixef=(251.4051048, 10.46728596),
        se=(6.798176262, 1.533240483),
        variances=(596.5912336, 137.4430524, 656.2142185),
        dropped=(),
    ),
    "rank_in_I": Lme4Fit(
        "Reaction ~ Days + `sleep loss` + I(2 * Days - `sleep loss`) + (1 | Subject)",
        loglik=-890.6919487,
        terms=("(Intercept)", "Days", "`sleep loss`"),
        fixef=(256.2851839, 10.76992652, -2.496784651),
        se=(10.27956017, 0.8266541637, 1.678942543),
        variances=(1378.895855, 953.2831634),
        dropped=("I(2 * Days - `sleep loss`)",),
    ),
}

LME4_MISSING = {
    "scale_missing": Lme4Fit(
        "Reaction ~ scale(Days) + (Days | Subject)",
        loglik=-829.98241958845,
        terms=("(Intercept)", "scale(Days)"),
        fixef=(298.19014763979, 29.51763356995),
        se=(8.98306932058, 4.55732442622),
        variances=(632.32846584905, 35.84080083294, 673.78993346144),
        dropped=(),
    ),
    "scale_response_missing": Lme4Fit(
        "scale(Reaction) ~ Days + (1 | Subject)",
        loglik=-171.5291740682948,
        terms=("(Intercept)", "Days"),
        fixef=(-0.8114507352820, 0.1840299534428),
        se=(0.1802289377407, 0.0153133588536),
        variances=(0.4646337817333, 0.3157041781256),
        dropped=(),
    ),
    "center_missing": Lme4Fit(
        "Reaction ~ scale(Days, scale = FALSE) + (1 | Subject)",
        loglik=-848.828650356559,
        terms=("(Intercept)", "scale(Days, scale = FALSE)"),
        fixef=(298.463559436911, 10.125251625996),
        se=(9.152542526922, 0.842534645766),
        variances=(1406.518340215302, 955.685389701654),
        dropped=(),
    ),
    "poly_missing_response": Lme4Fit(
        "Reaction ~ poly(Days, 2) + (1 | Subject)",
        loglik=-850.40313524048,
        terms=("(Intercept)", "poly(Days, 2)1", "poly(Days, 2)2"),
        fixef=(298.04824966708, 396.18633463752, 33.45742154096),
        se=(9.03120635464, 32.32276301966, 32.26987932736),
        variances=(1367.46217211431, 962.15505858247),
        dropped=(),
    ),
}

# center() is not R; lme4's centred fit is scale(Days, scale = FALSE) (same numbers, R's name).
CENTER = LME4["center"]._replace(
    formula="Reaction ~ center(Days) + (1 | Subject)", terms=("(Intercept)", "center(Days)")
)
RANK_DEFICIENT = "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient"


@pytest.fixture(scope="module")
def data(sleepstudy):
    data = sleepstudy.copy()
    data["day.frac"] = data["Days"] / 2 + 0.25
    data["sleep loss"] = (data["Days"] * 7) % 5 + 0.5
    data["Days.x2"] = 2 * data["Days"]
    return data


@pytest.mark.parametrize("lme4", [*LME4.values(), CENTER], ids=[*LME4, "center_function"])
def test_fit_agrees_with_lme4_under_r_names(data, lme4):
    assert_agrees(data, lme4)


def missing(data: pd.DataFrame, days_too: bool) -> pd.DataFrame:
    data = data.copy()
    data.loc[[0, 4, 11, 39, 40, 98, 149], "Reaction"] = np.nan
    if days_too:
        data.loc[[1, 76], "Days"] = np.nan
    return data


@pytest.mark.parametrize("lme4", LME4_MISSING.values(), ids=LME4_MISSING)
def test_transforms_see_every_row_as_r_model_frame_does(data, lme4):
    assert_agrees(missing(data, days_too="poly" not in lme4.formula), lme4)


def test_poly_refuses_missing_values_as_r_does(data):
    with pytest.raises(Exception, match="missing values are not allowed in 'poly'"):
        build_design("Reaction ~ poly(Days, 2) + (1 | Subject)", missing(data, days_too=True))


def assert_agrees(data: pd.DataFrame, lme4: Lme4Fit) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = build_design(lme4.formula, data)
    assert [str(w.message) for w in caught] == ([RANK_DEFICIENT] if lme4.dropped else [])
    assert design.dropped_fixed == lme4.dropped
    fit = fit_model(design, "fast")
    fixed = tables.fixed_effects(design, fit)
    assert ["(Intercept)" if term == "Intercept" else term for term in fixed["term"]] == list(lme4.terms)
    assert abs(fit.loglik - lme4.loglik) < 1e-4
    np.testing.assert_allclose(fixed["value"], lme4.fixef, rtol=1e-3)
    np.testing.assert_allclose(fixed["se"], lme4.se, rtol=1e-3)
    np.testing.assert_allclose(tables.variance_components(design, fit)["variance"], lme4.variances, rtol=1e-2)
    summary = tables.fit_summary(design, fit, dataset="sleepstudy", formula=lme4.formula)
    assert summary["dropped_fixed_effects"] == list(lme4.dropped)
    assert (RANK_DEFICIENT in summary["warnings"]) == bool(lme4.dropped)


def test_power_in_i_is_power_not_xor_on_integer_and_float_columns(data):
    design = build_design("Reaction ~ I(Days^2) + I(day.frac ^ 2) + (1 | Subject)", data)
    np.testing.assert_array_equal(design.X[:, 1], data["Days"] ** 2)
    np.testing.assert_array_equal(design.X[:, 2], data["day.frac"] ** 2)


def test_response_expression_is_evaluated_on_the_rows_used(data):
    rows = data.copy()
    rows.loc[3, "Days"] = np.nan
    design = build_design("log(Reaction) ~ Days + (1 | Subject)", rows)
    assert design.response == "log(Reaction)"
    np.testing.assert_allclose(design.y, np.log(rows["Reaction"].drop(index=3)))


def test_stateful_transforms_name_their_columns_for_complete_cases(data):
    design = build_design("Reaction ~ scale(Days) + center(`sleep loss`) + (1 | Subject)", data)
    assert design.fixed_names == ("Intercept", "scale(Days)", "center(`sleep loss`)")


def test_backquoted_and_dotted_names_work_in_random_terms(data):
    design = build_design("Reaction ~ `sleep loss` + (1 + day.frac | Subject)", data)
    assert design.fixed_names == ("Intercept", "`sleep loss`")
    assert design.blocks[0].effects == ("Intercept", "day.frac")


def test_rank_check_drops_the_later_aliased_column_as_dqrdc2():
    x = np.arange(6.0)
    X = np.column_stack([np.ones(6), x, 10 * x, np.zeros(6), x**2, 1 + 2 * x])
    assert lme4_rank_columns(X) == [0, 1, 4]


def test_rank_check_keeps_full_rank_matrices_whole():
    X = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 0, 1, 0], "c": [5.0, 1, 2, 2]}).to_numpy()
    assert lme4_rank_columns(X) == [0, 1, 2]


@pytest.mark.parametrize(
    ("written", "formulaic_text", "r_name"),
    [
        ("I(x^2)", "I( x ** 2 )", "I(x^2)"),
        ("I(x.1 ^ 2 + -x)", "I( `x.1` ** 2 + - x )", "I(x.1^2 + -x)"),
        ("exp(-x/2)", "exp( - x / 2 )", "exp(-x/2)"),
        ("poly(x, degree=2)", "poly( x , degree = 2 )", "poly(x, degree = 2)"),
        ("scale(x, scale = FALSE)", "scale( x , scale = False )", "scale(x, scale = FALSE)"),
        ("I(2.0*x %% 3)", "I( 2.0 * x % 3 )", "I(2 * x%%3)"),
        ("`a b`:g", "`a b` : g", "`a b`:g"),
        ("(a + b)^2", "( a + b ) ^ 2", "(a + b)^2"),
    ],
)
def test_r_expressions_translate_to_formulaic_and_print_as_r_deparses(written, formulaic_text, r_name):
    assert r_terms.to_formulaic(written) == formulaic_text
    assert r_terms.deparse(written) == r_name


def test_variables_are_the_columns_not_functions_or_arguments():
    assert r_terms.variables("poly(x.1, degree = 2) + scale(`a b`, scale = FALSE) + log(y):g") == {
        "x.1",
        "a b",
        "y",
        "g",
    }


def test_backquoted_grouping_factor_is_its_column(data):
    data = data.rename(columns={"Subject": "sleep subject"})
    design = build_design("Reaction ~ Days + (day.frac || `sleep subject`)", data)
    assert [(block.label, block.effects) for block in design.blocks] == [
        ("sleep subject", ("Intercept",)),
        ("sleep subject.1", ("day.frac",)),
    ]
