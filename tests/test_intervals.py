"""Profile-likelihood intervals against lme4's confint, the parametric bootstrap's chunking, and
the chapter's simulation exercise (its data, profile intervals and AIC comparison)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import offline, output, snakemake

from lmmflow.design import build_design
from lmmflow.intervals import (
    MLProfile,
    aggregate_bootstrap,
    bootstrap_chunk,
    bootstrap_replicates,
    parameter_names,
    percentile_interval,
    profile_intervals,
    replicate_seeds,
    sdcor_to_theta,
    theta_to_sdcor,
)
from lmmflow.prepare import read_prepared
from lmmflow.reml import ProfiledREML, fit_reml, optimize_theta
from lmmflow.simulate import simulate_exercise

SLEEP_MODELS = {
    "sleep_slopes": "Reaction ~ Days + (Days | Subject)",
    "sleep_uncorrelated": "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
}
SD_RELATIVE = 0.02
FIXED_IN_SE = 0.05
COR_ABSOLUTE = 0.02


@pytest.fixture(scope="module")
def sleep_designs(sleepstudy):
    return {name: build_design(formula, sleepstudy) for name, formula in SLEEP_MODELS.items()}


@pytest.fixture(scope="module")
def sleep_profiles(sleep_designs):
    return {name: profile_intervals(design) for name, design in sleep_designs.items()}


@pytest.mark.parametrize("model", SLEEP_MODELS)
def test_profile_intervals_match_lme4(model, sleep_profiles, sleep_designs, lme4_confint):
    ours = sleep_profiles[model].set_index("parameter")
    theirs = pd.DataFrame(lme4_confint[model]["confint"]).set_index("parameter")
    assert list(ours.index) == list(theirs.index)
    se = dict(
        zip(parameter_names(sleep_designs[model])[-2:], np.sqrt(np.diag(fit_reml(sleep_designs[model]).beta_cov)))
    )
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


def test_profile_is_centred_at_the_ml_fit(sleep_designs, lme4):
    """lme4's profile starts from refitML: its zeta = 0 point is the ML estimate, not REML's."""
    table = profile_intervals(sleep_designs["sleep_slopes"], which=["sigma", "Days"]).set_index("parameter")
    assert table.loc["sigma", "profile_center"] == pytest.approx(25.5918151035, rel=1e-6)  # sigma(refitML(fit))
    reml_sd = lme4["sleep_slopes"]["variance_components"][-1]["sd"]
    assert table.loc["sigma", "estimate"] == pytest.approx(reml_sd, rel=1e-6)


def test_fixed_effect_profile_equals_the_offset_refit(sleep_designs):
    """Our closed form for the fixed-effect profile equals lme4's definition: the ML fit of the
    model with the column moved into an offset (here: subtracted from y), optimized over theta."""
    design = sleep_designs["sleep_slopes"]
    profile = MLProfile(design)
    value = profile.beta_hat[1] + 2.0
    reduced = replace(
        design, y=design.y - value * design.X[:, 1], X=design.X[:, :1], fixed_names=design.fixed_names[:1]
    )
    model = ProfiledREML(reduced, reml=False)
    theta, _ = optimize_theta(model, profile.theta_hat)
    zeta = profile.zeta_function(len(profile.vc_hat) + 1)(value)
    assert zeta == pytest.approx(np.sqrt(model.deviance(theta) - profile.base), rel=1e-6)


def test_sdcor_theta_round_trip():
    theta = np.array([0.93, 0.018, 0.22, 0.5])
    sizes = [2, 1]
    pars = theta_to_sdcor(theta, sizes, sigma=25.6)
    assert pars[-1] == 25.6
    np.testing.assert_allclose(sdcor_to_theta(pars, sizes), theta, rtol=1e-12)


def test_profile_lower_bound_stops_at_zero():
    """A slope SD whose profile never reaches zeta = -1.96 gets the bound 0, as lme4 reports
    (lme4 1.1-31 on this data set: [0, 0.15450221])."""
    data = simulate_exercise(sd_slope=0.02, rng=5)
    table = profile_intervals(build_design("y ~ x + (1 | groups) + (0 + x | groups)", data), which=["sd_x|groups"])
    assert table["lower_2.5"].iloc[0] == 0.0
    assert table["upper_97.5"].iloc[0] == pytest.approx(0.15450221, rel=1e-3)


# --------------------------------------------------------------------------- bootstrap


@pytest.fixture(scope="module")
def slopes_fit(sleep_designs):
    design = sleep_designs["sleep_uncorrelated"]
    return design, fit_reml(design)


def test_bootstrap_chunks_are_reproducible_and_independent_of_chunking(slopes_fit):
    design, fit = slopes_fit
    four = [bootstrap_chunk(design, fit, 20261126, 12, 4, chunk) for chunk in range(4)]
    again = bootstrap_chunk(design, fit, 20261126, 12, 4, 2)
    pd.testing.assert_frame_equal(four[2], again)
    two = [bootstrap_chunk(design, fit, 20261126, 12, 2, chunk) for chunk in range(2)]
    pd.testing.assert_frame_equal(pd.concat(four, ignore_index=True), pd.concat(two, ignore_index=True))
    union = pd.concat(four, ignore_index=True)
    assert list(union["replicate"]) == list(range(12))
    assert union.drop(columns=["replicate", "converged"]).drop_duplicates().shape[0] == 12
    other = bootstrap_chunk(design, fit, 1, 12, 4, 2)
    assert not np.allclose(other["sigma"], four[2]["sigma"])


def test_aggregate_equals_percentiles_of_the_union(slopes_fit):
    design, fit = slopes_fit
    seeds = replicate_seeds(7, 19)
    chunks = [bootstrap_replicates(design, fit, seeds[i:j], range(i, j)) for i, j in ((0, 5), (5, 12), (12, 19))]
    union = pd.concat(chunks, ignore_index=True)
    table = aggregate_bootstrap(chunks[::-1]).set_index("parameter")
    pd.testing.assert_frame_equal(table, aggregate_bootstrap([union]).set_index("parameter"))
    for name in parameter_names(design):
        ordered = np.sort(union[name].to_numpy())
        # R = 19: (R + 1) * 0.025 = 0.5 -> smallest, (R + 1) * 0.975 = 19.5 -> largest (boot's norm.inter)
        assert table.loc[name, "lower_2.5"] == ordered[0]
        assert table.loc[name, "upper_97.5"] == ordered[-1]
    with pytest.raises(ValueError, match="more than one chunk"):
        aggregate_bootstrap([chunks[0], chunks[0]])


def test_percentile_interval_is_boots_norm_inter():
    values = np.arange(1.0, 200.0)  # R = 199: (R + 1) alpha = 5 and 195 are order statistics
    assert percentile_interval(values) == (5.0, 195.0)
    lower, upper = percentile_interval(np.arange(1.0, 201.0))  # R = 200: 5.025 -> between 5 and 6
    assert 5.0 < lower < 6.0 and 195.0 < upper < 196.0


def test_bootstrap_recovers_the_simulating_model(slopes_fit):
    design, fit = slopes_fit
    table = bootstrap_replicates(design, fit, replicate_seeds(3, 8))
    assert table["converged"].all()
    assert table["Days"].mean() == pytest.approx(fit.beta[1], abs=3 * np.sqrt(fit.beta_cov[1, 1]))


# --------------------------------------------------------------------------- simulation exercise


def test_simulate_exercise_is_seeded_and_shaped():
    first = simulate_exercise(rng=42)
    pd.testing.assert_frame_equal(first, simulate_exercise(rng=np.random.default_rng(42)))
    assert not first["y"].equals(simulate_exercise(rng=43)["y"])
    assert list(first.columns) == ["x", "y", "groups"]
    assert len(first) == 150
    assert list(first["groups"].cat.categories) == [str(g) for g in range(1, 51)]
    assert (first["groups"].value_counts() == 3).all()
    assert list(first["groups"].iloc[:4]) == ["1", "1", "1", "2"]


def test_simulate_exercise_recovers_its_parameters():
    data = simulate_exercise(n_groups=400, n_per_group=6, rng=1)
    design = build_design("y ~ x + (1 | groups) + (0 + x | groups)", data)
    fit = fit_reml(design)
    assert fit.beta == pytest.approx([2.0, 0.5], abs=0.1)
    assert np.sqrt(fit.covariances[0][0, 0]) == pytest.approx(0.75, abs=0.1)
    assert np.sqrt(fit.covariances[1][0, 0]) == pytest.approx(0.25, abs=0.05)
    assert np.sqrt(fit.sigma2) == pytest.approx(0.25, abs=0.03)


# --------------------------------------------------------------------------- workflow


@pytest.mark.workflow
@pytest.mark.parametrize(
    "extra, named",
    [
        ({"intervals": {"models": ["nope"]}}, "intervals.models: unknown model 'nope'"),
        ({"intervals": {"models": ["sleep_slopes"], "method": "wald"}}, "'wald' is not one of"),
        ({"intervals": {"bootstrap": {"replicates": 2, "chunks": 4, "seed": 1}}}, "4 chunks for only 2 replicates"),
    ],
    ids=["unknown-model", "unknown-method", "too-many-chunks"],
)
def test_bad_interval_config_is_refused_at_start_up(tmp_path, extra, named):
    extra_file = tmp_path / "extra.yaml"
    extra_file.write_text(yaml.safe_dump(extra))
    result = snakemake(tmp_path, "-n", "--configfile", str(extra_file), *offline())
    assert result.returncode != 0
    assert named in output(result), output(result)


@pytest.mark.workflow
def test_workflow_exercise_profile_and_bootstrap_chunks(tmp_path):
    """The exercise's simulated data, its AIC comparison, a profile and a small chunked bootstrap,
    by Snakemake; the chunk jobs give the replicates a single in-process run gives."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"intervals": {"bootstrap": {"replicates": 6, "chunks": 3, "seed": 11}}}))
    targets = [
        "results/comparisons/sim_exercise.csv",
        "results/intervals/sim_with_slopes/profile.csv",
        "results/intervals/sim_ints_only/bootstrap.csv",
    ]
    result = snakemake(tmp_path, *targets, "--configfile", str(extra))
    assert result.returncode == 0, output(result)
    comparison = pd.read_csv(tmp_path / "results/comparisons/sim_exercise.csv")
    assert set(comparison["model"]) == {"sim_ints_only", "sim_with_slopes"}
    np.testing.assert_allclose(comparison["AIC"], -2 * comparison["logLik"] + 2 * comparison["K"])
    data = read_prepared(tmp_path / "results/data/sim_exercise.csv", tmp_path / "results/data/sim_exercise.schema.json")
    pd.testing.assert_frame_equal(data, simulate_exercise(rng=1234), check_exact=False, rtol=1e-12)
    profile = pd.read_csv(tmp_path / "results/intervals/sim_with_slopes/profile.csv")
    assert list(profile["parameter"]) == ["sd_(Intercept)|groups", "sd_x|groups", "sigma", "(Intercept)", "x"]
    chunks = [pd.read_csv(tmp_path / f"results/intervals/sim_ints_only/bootstrap_chunk_{c}.csv") for c in range(3)]
    design = build_design("y ~ x + (1 | groups)", data)
    direct = bootstrap_replicates(design, fit_reml(design), replicate_seeds(11, 6))
    union = pd.concat(chunks, ignore_index=True)
    np.testing.assert_allclose(union.drop(columns="converged"), direct.drop(columns="converged"), rtol=1e-8)
    assert len(pd.read_csv(tmp_path / "results/intervals/sim_ints_only/bootstrap.csv")) == 4
