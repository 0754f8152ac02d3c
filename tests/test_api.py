"""The public API (lmmflow.lmer, lmmflow.anova, FittedModel) against lme4.

lme4's predictions below were computed with lme4 1.1-31 (R 4.2.2, Debian's r-cran-lme4):

    library(lme4)
    sleep <- read.csv("shared/data/sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
    m <- lmer(Reaction ~ Days + (Days | Subject), sleep)   # logLik -871.814135979976
    nd <- data.frame(Subject = c("308", "308", "308", "999", "999", "999"), Days = c(0, 2.5, 9, 0, 5, 9))
    predict(m, nd, allow.new.levels = TRUE); predict(m, nd, re.form = NA)
    predict(m, nd)   # Error: new levels detected in newdata: 999
    confint(m, method = "Wald")

    e <- new.env(); load("shared/data/pupils.RData", envir = e); p <- e$pupils
    p$ses <- factor(ifelse(p$ses %in% c("lowest", "2", "3"), "low",
                           ifelse(p$ses %in% c("4", "5"), "mid", "high")), levels = c("low", "mid", "high"))
    p$primary_school_id <- factor(p$primary_school_id); p$secondary_school_id <- factor(p$secondary_school_id)
    pc <- lmer(achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id), p)
    pnd <- data.frame(sex = c("male", "female", "female", "male"), ses = c("low", "high", "mid", "high"),
                      primary_school_id = c("1", "10", "new", "3"), secondary_school_id = c("1", "new2", "5", "30"))
    predict(pc, pnd, allow.new.levels = TRUE); predict(pc, pnd, re.form = NA)

Tolerances: logLik 1e-6 absolute, predictions 1e-6 relative (the issue's acceptance); tables with
tests/lme4_agreement.py's; anova tables with tests/inference/test_likelihood_ratio.py's; Wald
intervals 1e-3 relative (the SEs' tolerance).
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import MIRROR, ROOT
from lme4_agreement import (
    assert_correlations,
    assert_fixed_effects,
    assert_random_coefficients,
    assert_random_effects,
    assert_variance_components,
)

import lmmflow
from lmmflow.inference.profile_intervals import profile_intervals
from lmmflow.model.new_data import NewDataError
from lmmflow.outputs import tables

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"
SLEEP_LOGLIK = -871.814135979976
SLEEP_NEWDATA = pd.DataFrame({"Subject": ["308", "308", "308", "999", "999", "999"], "Days": [0, 2.5, 9, 0, 5, 9]})
SLEEP_CONDITIONAL = [
    253.663655798386,
    302.829310111291,
    430.660011324843,
    251.405104848485,
    303.741534646465,
    345.610678484849,
]
SLEEP_POPULATION = [
    251.405104848485,
    277.573319747475,
    345.610678484849,
    251.405104848485,
    303.741534646465,
    345.610678484849,
]
SLEEP_WALD = {"(Intercept)": (238.02914111736226, 264.78106857960768), "Days": (7.4375939298652698, 13.496977989326705)}

PUPILS_CROSSED = "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"
PUPILS_NEWDATA = pd.DataFrame(
    {
        "sex": ["male", "female", "female", "male"],
        "ses": ["low", "high", "mid", "high"],
        "primary_school_id": [1, 10, "new", 3],
        "secondary_school_id": ["1", "new2", "5", "30"],
    }
)
PUPILS_CONDITIONAL = [5.27259511612338, 6.98582444819579, 6.59716284893121, 7.09083246733105]
PUPILS_POPULATION = [6.01469858404286, 6.80097822444227, 6.51561219836274, 6.54138193481688]


@pytest.fixture(scope="module")
def sleep_raw():
    """sleepstudy.csv as read: Subject is an integer column, which lmer makes a factor."""
    return pd.read_csv(MIRROR / "sleepstudy.csv")


@pytest.fixture(scope="module")
def sleep_model(sleep_raw):
    return lmmflow.lmer(SLEEP_FORMULA, sleep_raw)


@pytest.fixture(scope="module")
def crossed_model(pupils):
    return lmmflow.lmer(PUPILS_CROSSED, pupils)


def test_in_a_fresh_process_lmer_reaches_lme4s_loglik_and_import_lmmflow_is_light():
    code = (
        "import sys, lmmflow; light = 'pandas' not in sys.modules and 'numpy' not in sys.modules; "
        "import pandas as pd; "
        f"m = lmmflow.lmer({SLEEP_FORMULA!r}, pd.read_csv({str(MIRROR / 'sleepstudy.csv')!r})); "
        "print(light, repr(m.loglik))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    light, loglik = out.stdout.split()
    assert light == "True"
    assert abs(float(loglik) - SLEEP_LOGLIK) < 1e-6


def test_predictions_match_lme4(sleep_model):
    conditional = sleep_model.predict(SLEEP_NEWDATA, allow_new_levels=True)
    np.testing.assert_allclose(conditional, SLEEP_CONDITIONAL, rtol=1e-6)
    np.testing.assert_allclose(sleep_model.predict(SLEEP_NEWDATA, random_effects=False), SLEEP_POPULATION, rtol=1e-6)
    assert list(conditional.index) == list(SLEEP_NEWDATA.index)


def test_an_unseen_level_is_refused_naming_the_factor_and_the_level(sleep_model):
    with pytest.raises(NewDataError, match=r"grouping factor 'Subject': \['999'\].*allow_new_levels=True"):
        sleep_model.predict(SLEEP_NEWDATA)
    # population-level predictions need no random effects, so no level is new to them
    assert len(sleep_model.predict(SLEEP_NEWDATA, random_effects=False)) == 6


def test_levels_are_matched_by_their_r_labels(sleep_model):
    """308, 308.0 and "308" are one level, as R's factor labels."""
    as_numbers = SLEEP_NEWDATA[:3].assign(Subject=[308, 308.0, 308])
    np.testing.assert_allclose(sleep_model.predict(as_numbers), SLEEP_CONDITIONAL[:3], rtol=1e-6)


