"""Seeded simulation of random-slope data, balanced and with the chapter's dropout, and the
chapter's simulation exercise."""

import numpy as np
import pandas as pd
import pytest
from conftest import CHAPTER_DROPOUT

from lmmflow.data.simulate import Dropout, simulate_exercise, simulate_from_config, simulate_random_slopes
from lmmflow.engine.groups_last import fit_groups_last
from lmmflow.model.design import build_design

PARAMETERS = dict(
    n_groups=50,
    n_per_group=6,
    intercept=2.6,
    slope=0.11,
    sd_intercept=0.2,
    sd_slope=0.067,
    correlation=-0.1,
    sd_residual=0.25,
)


def simulate(seed, **changes):
    return simulate_random_slopes(**{**PARAMETERS, **changes}, rng=np.random.default_rng(seed))


def test_layout():
    data = simulate(1)
    assert list(data.columns) == ["student", "occasion", "y"]
    assert isinstance(data["student"].dtype, pd.CategoricalDtype)
    assert list(data["student"].cat.categories) == [str(i) for i in range(1, 51)]
    assert len(data) == 50 * 6
    assert (data.groupby("student", observed=True)["occasion"].apply(list) == [list(range(6))] * 50).all()


def test_same_seed_same_data_different_seed_different_data():
    pd.testing.assert_frame_equal(simulate(7), simulate(7))
    assert not np.allclose(simulate(7)["y"], simulate(8)["y"])
    with_dropout = dict(n_per_group=10, dropout=CHAPTER_DROPOUT)
    pd.testing.assert_frame_equal(simulate(7, **with_dropout), simulate(7, **with_dropout))
    assert not simulate(7, **with_dropout)[["student", "occasion"]].equals(
        simulate(8, **with_dropout)[["student", "occasion"]]
    )


def test_without_noise_the_population_line():
    data = simulate(3, sd_intercept=0.0, sd_slope=0.0, sd_residual=0.0)
    np.testing.assert_allclose(data["y"], 2.6 + 0.11 * data["occasion"], rtol=0, atol=1e-12)


def test_random_effects_have_the_requested_covariance():
    # without residual noise each student's line is exact: its intercept and slope are u0, u1
    data = simulate(5, n_groups=20000, n_per_group=2, sd_residual=0.0)
    wide = data.pivot(index="student", columns="occasion", values="y")
    u0 = wide[0].to_numpy() - 2.6
    u1 = (wide[1] - wide[0]).to_numpy() - 0.11
    assert np.std(u0) == pytest.approx(0.2, rel=0.03)
    assert np.std(u1) == pytest.approx(0.067, rel=0.03)
    assert np.corrcoef(u0, u1)[0, 1] == pytest.approx(-0.1, abs=0.03)


def test_dropout_keeps_occasion_zero_and_two_to_ten_occasions():
    data = simulate(11, n_groups=2000, n_per_group=10, dropout=CHAPTER_DROPOUT)
    per_student = data.groupby("student", observed=True)["occasion"]
    assert (per_student.min() == 0).all()
    assert not data.duplicated(["student", "occasion"]).any()
    counts = per_student.size()
    assert counts.min() == 2 and counts.max() == 10
    assert data["occasion"].between(0, 9).all()
    # the number of later occasions kept follows count_weights
    expected = np.array(CHAPTER_DROPOUT.count_weights) / sum(CHAPTER_DROPOUT.count_weights)
    observed = np.bincount(counts - 1, minlength=10)[1:] / len(counts)
    np.testing.assert_allclose(observed, expected, atol=0.03)
    # later occasions with smaller weights are kept less often
    kept = data[data["occasion"] > 0].groupby("occasion").size()
    assert kept[1] > kept[9]


def test_dropout_from_config_mapping_and_validation():
    config = {
        **PARAMETERS,
        "n_per_group": 10,
        "dropout": {
            "count_weights": list(CHAPTER_DROPOUT.count_weights),
            "occasion_weights": list(CHAPTER_DROPOUT.occasion_weights),
        },
    }
    a = simulate_from_config(config, seed=4)
    b = simulate_random_slopes(
        **PARAMETERS | {"n_per_group": 10}, rng=np.random.default_rng(4), dropout=CHAPTER_DROPOUT
    )
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="later occasions"):
        simulate(1, n_per_group=6, dropout=CHAPTER_DROPOUT)
    with pytest.raises(ValueError, match="weights"):
        Dropout(count_weights=(-1.0,), occasion_weights=(1.0,))
    with pytest.raises(ValueError, match="missing"):
        simulate_from_config({"n_groups": 3}, seed=1)


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="correlation"):
        simulate(1, correlation=1.5)
    with pytest.raises(TypeError, match="Generator"):
        simulate_random_slopes(**PARAMETERS, rng=1)


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
    fit = fit_groups_last(design)
    assert fit.beta == pytest.approx([2.0, 0.5], abs=0.1)
    assert np.sqrt(fit.covariances[0][0, 0]) == pytest.approx(0.75, abs=0.1)
    assert np.sqrt(fit.covariances[1][0, 0]) == pytest.approx(0.25, abs=0.05)
    assert np.sqrt(fit.sigma2) == pytest.approx(0.25, abs=0.03)
