"""Odds ratios and the random intercept on the probability scale (lmmflow.outputs.glmm_effects)."""

import numpy as np
import pandas as pd
import pytest

from lmmflow.outputs.glmm_effects import (
    intercept_sd_interval,
    odds_ratios,
    person_spread,
    probability_curves,
    strongest_covariate,
)

FIXED = pd.DataFrame(
    {
        "term": ["Intercept", "sexMale", "x"],
        "value": [-0.5, 0.2, 0.8],
        "lower_2.5": [-0.7, -0.1, 0.6],
        "upper_97.5": [-0.3, 0.5, 1.0],
        "z": [-5.0, 1.0, 8.0],
        "p_value": [1e-6, 0.3, 1e-15],
    }
)
COMPONENTS = pd.DataFrame({"group": ["id"], "effect": ["Intercept"], "variance": [1.0], "sd": [1.0], "var_prop": [1.0]})


def test_odds_ratios_exponentiate_estimates_and_interval_ends():
    table = odds_ratios(FIXED)
    assert np.allclose(table["odds_ratio"], np.exp(FIXED["value"]))
    assert np.allclose(table["upper_97.5"], np.exp(FIXED["upper_97.5"]))


def test_person_spread_on_the_probability_scale():
    spread = person_spread(FIXED, COMPONENTS)
    expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert spread["group"] == "id" and spread["sd"] == 1.0
    assert spread["p_typical"] == pytest.approx(expit(-0.5))
    assert (spread["p_minus_1sd"], spread["p_plus_1sd"]) == pytest.approx((expit(-1.5), expit(0.5)))
    # Merlo et al. (2006): MOR = exp(sqrt(2 sigma^2) * 0.6745) = 2.5957 at sigma^2 = 1
    assert spread["median_odds_ratio"] == pytest.approx(2.5957, abs=1e-4)


def test_curves_and_the_strongest_numeric_covariate():
    data = pd.DataFrame({"x": [0.0, 1.0], "sex": ["Female", "Male"]})
    assert strongest_covariate(FIXED, data) == "x"
    curves = probability_curves(FIXED, 1.0, "x", np.array([0.0, 1.0]))
    assert curves["+0 SD"].tolist() == pytest.approx([1 / (1 + np.exp(0.5)), 1 / (1 + np.exp(-0.3))])
    assert (curves["-2 SD"] < curves["+0 SD"]).all() and (curves["+0 SD"] < curves["+2 SD"]).all()


# profile.csv of the same fit: lme4's names, estimates equal to FIXED's values, intervals unlike
# the Wald ones (asymmetric), so a table built from the wrong file cannot pass.
PROFILE = pd.DataFrame(
    {
        "parameter": ["sd_(Intercept)|id", "(Intercept)", "sexMale", "x"],
        "estimate": [1.0, -0.5, 0.2, 0.8],
        "lower_2.5": [0.8, -0.75, -0.08, 0.62],
        "upper_97.5": [1.3, -0.28, 0.55, 1.04],
        "method": ["profile"] * 4,
        "profile_center": [1.0, -0.5, 0.2, 0.8],
    }
)


def test_odds_ratios_take_the_profile_bounds_when_given_by_lme4_name():
    table = odds_ratios(FIXED, PROFILE)
    assert table["term"].tolist() == ["Intercept", "sexMale", "x"]
    assert np.allclose(table["odds_ratio"], np.exp(FIXED["value"]))
    assert np.allclose(table["lower_2.5"], np.exp([-0.75, -0.08, 0.62]))
    assert np.allclose(table["upper_97.5"], np.exp([-0.28, 0.55, 1.04]))
    assert table["p_value"].tolist() == FIXED["p_value"].tolist()  # the Wald z tests still
    assert not np.allclose(table["lower_2.5"], odds_ratios(FIXED)["lower_2.5"])


def test_profile_rows_are_matched_by_name_not_position():
    shuffled = PROFILE.iloc[[3, 0, 2, 1]]
    assert odds_ratios(FIXED, shuffled).equals(odds_ratios(FIXED, PROFILE))


def test_a_profile_without_a_term_or_of_another_fit_is_refused():
    with pytest.raises(ValueError, match=r"no interval for sexMale"):
        odds_ratios(FIXED, PROFILE[PROFILE["parameter"] != "sexMale"])
    with pytest.raises(ValueError, match="not the same fit"):
        odds_ratios(FIXED, PROFILE.assign(estimate=PROFILE["estimate"] + 0.01))


def test_the_random_intercept_sd_interval_is_read_by_its_group():
    assert intercept_sd_interval(PROFILE, "id") == (0.8, 1.3)
    with pytest.raises(ValueError, match=r"no interval for sd_\(Intercept\)\|school"):
        intercept_sd_interval(PROFILE, "school")