def test_predictions_on_the_fitted_rows_are_the_fitted_values(sleep_model, sleep_raw):
    fitted = sleep_model.predict()
    np.testing.assert_array_equal(fitted, sleep_model.predict(sleep_raw))
    written = tables_of(sleep_model, "fitted")  # the workflow's fitted.csv
    np.testing.assert_array_equal(fitted, written["fitted"])


def tables_of(model, name):
    from lmmflow.fit import MODEL_TABLES

    return MODEL_TABLES[name](model.design, model.fit)


def test_tables_match_lme4_and_are_the_workflows(sleep_model, lme4):
    oracle = lme4["sleep_slopes"]
    assert_fixed_effects(sleep_model.fixed_effects, oracle)
    assert_variance_components(sleep_model.variance_components, oracle)
    assert_correlations(sleep_model.re_correlations, oracle)
    assert_random_effects(sleep_model.random_effects, oracle)
    assert_random_coefficients(sleep_model.random_coefficients, oracle)
    for name in ("fixed_effects", "variance_components", "random_effects", "random_coefficients"):
        pd.testing.assert_frame_equal(getattr(sleep_model, name), tables_of(sleep_model, name))
    assert abs(sleep_model.aic - oracle["AIC"]) < 1e-4 and abs(sleep_model.aicc - oracle["AICc"]) < 1e-4
    assert sleep_model.bic == pytest.approx(sleep_model.aic + (np.log(180) - 2) * 6)


def test_summary_prints_the_model(sleep_model):
    text = sleep_model.summary()
    assert repr(text) == str(text)  # shows as text at a prompt too
    for expected in (
        "Linear mixed model fit by REML",
        f"Formula: {SLEEP_FORMULA}",
        "REML criterion at convergence: 1743.6283",
        "Subject  Intercept",
        "Number of obs: 180, groups: Subject, 18",
        "Satterthwaite",
        "Pr(>|t|)",
    ):
        assert expected in text, expected
    fixed = sleep_model.fixed_effects
    assert f"{fixed['value'][1]:.6g}" in text and f"{fixed['df'][1]:.2f}" in text
    assert "logLik -871.81" in repr(sleep_model) and SLEEP_FORMULA in repr(sleep_model)


