"""Profile-likelihood intervals against lme4's confint."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lmmflow.data.simulate import simulate_exercise
from lmmflow.engine.groups_last import GroupsLastCriterion, fit_groups_last
from lmmflow.engine.optimizer import minimize_criterion
from lmmflow.engine.parameters import parameter_names
from lmmflow.inference.profile_intervals import MLProfile, profile_intervals
from lmmflow.model.design import build_design

SLEEP_MODELS = ["sleep_slopes", "sleep_uncorrelated"]
SD_RELATIVE = 0.02
FIXED_IN_SE = 0.05
COR_ABSOLUTE = 0.02


@pytest.fixture(scope="module")
def sleep_fits(chapter_fit):
    return {name: chapter_fit(name, "fit_groups_last") for name in SLEEP_MODELS}


@pytest.fixture(scope="module")
def sleep_profiles(sleep_fits):
    return {name: profile_intervals(design, fit) for name, (design, fit) in sleep_fits.items()}


@pytest.mark.parametrize("model", SLEEP_MODELS)
def test_profile_intervals_match_lme4(model, sleep_profiles, sleep_fits, lme4_confint):
    ours = sleep_profiles[model].set_index("parameter")
    theirs = pd.DataFrame(lme4_confint[model]["confint"]).set_index("parameter")
    assert list(ours.index) == list(theirs.index)
    design, fit = sleep_fits[model]
    se = dict(zip(parameter_names(design)[-2:], np.sqrt(np.diag(fit.beta_cov))))
    for name, row in theirs.iterrows():
        for bound in ("lower_2.5", "upper_97.5"):
            got, want = ours.loc[name, bound], row[bound]
            if name.startswith("sd_") or name == "sigma":
                assert got == pytest.approx(want, rel=SD_RELATIVE), (name, bound)
            elif name.startswith("cor_"):
                assert abs(got - want) <= COR_ABSOLUTE, (name, bound)
            else:
                assert abs(got - want) <= FIXED_IN_SE * se[name], (name, bound)
    assert (ours["method"] == "profile").all()
    assert ((ours["lower_2.5"] < ours["profile_center"]) & (ours["profile_center"] < ours["upper_97.5"])).all()


def test_profile_is_centred_at_the_ml_fit(sleep_fits, lme4):
    """lme4's profile starts from refitML: its zeta = 0 point is the ML estimate, not REML's."""
    table = profile_intervals(*sleep_fits["sleep_slopes"], which=["sigma", "Days"]).set_index("parameter")
    assert table.loc["sigma", "profile_center"] == pytest.approx(25.5918151035, rel=1e-6)  # sigma(refitML(fit))
    reml_sd = lme4["sleep_slopes"]["variance_components"][-1]["sd"]
    assert table.loc["sigma", "estimate"] == pytest.approx(reml_sd, rel=1e-6)


def test_fixed_effect_profile_equals_the_offset_refit(sleep_fits):
    """Our closed form for the fixed-effect profile equals lme4's definition: the ML fit of the
    model with the column moved into an offset (here: subtracted from y), optimized over theta."""
    design, _ = sleep_fits["sleep_slopes"]
    profile = MLProfile(design)
    value = profile.beta_hat[1] + 2.0
    reduced = replace(
        design, y=design.y - value * design.X[:, 1], X=design.X[:, :1], fixed_names=design.fixed_names[:1]
    )
    model = GroupsLastCriterion(reduced, reml=False)
    theta, _ = minimize_criterion(model, profile.theta_hat)
    zeta = profile.zeta_function(len(profile.vc_hat) + 1)(value)
    assert zeta == pytest.approx(np.sqrt(model.deviance(theta) - profile.base), rel=1e-6)


def test_profile_lower_bound_stops_at_zero():
    """A slope SD whose profile never reaches zeta = -1.96 gets the bound 0, as lme4 reports
    (lme4 1.1-31 on this data set: [0, 0.15450221])."""
    design = build_design("y ~ x + (1 | groups) + (0 + x | groups)", simulate_exercise(sd_slope=0.02, rng=5))
    table = profile_intervals(design, fit_groups_last(design), which=["sd_x|groups"])
    assert table["lower_2.5"].iloc[0] == 0.0
    assert table["upper_97.5"].iloc[0] == pytest.approx(0.15450221, rel=1e-3)


def test_an_undefined_correlation_is_centred_at_zero():
    """Here the ML (and REML) intercept SD is 0, so its correlation is undefined (NaN, as lme4
    reports it); the profile still needs a number to start from and takes 0."""
    data = simulate_exercise(sd_intercept=0.0, sd_slope=0.5, sd_residual=1.0, rng=5)
    design = build_design("y ~ x + (1 + x | groups)", data)
    profile = MLProfile(design)
    assert profile.vc_hat[0] == 0.0 and profile.vc_hat[1] == 0.0
    assert np.isfinite(profile.optimum).all()
