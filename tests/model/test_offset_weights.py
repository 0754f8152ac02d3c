"""offset() terms and prior weights against lme4 1.1-31 and lmerTest (R 4.x), on sleepstudy and gpa.

The oracle numbers below were computed by (data from /work/shared/data)::

    library(lme4); library(lmerTest)
    ss <- read.csv("sleepstudy.csv"); ss$Subject <- factor(ss$Subject)
    ss$w <- 1 + (ss$rownames %% 3); ss$z <- 0.5 * ss$Days + (ss$rownames %% 5); ss$fDays <- factor(ss$Days)
    gpa <- read.csv("gpa.csv"); gpa$w2 <- 1 + (gpa$student %% 4) / 2; gpa$student <- factor(gpa$student)
    A  <- lmer(Reaction ~ Days + offset(z) + (Days | Subject), ss, weights = w)
    B  <- lmer(Reaction ~ Days + offset(z) + (Days | Subject), ss, weights = w, REML = FALSE)
    B0 <- lmer(Reaction ~ 1 + offset(z) + (Days | Subject), ss, weights = w, REML = FALSE)
    C  <- lmer(gpa ~ occasion + sex + offset(0.1 * highgpa) + (1 | student), gpa, weights = w2)
    D  <- lmer(Reaction ~ offset(log(Days + 1)) + Days + (1 | Subject) + (1 | fDays), ss, weights = w)
    E  <- lmer(Reaction ~ Days + offset(z) + (Days | Subject), ss)
    logLik(m); fixef(m); sqrt(diag(vcov(m))); as.data.frame(VarCorr(m))$vcov (and $sdcor: the correlation)
    fitted(m)[c(1, 2, 100)]; summary(m)$coefficients[, "df"]; anova(B0, B)
    confint(lmer(Reaction ~ Days + offset(z) + (Days | Subject), ss), method = "profile", oldNames = FALSE)

Tolerances are tests/lme4_agreement.py's: logLik 1e-4 absolute, fixed effects and SEs 1e-3
relative, variances 1% relative or 1e-4 absolute, Satterthwaite df 1% relative.
"""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import MIRROR
from offset_weights_oracle import ORACLE

from lmmflow.engine.choice import fit_profiled
from lmmflow.fit import fit_model
from lmmflow.inference.bootstrap import simulate_response
from lmmflow.inference.likelihood_ratio import MLFit, anova_table, ml_fit
from lmmflow.inference.profile_intervals import profile_intervals
from lmmflow.inference.satterthwaite import fixed_effect_tests
from lmmflow.model.design import DesignError, build_design, offset_values
from lmmflow.model.formula import FormulaError, parse_formula, split_offsets
from lmmflow.outputs.predictions import conditional_fitted
from lmmflow.verify.sparse_lu import sparse_lu_deviance

DATA = MIRROR


def sleep() -> pd.DataFrame:
    data = pd.read_csv(f"{DATA}/sleepstudy.csv")
    data["Subject"] = data["Subject"].astype(str)
    data["w"] = 1 + data["rownames"] % 3
    data["z"] = 0.5 * data["Days"] + data["rownames"] % 5
    data["fDays"] = pd.Categorical(data["Days"])
    return data


def gpa() -> pd.DataFrame:
    data = pd.read_csv(f"{DATA}/gpa.csv")
    data["w2"] = 1 + (data["student"] % 4) / 2
    data["sex"] = pd.Categorical(data["sex"])
    return data


def design_of(case: str):
    spec = ORACLE[case]
    data = sleep() if spec["data"] == "sleep" else gpa()
    return build_design(spec["formula"], data, spec["weights"])