def test_a_crossed_model_with_factor_fixed_effects_matches_lme4(crossed_model, lme4_extensions):
    oracle = lme4_extensions["pupils_crossed"]
    assert abs(crossed_model.loglik - oracle["logLik"]) < 1e-4
    assert crossed_model.fit.engine == "blocked"
    assert_fixed_effects(crossed_model.fixed_effects, oracle)  # with lmerTest's df and p
    assert_variance_components(crossed_model.variance_components, oracle)
    assert_random_effects(crossed_model.random_effects, oracle)
    assert "groups: primary_school_id, 50; secondary_school_id, 30" in crossed_model.summary()


def test_predictions_with_factor_columns_match_lme4(crossed_model):
    predicted = crossed_model.predict(PUPILS_NEWDATA, allow_new_levels=True)
    np.testing.assert_allclose(predicted, PUPILS_CONDITIONAL, rtol=1e-6)
    population = crossed_model.predict(PUPILS_NEWDATA, random_effects=False)
    np.testing.assert_allclose(population, PUPILS_POPULATION, rtol=1e-6)
    with pytest.raises(NewDataError, match=r"'primary_school_id': \['new'\]; grouping factor 'secondary_school_id'"):
        crossed_model.predict(PUPILS_NEWDATA)


def test_an_unseen_fixed_effect_level_is_refused(crossed_model):
    with pytest.raises(NewDataError, match=r"factor 'ses' has level\(s\) \['top'\] not seen in fitting"):
        crossed_model.predict(PUPILS_NEWDATA.assign(ses=["low", "top", "mid", "high"]), random_effects=False)
    with pytest.raises(NewDataError, match=r"column\(s\) \['sex'\] of the model not found"):
        crossed_model.predict(PUPILS_NEWDATA.drop(columns="sex"))


def test_text_columns_become_factors_as_in_lme4(pupils, crossed_model):
    """The same data with its factors as plain text: sorted levels, so ses's reference is "high"."""
    as_text = pupils.astype({"sex": str, "ses": str, "primary_school_id": str, "secondary_school_id": str})
    model = lmmflow.lmer(PUPILS_CROSSED, as_text)
    assert list(model.fixed_effects["term"]) == ["Intercept", "sexmale", "seslow", "sesmid"]
    assert model.loglik == pytest.approx(crossed_model.loglik, abs=1e-6)


