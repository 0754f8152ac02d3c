"""lmmflow.glmer against lme4 1.1-31 (../shared/reference/glmm; the R calls are in
tests/engine/test_glmm_reference.py): the same tables as the workflow's, predictions, anova."""

import numpy as np
import pytest
from engine.glmm_reference import assert_tables_match, model_call, model_data, reference_anova
from inference.lme4_glmm_profiles import FIXED_IN_SE, SD_RELATIVE
from inference.lme4_glmm_profiles import LME4 as LME4_PROFILES

import lmmflow
from lmmflow.model.new_data import NewDataError


@pytest.fixture(scope="module")
def speed():
    key = "speed_dating"
    data = model_data(key)
    return data, lmmflow.glmer(model_call(key)["formula"], data, family="binomial")


@pytest.fixture(scope="module")
def cbpp():
    return model_data("cbpp_herd")


def test_speed_dating_tables_agree_with_lme4(speed):
    _, m = speed
    assert_tables_match("speed_dating", m.fixed_effects, m.variance_components, m.random_effects, m.loglik)
    assert m.family == "binomial" and m.link == "logit" and m.nAGQ == 1
    assert m.aic == pytest.approx(-2 * m.loglik + 14) and m.deviance == pytest.approx(-2 * m.loglik)
    text = m.summary()
    assert "Family: binomial  ( logit )" in text and "z value" in text and "Pr(>|z|)" in text


def test_predictions_on_both_scales(speed):
    data, m = speed
    fitted = m.predict(type="response")
    assert np.allclose(m.predict(data.loc[fitted.index[:50]], type="response"), fitted.iloc[:50], atol=1e-12)
    eta = m.predict(data.loc[fitted.index[:50]])
    assert np.allclose(1 / (1 + np.exp(-eta)), fitted.iloc[:50], atol=1e-12)
    population = m.predict(data.loc[fitted.index[:5]], random_effects=False)
    X = m.design.X[:5]
    assert np.allclose(population, X @ m.fit.beta)
    new = data.loc[fitted.index[:2]].assign(iid=["99999", "99999"])
    with pytest.raises(NewDataError, match="iid"):
        m.predict(new)
    assert np.allclose(m.predict(new, allow_new_levels=True), X[:2] @ m.fit.beta)


def test_poisson_offsets_enter_predictions(cbpp):
    m = lmmflow.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson")
    assert np.allclose(m.predict(cbpp, type="response"), m.fit.mu, atol=1e-10)
    assert np.allclose(m.predict(cbpp.assign(size=cbpp["size"] * 2), type="response"), 2 * m.fit.mu)


def test_a_proportion_with_weights_is_the_cbind_model(cbpp):
    m = lmmflow.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    proportion = cbpp.assign(p=cbpp["incidence"] / cbpp["size"])
    w = lmmflow.glmer("p ~ period + (1 | herd)", proportion, family="binomial", weights="size")
    assert w.loglik == pytest.approx(m.loglik, abs=1e-8)
    assert np.allclose(w.fit.beta, m.fit.beta, atol=1e-6)


def test_anova_of_glmms_is_lme4s(cbpp):
    rows = reference_anova()["cbpp_null_vs_cbpp_herd"]["rows"]
    fits = [lmmflow.glmer(model_call(row["model"])["formula"], cbpp, family="binomial") for row in rows]
    table = lmmflow.anova(fits[1], fits[0], names=[rows[1]["model"], rows[0]["model"]])
    assert table["model"].tolist() == [row["model"] for row in rows]
    assert table["Chisq"].iloc[1] == pytest.approx(rows[1]["Chisq"], abs=2e-3)
    assert table["Df"].iloc[1] == rows[1]["Df"]
    assert table["logLik"].to_numpy() == pytest.approx([row["logLik"] for row in rows], abs=1e-3)


def test_confint_is_lme4s_profile_by_default(cbpp):
    """confint(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial))"""
    m = lmmflow.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    table = m.confint()
    assert list(table["parameter"]) == ["sd_(Intercept)|herd", "(Intercept)", "period2", "period3", "period4"]
    assert table["method"].eq("profile").all()
    lower, upper = LME4_PROFILES["cbpp_herd"]
    assert table.loc[0, ["lower_2.5", "upper_97.5"]].tolist() == pytest.approx([lower[0], upper[0]], rel=SD_RELATIVE)
    tolerance = FIXED_IN_SE * m.fit.se
    assert np.all(np.abs(table["lower_2.5"].to_numpy()[1:] - lower[1:]) <= tolerance)
    assert np.all(np.abs(table["upper_97.5"].to_numpy()[1:] - upper[1:]) <= tolerance)


def test_wald_intervals_are_lme4s_with_nan_for_variances(cbpp):
    m = lmmflow.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson")
    table = m.confint("Wald", level=0.9)
    assert list(table.columns) == ["parameter", "estimate", "lower_5", "upper_95", "method"]
    assert list(table["parameter"]) == list(m.confint("profile", level=0.9)["parameter"])
    assert table.loc[0, "estimate"] == pytest.approx(m.variance_components["sd"].iloc[0], rel=1e-12)
    assert table.loc[0, ["lower_5", "upper_95"]].isna().all()
    half_width = 1.6448536269514722 * m.fit.se
    assert np.allclose(table["lower_5"].iloc[1:], m.fit.beta - half_width, rtol=0, atol=1e-12)
    assert np.allclose(table["upper_95"].iloc[1:], m.fit.beta + half_width, rtol=0, atol=1e-12)
    fixed = m.fixed_effects  # the workflow's fixed_effects.csv carries the 95% Wald interval
    wald95 = m.confint("Wald")
    assert np.allclose(wald95["lower_2.5"].iloc[1:], fixed["lower_2.5"], rtol=0, atol=1e-12)


def test_confint_refuses_unknown_methods_and_levels(cbpp):
    m = lmmflow.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    with pytest.raises(ValueError, match="method 'boot'.*profile"):
        m.confint("boot")
    with pytest.raises(ValueError, match="level 95"):
        m.confint(level=95)