def assert_matches(design, fit, spec: dict) -> None:
    assert abs(fit.loglik - spec["logLik"]) < 1e-4
    np.testing.assert_allclose(fit.beta, spec["beta"], rtol=1e-3)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.beta_cov)), spec["se"], rtol=1e-3)
    ours = [v for cov in fit.covariances for v in np.diag(cov)] + [fit.sigma2]
    np.testing.assert_allclose(ours, spec["variances"], rtol=1e-2, atol=1e-4)
    if "correlation" in spec:
        cov = fit.covariances[0]
        assert abs(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) - spec["correlation"]) < 0.01
    np.testing.assert_allclose(conditional_fitted(design, fit)[[0, 1, 99]], spec["fitted"], rtol=1e-5)


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_fit_matches_lme4(case):
    design = design_of(case)
    fit = fit_model(design, reml=ORACLE[case]["reml"])
    assert_matches(design, fit, ORACLE[case])
    assert fit.verification_difference < 1e-6


def test_statsmodels_fits_and_verifies_an_offset_and_refuses_weights():
    design = design_of("E")
    fit = fit_model(design, engine="statsmodels")
    assert_matches(design, fit, ORACLE["E"])
    assert fit_model(design).verification == "statsmodels"
    assert fit_model(design).verification_difference < 1e-6
    with pytest.raises(ValueError, match="prior weights .* statsmodels' MixedLM has no prior weights"):
        fit_model(design_of("A"), engine="statsmodels")


@pytest.mark.parametrize("engine", ["groups-last", "blocked"])
def test_both_engines_match_lme4(engine):
    design = design_of("A")
    assert_matches(design, fit_profiled(design, engine=engine), ORACLE["A"])


@pytest.mark.parametrize("case", ["A", "C", "D", "E"])
def test_satterthwaite_df_match_lmertest(case):
    design = design_of(case)
    fit = fit_model(design)
    np.testing.assert_allclose(fixed_effect_tests(design, fit)["df"], ORACLE[case]["df"], rtol=1e-2)


def test_verifiers_agree_with_weights_and_offset():
    design = design_of("D")
    fit = fit_profiled(design)
    assert abs(sparse_lu_deviance(design, fit.theta) + 2 * fit.loglik) < 1e-6


def test_likelihood_ratio_test_with_offset_and_weights():
    """anova(B0, B): Chisq 22.53348, Df 1, p 2.0651e-06; logLik -889.390272887 and -878.123533529."""
    data = sleep()
    fits = []
    for name, formula in (("B0", "Reaction ~ 1 + offset(z) + (Days | Subject)"), ("B", ORACLE["B"]["formula"])):
        design = build_design(formula, data, "w")
        fits.append(ml_fit(name, design, fit_model(design, reml=False)))
    table = anova_table(fits)
    np.testing.assert_allclose(table["logLik"], [-889.390272887, -878.123533529], atol=1e-4)
    assert abs(table["Chisq"].iloc[1] - 22.53348) < 1e-4
    assert abs(table["p_value"].iloc[1] - 2.0651e-06) / 2.0651e-06 < 2e-2


def test_profile_intervals_with_offset_match_lme4():
    """confint(lmer(Reaction ~ Days + offset(z) + (Days | Subject), ss), method = "profile").

    (With prior weights, lme4 1.1-31's profile of the fixed effects is wrong: it reports
    non-monotonic profiles and intervals 0.8 wide for an SE of 6.9, so weights are not compared here.)"""
    lme4 = {
        "sd_(Intercept)|Subject": (14.283565869671, 37.681001706613),
        "cor_Days.(Intercept)|Subject": (-0.480634325236, 0.692496442481),
        "sd_Days|Subject": (3.788399128092, 8.748061942098),
        "sigma": (23.032548203812, 29.027227253083),
        "(Intercept)": (235.680695496164, 263.129514601736),
        "Days": (6.858653269620, 13.075918744895),
    }
    design = build_design("Reaction ~ Days + offset(z) + (Days | Subject)", sleep())
    table = profile_intervals(design, fit_model(design)).set_index("parameter")
    for name, (lower, upper) in lme4.items():
        np.testing.assert_allclose(
            table.loc[name, ["lower_2.5", "upper_97.5"]].astype(float), [lower, upper], rtol=2e-3
        )


