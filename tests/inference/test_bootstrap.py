"""The parametric bootstrap: seeded chunks, their aggregation, and the interval jobs of the
workflow (the chapter's simulation exercise: its data, a profile, a chunked bootstrap)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import offline, output, snakemake

from lmmflow.data.prepare import read_prepared
from lmmflow.data.simulate import simulate_exercise
from lmmflow.engine.groups_last import fit_groups_last
from lmmflow.engine.parameters import parameter_names, parameter_values
from lmmflow.inference.bootstrap import (
    aggregate_bootstrap,
    bootstrap_chunk,
    bootstrap_replicates,
    percentile_interval,
    replicate_seeds,
)
from lmmflow.model.design import build_design


@pytest.fixture
def slopes_fit(chapter_fit):
    return chapter_fit("sleep_uncorrelated", "fit_groups_last")


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
    with pytest.raises(ValueError, match="1 estimates for the chunks' 5 parameters"):
        aggregate_bootstrap(chunks, estimate=[1.0])


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
    fit = fit_groups_last(design)
    direct = bootstrap_replicates(design, fit, replicate_seeds(11, 6))
    union = pd.concat(chunks, ignore_index=True)
    np.testing.assert_allclose(union.drop(columns="converged"), direct.drop(columns="converged"), rtol=1e-8)
    # The jobs start from the fit stage's solution, written to the last bit.
    solution = json.loads((tmp_path / "results/models/sim_ints_only/solution.json").read_text())
    assert solution["theta"] == fit.theta.tolist() and solution["sigma2"] == fit.sigma2
    aggregated = pd.read_csv(tmp_path / "results/intervals/sim_ints_only/bootstrap.csv")
    assert len(aggregated) == 4
    np.testing.assert_allclose(aggregated["estimate"], parameter_values(fit.covariances, fit.sigma2, fit.beta))
