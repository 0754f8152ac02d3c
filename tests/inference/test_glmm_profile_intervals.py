"""GLMM profile-likelihood intervals against lme4's ``confint(glmer_fit, method = "profile")``
(``inference.lme4_glmm_profiles``: the R calls, values and tolerances), and the rule they follow
checked without lme4: at each end of an interval the deviance, minimized over every other
parameter, is 1.96^2 above its optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine.glmm_reference import model_data, reference_models
from inference.lme4_glmm_profiles import COR_ABSOLUTE, FIXED_IN_SE, LME4, SD_RELATIVE, Z, model_fit
from scipy import optimize

from lmmflow.engine.glmm import glmer_with_design
from lmmflow.inference.glmm_profile_intervals import LaplaceProfile, glmm_profile_intervals


@pytest.fixture(scope="module")
def profiles():
    cache = {}

    def profile_of(key):
        if key not in cache:
            gd, fit = model_fit(key)
            cache[key] = (gd, fit, glmm_profile_intervals(gd, fit.theta, fit.beta, fit.nAGQ))
        return cache[key]

    return profile_of


@pytest.mark.parametrize("key", sorted(LME4))
def test_profile_intervals_match_lme4(key, profiles):
    gd, fit, table = profiles(key)
    lower, upper = LME4[key]
    n_theta = len(fit.theta)
    assert list(table["parameter"][n_theta:]) == list(fit.fixed_names)
    se = np.concatenate([np.full(n_theta, np.nan), fit.se])
    for i, row in table.iterrows():
        for got, want in ((row["lower_2.5"], lower[i]), (row["upper_97.5"], upper[i])):
            if row["parameter"].startswith("cor_"):
                assert abs(got - want) <= COR_ABSOLUTE, (row["parameter"], got, want)
            elif i < n_theta:
                assert got == pytest.approx(want, rel=SD_RELATIVE), (row["parameter"], got, want)
            else:
                assert abs(got - want) <= FIXED_IN_SE * se[i], (row["parameter"], got, want)
    assert (table["method"] == "profile").all()
    profile = LaplaceProfile(gd, fit.theta, fit.beta, fit.nAGQ)
    assert np.allclose(table["estimate"], profile.optimum)
    for index in range(n_theta):  # the SDs' and correlations' bounds are roots, or the parameter's limit
        zeta = profile.zeta_function(index)
        for bound, sign in zip(table.loc[index, ["lower_2.5", "upper_97.5"]], (-1, 1)):
            with np.errstate(all="ignore"):  # the inner fits try infeasible points
                at_bound = zeta(bound)
            if bound in (-1.0, 0.0, 1.0):  # a limit: reached before zeta gets to -+1.96
                assert abs(at_bound) <= Z, (table.loc[index, "parameter"], bound, at_bound)
            else:
                assert at_bound == pytest.approx(sign * Z, abs=1e-6), (table.loc[index, "parameter"], bound)
    assert (table["lower_2.5"] < table["estimate"]).all() and (table["estimate"] < table["upper_97.5"]).all()


def test_a_fixed_effect_bound_is_where_the_offset_refit_is_z_squared_worse(profiles):
    """lme4's definition, by an independent fit: the term moved into an offset at the bound."""
    gd, fit, table = profiles("contra_district")
    model = reference_models()["contra_district"]
    data = model_data("contra_district")
    for bound in table.set_index("parameter").loc["age", ["lower_2.5", "upper_97.5"]]:
        formula = model["formula"].replace("age + I(age^2)", f"I(age^2) + offset({bound!r} * age)")
        _, refit = glmer_with_design(formula, data, family="binomial", verify=False)
        assert -2 * (refit.logLik - fit.logLik) == pytest.approx(Z**2, abs=1e-5)


def test_an_sd_bound_is_where_the_deviance_is_z_squared_worse(profiles):
    """theta held at the bound, beta free, minimized here by BFGS on the deviance alone."""
    gd, fit, table = profiles("cbpp_pois_offset")
    profile = LaplaceProfile(gd, fit.theta, fit.beta)
    for bound in table.loc[0, ["lower_2.5", "upper_97.5"]]:

        def deviance(beta, sd=bound):
            return profile.problem.deviance(np.concatenate([[sd], beta]))

        result = optimize.minimize(deviance, fit.beta, method="BFGS")
        assert result.fun - profile.base == pytest.approx(Z**2, abs=1e-5)


def test_which_and_level():
    gd, fit = model_fit("cbpp_herd")
    table = glmm_profile_intervals(gd, fit.theta, fit.beta, which=["period2"], level=0.5)
    assert list(table["parameter"]) == ["period2"]
    half = 0.6744897501960817 * fit.se[1]  # a 50% interval is about -+0.674 SE around the estimate
    assert list(table.columns[2:4]) == ["lower_25", "upper_75"]  # named for the level's percentiles
    assert table.loc[0, "upper_75"] - table.loc[0, "lower_25"] == pytest.approx(2 * half, rel=0.05)
    with pytest.raises(ValueError, match="unknown parameter"):
        glmm_profile_intervals(gd, fit.theta, fit.beta, which=["sigma"])


def test_a_vector_valued_term_profiles_sds_and_correlations():
    """(1 + x | g): SDs at or above 0, the correlation within [-1, 1], each bound 1.96^2 above."""
    rng = np.random.default_rng(7)
    groups, per = 40, 12
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    b = rng.multivariate_normal([0, 0], [[0.8, 0.3], [0.3, 0.5]], groups)
    eta = -0.2 + 0.6 * x + b[g, 0] + b[g, 1] * x
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": pd.Categorical(g)})
    gd, fit = glmer_with_design("y ~ x + (1 + x | g)", data, family="binomial", verify=False)
    table = glmm_profile_intervals(gd, fit.theta, fit.beta).set_index("parameter")
    assert list(table.index[:3]) == ["sd_(Intercept)|g", "cor_x.(Intercept)|g", "sd_x|g"]
    assert -1 <= table.loc["cor_x.(Intercept)|g", "lower_2.5"] < table.loc["cor_x.(Intercept)|g", "upper_97.5"] <= 1
    profile = LaplaceProfile(gd, fit.theta, fit.beta)
    for name in ("sd_x|g", "cor_x.(Intercept)|g"):
        zeta = profile.zeta_function(list(table.index).index(name))
        for bound, sign in zip(table.loc[name, ["lower_2.5", "upper_97.5"]], (-1, 1)):
            if bound not in (-1.0, 0.0, 1.0):  # a limit, not a root, where the profile stops first
                assert zeta(bound) == pytest.approx(sign * Z, abs=1e-6)