def test_simulation_adds_the_offset_and_scales_residuals_by_weights():
    design = design_of("A")
    fit = fit_model(design)
    draws = np.array([simulate_response(design, fit, np.random.default_rng(seed)) for seed in range(400)])
    mean_offset = (draws - design.X @ fit.beta).mean(axis=0)
    assert abs(mean_offset.mean() - design.offset.mean()) < 2.0
    # with the random effects' part removed per subject the residual variance is sigma^2 / w
    within = draws - draws.mean(axis=0)
    heavy, light = design.weights == 3, design.weights == 1
    assert within[:, heavy].var() < within[:, light].var()


def test_offsets_split_wherever_they_stand_and_add_up():
    assert split_offsets(["offset(z)", "x", "offset(log(t + 1))"]) == ("x", ("z", "log(t + 1)"))
    assert split_offsets(["offset(z)"]) == ("1", ("z",))
    assert split_offsets("x*f + offset( log(t) )") == ("x*f", ("log(t)",))
    assert split_offsets(["0", "offset(z)"]) == ("0", ("z",))
    assert split_offsets(["offset(a) * b"]) == ("offset(a) * b", ())  # not one whole offset term
    formula = parse_formula("y ~ offset(a) + x + offset(2 * b^2) + (1 | g)")
    assert formula.fixed == "x" and formula.offsets == ("a", "2 * b^2")
    assert formula.fixed_variables == {"a", "b", "x"}
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 3.0]})
    np.testing.assert_allclose(offset_values(formula.offsets, frame), [3.0, 20.0])


def test_rows_with_a_missing_weight_or_offset_are_dropped_as_in_r():
    data = sleep()
    data.loc[3, "w"] = np.nan
    data.loc[5, "z"] = np.nan
    design = build_design("Reaction ~ Days + offset(z) + (Days | Subject)", data, "w")
    assert design.n_obs == len(data) - 2 and 3 not in design.rows and 5 not in design.rows


@pytest.mark.parametrize(
    "value, column, message",
    [
        (0.0, "w", "weights column 'w' has the value 0.0; weights must be positive"),
        (-1.0, "w", "weights column 'w' has the value -1.0; weights must be positive"),
        (None, "nope", "weights names column(s) ['nope'] not found in data"),
    ],
)
def test_bad_weights_are_refused_naming_the_column(value, column, message):
    data = sleep()
    if value is not None:
        data.loc[7, "w"] = value
    with pytest.raises(DesignError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        build_design("Reaction ~ Days + (Days | Subject)", data, column)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("Reaction ~ Days + offset(log(nope)) + (1 | Subject)", "term 'offset(log(nope))' names column(s) ['nope']"),
        ("Reaction ~ Days + offset(log(Days)) + (1 | Subject)", "offset(log(Days)) is not finite on 18 of"),
        (
            "Reaction ~ Days + offset(log(Days - 5)) + (1 | Subject)",
            "not finite on 108 of the rows used (the first: nan",
        ),
    ],
)
def test_bad_offsets_are_refused_naming_the_term(formula, message):
    """A missing column, log(0) (-inf) and log(-1) (NaN, which R's model frame would drop)."""
    with pytest.raises(DesignError, match=re.escape(message)):
        build_design(formula, sleep())


# --- R's model-frame rules (lme4 1.1-31; R calls in each docstring) ---


@pytest.mark.parametrize(
    "formula, names",
    [
        ("Reaction ~ Reaction + Days + (1 | Subject)", ("Intercept", "Days")),
        ("log(Reaction) ~ Days + log(Reaction) + (1 | Subject)", ("Intercept", "Days")),
        ("Reaction ~ Reaction*Days + (1 | Subject)", ("Intercept", "Days", "Reaction:Days")),
        ("Reaction~Reaction+(1|Subject)", ("Intercept",)),
    ],
)
def test_response_on_the_right_is_dropped_with_lmes_warning(formula, names):
    """lmer(Reaction ~ Reaction + Days + (1 | Subject), ss): fixef (Intercept), Days, and the
    warning "the response appeared on the right-hand side and was dropped";
    lmer(Reaction ~ Reaction*Days + (1 | Subject), ss): (Intercept), Days, Reaction:Days."""
    design = build_design(formula, sleep())
    assert design.fixed_names == names
    assert design.warnings == ("the response appeared on the right-hand side and was dropped",)
    assert build_design("Reaction ~ Days + (1 | Subject)", sleep()).warnings == ()


