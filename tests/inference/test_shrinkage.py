"""Separate per-group regressions vs the mixed model's coefficients, in every configured setting."""

import numpy as np
import pandas as pd
import pytest
from conftest import CHAPTER_DROPOUT, CONFIG

from lmmflow.data.simulate import simulate_random_slopes
from lmmflow.inference import shrinkage

SETTINGS = CONFIG["shrinkage"]["settings"]


def lstsq_per_group(data, group, x, y):
    rows = []
    for label, rows_of_group in data.groupby(group, observed=True, sort=True):
        X = np.column_stack([np.ones(len(rows_of_group)), rows_of_group[x].to_numpy(dtype=float)])
        beta, *_ = np.linalg.lstsq(X, rows_of_group[y].to_numpy(dtype=float), rcond=None)
        rows.append((str(label), *beta))
    return pd.DataFrame(rows, columns=[group, "intercept", "slope"])


def check_equals_lstsq(data, group, x, y):
    fast = shrinkage.per_group_ols(data, group, x, y)
    direct = lstsq_per_group(data, group, x, y)
    assert list(fast[group]) == list(direct[group])
    np.testing.assert_allclose(fast["intercept"], direct["intercept"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast["slope"], direct["slope"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fast["n"], data.groupby(group, observed=True).size().to_numpy())


def test_per_group_ols_equals_a_least_squares_solve_per_student(gpa):
    check_equals_lstsq(gpa, "student", "occasion", "gpa")


def test_per_group_ols_on_imbalanced_data():
    data = simulate_random_slopes(300, 10, 2.6, 0.11, 0.2, 0.067, -0.1, 0.25, np.random.default_rng(2), CHAPTER_DROPOUT)
    check_equals_lstsq(data, "student", "occasion", "y")


def test_per_group_ols_without_variation_in_the_predictor_is_missing():
    data = pd.DataFrame(
        {"g": ["a", "a", "b", "b", "b"], "x": [1.0, 1.0, 0.0, 1.0, 2.0], "y": [1.0, 2.0, 0.0, 1.0, 2.0]}
    )
    table = shrinkage.per_group_ols(data, "g", "x", "y").set_index("g")
    assert np.isnan(table.loc["a", "slope"]) and np.isnan(table.loc["a", "intercept"])
    assert table.loc["b", "slope"] == pytest.approx(1.0) and table.loc["b", "intercept"] == pytest.approx(0.0)


def test_pooled_ols(gpa):
    slope, intercept = np.polyfit(gpa["occasion"], gpa["gpa"], 1)
    table = shrinkage.pooled_ols(gpa, "occasion", "gpa").set_index("term")["value"]
    assert table["Intercept"] == pytest.approx(intercept, abs=1e-12)
    assert table["occasion"] == pytest.approx(slope, abs=1e-12)


@pytest.fixture(scope="module")
def results(gpa):
    """Every configured setting, fitted once."""
    observed = {"gpa": gpa}
    out = {}
    for name, setting in SETTINGS.items():
        data = shrinkage.setting_data(setting, observed.get(setting.get("dataset")))
        out[name] = shrinkage.run_setting(name, setting, data)
    return out


def test_gpa_mixed_coefficients_match_lme4(results, lme4):
    coefficients = results["gpa"]["coefficients"].set_index("student")
    oracle = pd.DataFrame(lme4["gpa_mixed"]["random_coefficients"]).pivot(
        index="group", columns="effect", values="value"
    )
    oracle = oracle.reindex(coefficients.index)
    np.testing.assert_allclose(coefficients["intercept_mixed"], oracle["Intercept"], atol=1e-4)
    np.testing.assert_allclose(coefficients["slope_mixed"], oracle["occasion"], atol=1e-4)


def test_gpa_has_three_negative_mixed_slopes(results, lme4):
    tables = shrinkage.observed_tables(results["gpa"]["coefficients"])
    negative = tables["negative_slopes"].set_index("estimate")
    assert negative.loc["mixed", "n_negative_slopes"] == lme4["gpa_mixed"]["n_negative_slopes"] == 3
    # the separate regressions give many more downward trends, as the chapter says
    assert negative.loc["separate", "n_negative_slopes"] > 3 * negative.loc["mixed", "n_negative_slopes"]
    assert list(tables["coefficients"].columns) == [
        "student",
        "intercept_separate",
        "slope_separate",
        "intercept_mixed",
        "slope_mixed",
    ]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_mixed_estimates_vary_less_than_separate_ones(results, name):
    table = results[name]["sd_summary"].set_index("coefficient")
    assert list(table.index) == ["intercept", "slope"]
    assert (table["setting"] == name).all()
    assert (table["sd_mixed"] < table["sd_separate"]).all(), table


@pytest.mark.parametrize("name", [n for n, s in SETTINGS.items() if "simulate" in s])
def test_simulated_settings_recover_their_random_effect_sds(results, name):
    truth = SETTINGS[name]["simulate"]
    components = results[name]["variance_components"]
    sd = dict(zip(components["effect"], components["sd"]))
    assert sd["Intercept"] == pytest.approx(truth["sd_intercept"], rel=0.35)
    assert sd[""] == pytest.approx(truth["sd_residual"], rel=0.15)
    assert results[name]["fit"]["n_groups"] == {"student": truth["n_groups"]}


def test_more_data_per_group_means_less_shrinkage(results):
    ratio = {name: r["sd_summary"].set_index("coefficient").loc["slope", "sd_ratio"] for name, r in results.items()}
    assert ratio["more_observations"] > ratio["gpa"] > ratio["fewer_observations"]


def test_coefficient_table_refuses_different_groups():
    separate = pd.DataFrame({"g": ["1", "2"], "n": [2, 2], "intercept": [0.0, 1.0], "slope": [1.0, 2.0]})
    mixed = pd.DataFrame({"g": ["1", "3"], "intercept": [0.0, 1.0], "slope": [1.0, 2.0]})
    with pytest.raises(ValueError, match="different groups"):
        shrinkage.coefficient_table(separate, mixed, "g")


def test_coefficient_statistics_summarize_each_coefficient_and_estimate():
    coefficients = pd.DataFrame(
        {
            "g": ["1", "2", "3"],
            "n": [4, 4, 4],
            "intercept_separate": [1.0, 2.0, 6.0],
            "slope_separate": [0.5, np.nan, -0.5],
            "intercept_mixed": [2.0, 2.5, 3.0],
            "slope_mixed": [0.2, 0.1, 0.0],
        }
    )
    table = shrinkage.coefficient_statistics(coefficients).set_index(["coefficient", "estimate"])
    assert list(table.index) == [(c, kind) for c in ("intercept", "slope") for kind in ("separate", "mixed")]
    assert list(table.columns) == ["n_groups", "mean", "sd", "min", "max"]
    assert (table["n_groups"] == 3).all()
    assert table.loc[("intercept", "separate"), ["mean", "min", "max"]].tolist() == [3.0, 1.0, 6.0]
    assert table.loc[("intercept", "separate"), "sd"] == pytest.approx(np.std([1, 2, 6], ddof=1))
    assert table.loc[("slope", "separate"), "mean"] == 0.0  # a group without a slope is skipped
    assert table.loc[("slope", "mixed"), "sd"] == pytest.approx(0.1)


def test_the_many_regressions_sd_is_the_sd_summary(results):
    statistics = shrinkage.observed_tables(results["gpa"]["coefficients"])["coefficient_statistics"]
    sd = statistics.set_index(["coefficient", "estimate"])["sd"]
    summary = results["gpa"]["sd_summary"].set_index("coefficient")
    for coefficient in ("intercept", "slope"):
        for kind in ("separate", "mixed"):
            assert sd[(coefficient, kind)] == pytest.approx(summary.loc[coefficient, f"sd_{kind}"], rel=1e-12)