@pytest.mark.parametrize(
    ("key", "models"),
    [
        (
            "gpa_occasion_anova",
            {
                "gpa_null": "gpa ~ 1 + (1 + occasion | student)",
                "gpa_mixed": "gpa ~ occasion + (1 + occasion | student)",
            },
        ),
        (
            "ach_cat_re_anova",
            {
                "ach_cat_re_3": "achievement ~ ses + (1 | primary_school_id) + (1 | primary_school_id:ses)",
                "ach_cat_re_1": "achievement ~ ses + (1 + ses | primary_school_id)",
                "ach_cat_re_2": "achievement ~ ses + (0 + ses | primary_school_id)",
            },
        ),
    ],
)
def test_anova_matches_lme4(key, models, request, lme4_extensions):
    data = request.getfixturevalue(key.split("_")[0] if key.startswith("gpa") else "pupils")
    fitted = [lmmflow.lmer(formula, data) for formula in models.values()]
    table = lmmflow.anova(*fitted, names=list(models))
    lme4 = pd.DataFrame(lme4_extensions[key])
    assert list(table["model"]) == list(lme4["model"]) and list(table["npar"]) == list(lme4["npar"])
    for column in ["logLik", "deviance", "AIC", "BIC"]:
        np.testing.assert_allclose(table[column], lme4[column], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["Chisq"], lme4["Chisq"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(table["p_value"], lme4.get("p_value", np.nan), rtol=1e-2, atol=1e-12)
    assert table.attrs["note"].endswith("refitted with ML (instead of REML)")


def test_anova_of_ml_fits_does_not_refit(gpa):
    null, full = (
        lmmflow.lmer(f, gpa, reml=False)
        for f in ("gpa ~ 1 + (1 + occasion | student)", "gpa ~ occasion + (1 + occasion | student)")
    )
    table = lmmflow.anova(null, full)
    assert list(table["model"]) == ["model1", "model2"] and table.attrs["note"] == ""
    assert table["logLik"].tolist() == [null.loglik, full.loglik]


def test_wald_intervals_match_lme4(sleep_model):
    table = sleep_model.confint("Wald").set_index("parameter")
    assert table.loc[["sd_(Intercept)|Subject", "sigma"], ["lower_2.5", "upper_97.5"]].isna().all().all()
    for name, bounds in SLEEP_WALD.items():
        np.testing.assert_allclose(table.loc[name, ["lower_2.5", "upper_97.5"]], bounds, rtol=1e-3)


def test_profile_intervals_are_the_workflows_and_match_lme4(sleep_model, lme4_confint):
    table = sleep_model.confint()
    pd.testing.assert_frame_equal(table, profile_intervals(sleep_model.design, sleep_model.fit))
    lme4 = pd.DataFrame(lme4_confint["sleep_slopes"]["confint"])
    assert list(table["parameter"]) == list(lme4["parameter"])
    sd = table["parameter"].str.startswith("sd_") | (table["parameter"] == "sigma")
    np.testing.assert_allclose(
        table.loc[sd, "lower_2.5"], lme4.loc[sd, "lower_2.5"], rtol=0.02
    )  # profile tests' tolerance


def test_bootstrap_intervals_are_seeded(sleep_model):
    first = sleep_model.confint("boot", nsim=8, seed=1)
    pd.testing.assert_frame_equal(first, sleep_model.confint("boot", nsim=8, seed=1))
    assert list(first["parameter"]) == list(sleep_model.confint("Wald")["parameter"])
    assert (first["n_replicates"] == 8).all() and (first["lower_2.5"] <= first["upper_97.5"]).all()


def test_bad_calls_are_refused_clearly(sleep_model, sleep_raw):
    with pytest.raises(NotImplementedError, match="weights"):
        lmmflow.lmer(SLEEP_FORMULA, sleep_raw, weights=np.ones(180))
    with pytest.raises(ValueError, match="method 'bogus'"):
        sleep_model.confint("bogus")
    with pytest.raises(ValueError, match="not found in data"):
        lmmflow.lmer("Reaction ~ Nights + (1 | Subject)", sleep_raw)
    with pytest.raises(AttributeError, match="no attribute 'glmr'"):
        lmmflow.glmr  # noqa: B018


def test_rows_with_missing_values_are_dropped_and_predictions_keep_the_data_index(sleep_raw):
    data = sleep_raw.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.index = data.index + 1000
    model = lmmflow.lmer(SLEEP_FORMULA, data)
    assert model.n_obs == 178
    assert list(model.predict().index[:2]) == [1001, 1002]
    assert tables.fit_summary(model.design, model.fit, dataset="", formula=SLEEP_FORMULA)["n_dropped"] == 2


@pytest.mark.parametrize(
    ("dataset", "formula"),
    [
        ("pupils", "achievement ~ ses + (0 + ses | primary_school_id)"),
        ("pupils", "achievement ~ ses + (1 | primary_school_id) + (1 | primary_school_id:ses)"),
        ("sleepstudy", "Reaction ~ scale(Days) + I(Days^2) + (scale(Days) | Subject)"),
    ],
)
def test_predictions_on_the_data_reproduce_the_fitted_values(dataset, formula, request):
    """Factors in random terms, interaction groupings, and scale() learnt on every row (rows with a
    missing response dropped after, as R's model.frame): newdata goes through the fit's specs."""
    data = request.getfixturevalue(dataset).copy()
    response = formula.split(" ~ ")[0]
    data.loc[[3, 7], response] = np.nan
    model = lmmflow.lmer(formula, data)
    assert model.n_obs == len(data) - 2
    used = data.dropna(subset=[response])
    np.testing.assert_allclose(model.predict(used), model.predict(), rtol=1e-12)
    np.testing.assert_allclose(model.predict(used), tables_of(model, "fitted")["fitted"], rtol=1e-12)