@pytest.mark.parametrize(
    "formula, column, level",
    [
        ("Reaction ~ Days + one + (1 | Subject)", "one", "x"),
        ("Reaction ~ Days * one + (1 | Subject)", "one", "x"),
        ("Reaction ~ Days + part + (1 | Subject)", "part", "u"),  # the other level's rows lack Reaction
    ],
)
def test_a_fixed_factor_with_one_level_in_the_rows_used_is_refused(formula, column, level):
    """lmer(Reaction ~ Days + one + (1 | Subject), transform(ss, one = factor("x"))): "contrasts can
    be applied only to factors with 2 or more levels"."""
    data = sleep()
    data["one"] = "x"
    data["part"] = np.where(data["Days"] < 5, "u", "v")
    data.loc[data["Days"] >= 5, "Reaction"] = np.nan
    message = f"factor '{column}' of the fixed part has only the level '{level}' in the rows used"
    with pytest.raises(DesignError, match=message):
        build_design(formula, data)


@pytest.mark.parametrize(
    "formula, term",
    [
        ("Reaction ~ Days + (1 | Subject) + (1 | Subject)", r"\(1 \| Subject\)"),
        ("Reaction ~ Days + (Days || Subject) + (0 + Days | Subject)", r"\(0 \+ Days \| Subject\)"),
        ("Reaction ~ Days + (1 + Days | Subject) + (Days + 1 | Subject)", r"\(Days \+ 1 \| Subject\)"),
        ("Reaction ~ Days + (1 | Subject:f) + (1 | f:Subject)", r"\(1 \| f:Subject\)"),
        ("Reaction ~ Days + (Days || Subject) + (1 | Subject)", r"\(1 \| Subject\)"),
    ],
)
def test_the_same_random_term_twice_is_refused(formula, term):
    with pytest.raises(FormulaError, match=f"random term {term} is given twice"):
        parse_formula(formula)


@pytest.mark.parametrize(
    "formula, names",
    [
        ("Reaction ~ Days + f:Days + (1 | Subject)", ("Intercept", "Days", "Days:flo")),
        ("Reaction ~ f:Days + Days + (1 | Subject)", ("Intercept", "Days", "flo:Days")),
        ("Reaction ~ g + f + f:g + (1 | Subject)", ("Intercept", "gb", "gc", "flo", "gb:flo", "gc:flo")),
    ],
)
def test_interaction_names_order_variables_as_r(formula, names):
    """fixef(lmer(Reaction ~ Days + f:Days + (1 | Subject), ss)) names Days:flo, with
    f <- factor(ifelse(Days < 5, "lo", "hi")); f:Days + Days names flo:Days (first appearance)."""
    data = sleep()
    data["f"] = pd.Categorical(np.where(data["Days"] < 5, "lo", "hi"))
    data["g"] = pd.Categorical(np.array(["a", "b", "c"])[data["Days"] % 3])
    design = build_design(formula, data)
    assert design.fixed_names == names
    if names[-1] == "gc:flo":  # columns in R's order too: g varies fastest
        expected = ((data["g"] == "c") & (data["f"] == "lo")).to_numpy(float)
        np.testing.assert_array_equal(design.X[:, -1], expected)


# --- the report: likelihood-ratio tests only between nested models ---


def test_a_step_of_zero_parameters_is_not_a_test():
    """anova(ach_cat_re_3, ach_cat_re_1, ach_cat_re_2) in lme4 prints Df 0 and no p-value for
    ach_cat_re_2 (as many parameters as ach_cat_re_1): the report says "not nested; compare by AICc"."""
    from lmmflow.inference.likelihood_ratio import NOT_NESTED, is_test
    from lmmflow.report.blocks.lrt import likelihood_ratio_test

    fits = [MLFit("small", -10.0, 3, 50), MLFit("big", -8.0, 5, 50), MLFit("other", -8.5, 5, 50)]
    table = anova_table(fits)
    assert [is_test(df) for df in table["Df"]] == [False, True, False]
    assert is_test(2, ["Intercept"], ["Intercept", "x"]) and not is_test(2, ["Intercept", "z"], ["Intercept", "x", "w"])
    table["fit"] = "ML fit"
    table = table.astype({"Df": float})  # as the report reads it from the CSV

    class Results:
        def csv(self, path):
            return table

        def fit(self, model):
            return {"formula": "y ~ x + (1 | g)", "fixed_effects": ["Intercept", "x"]}

    text = likelihood_ratio_test(Results(), "t")
    other = next(line for line in text.splitlines() if line.startswith("| other"))
    big = next(line for line in text.splitlines() if line.startswith("| big"))
    assert other.endswith(f"| – | 0 | {NOT_NESTED} |") and NOT_NESTED not in big


def test_a_focus_group_needs_one_grouping_factor():
    from lmmflow.outputs.predictions import focus_grouping_factor

    assert focus_grouping_factor("f", {"a": "school", "b": "school"}) == "school"
    with pytest.raises(ValueError, match="focus group 'f': model 'b' has crossed grouping factors"):
        focus_grouping_factor("f", {"a": "school", "b": None})
    with pytest.raises(ValueError, match="focus group 'f': model 'b' nests in 'class', model 'a' in 'school'"):
        focus_grouping_factor("f", {"a": "school", "b": "class"})


def test_models_whose_fixed_effects_are_not_nested_are_no_test():
    """lme4's anova(lmer(Reaction ~ Days + (1 | Subject)), lmer(Reaction ~ f + g + (1 | Subject)))
    prints Chisq on 1 Df and a p-value; the models are not nested, so the report gives none."""
    from lmmflow.inference.likelihood_ratio import NOT_NESTED
    from lmmflow.report.blocks.lrt import likelihood_ratio_test

    table = anova_table([MLFit("days", -10.0, 4, 50), MLFit("factors", -9.0, 5, 50)]).astype({"Df": float})
    table["fit"] = "ML fit"
    fixed = {"days": ["Intercept", "Days"], "factors": ["Intercept", "flo", "gb"]}

    class Results:
        def csv(self, path):
            return table

        def fit(self, model):
            return {"formula": "y", "fixed_effects": fixed[model]}

    assert f"| 1 | {NOT_NESTED} |" in likelihood_ratio_test(Results(), "t")


@pytest.mark.parametrize("formula", ["y ~ offset(z) - 1 + (1 | g)", "y ~ x:offset(z) + (1 | g)"])
def test_an_offset_inside_another_term_is_refused(formula):
    with pytest.raises(FormulaError, match=r"offset\(...\) must be a term of its own in the fixed part"):
        parse_formula(formula)


def test_a_column_named_offset_is_a_column():
    assert parse_formula("y ~ offset + (1 | g)").fixed == "offset"


def test_interaction_order_with_backquoted_and_transformed_variables():
    """R: names(fixef(lmer(Reaction ~ `my days` + f:`my days` + f:log(Days + 1) + (1 | Subject), ss)))
    is (Intercept), `my days`, `my days`:flo, fhi:log(Days + 1), flo:log(Days + 1)."""
    data = sleep()
    data["my days"] = data["Days"]
    data["f"] = pd.Categorical(np.where(data["Days"] < 5, "lo", "hi"))
    design = build_design("Reaction ~ `my days` + f:`my days` + f:log(Days + 1) + (1 | Subject)", data)
    assert design.fixed_names == (
        "Intercept",
        "`my days`",
        "`my days`:flo",
        "fhi:log(Days + 1)",
        "flo:log(Days + 1)",
    )
