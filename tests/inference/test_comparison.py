import pytest

from lmmflow.inference.comparison import TIE, ComparisonError, compare_models, needs_ml, verdicts


def summary(aicc, k=6, dataset="pupils", n_obs=1000, fixed=("Intercept", "sesmid", "seshigh"), n_re=150):
    return {
        "dataset": dataset,
        "n_obs": n_obs,
        "fixed_effects": list(fixed),
        "K": k,
        "AICc": aicc,
        "AIC": aicc - 1,
        "logLik": -aicc,
        "n_random_effects": n_re,
    }


def test_ranks_by_aicc_with_deltas():
    table = compare_models({"a": summary(10.0), "b": summary(4.0), "c": summary(7.5)})
    assert table["model"].tolist() == ["b", "c", "a"]
    assert table["delta_AICc"].tolist() == [0.0, 3.5, 6.0]
    assert table.columns.tolist() == [
        "model",
        "K",
        "AICc",
        "delta_AICc",
        "n_random_effects",
        "logLik",
        "AIC",
        "likelihood",
    ]
    assert set(table["likelihood"]) == {"REML"}


@pytest.mark.parametrize(
    "other, what",
    [
        (summary(1.0, dataset="gpa"), "data set"),
        (summary(1.0, n_obs=990), "number of observations"),
    ],
)
def test_refuses_models_on_different_data(other, what):
    with pytest.raises(ComparisonError, match=f"models 'a' and 'b' differ in {what}"):
        compare_models({"a": summary(2.0), "b": other})


def ml(aicc):
    return {"AICc": aicc, "AIC": aicc - 1, "logLik": -aicc / 2}


def test_different_fixed_effects_are_compared_by_their_ml_fits():
    summaries = {"a": summary(2.0), "b": summary(1.0, fixed=("Intercept",))}
    assert needs_ml(summaries)
    with pytest.raises(ComparisonError, match="differ in fixed effects .* needs their ML fits"):
        compare_models(summaries)
    table = compare_models(summaries, {"a": ml(5.0), "b": ml(9.0)})
    assert table["model"].tolist() == ["a", "b"] and set(table["likelihood"]) == {"ML"}
    assert table["AICc"].tolist() == [5.0, 9.0] and table["logLik"].tolist() == [-2.5, -4.5]
    assert table["K"].tolist() == [6, 6]


def test_an_ml_fit_among_reml_fits_makes_the_comparison_ml():
    assert not needs_ml({"a": summary(2.0), "b": summary(1.0)})
    assert needs_ml({"a": summary(2.0), "b": summary(1.0) | {"REML": False}})


def test_needs_two_models():
    with pytest.raises(ComparisonError, match="at least two"):
        compare_models({"a": summary(2.0)})


def test_verdicts_prefer_the_lowest_criterion_and_name_the_runner_up():
    table = compare_models({"a": summary(10.0), "b": summary(4.0), "c": summary(7.5)})
    standings = verdicts(table)
    assert standings.columns.tolist() == ["criterion", "model", "delta", "verdict", "tie_tolerance"]
    aicc = standings[standings["criterion"] == "AICc"]
    assert aicc["model"].tolist() == ["b", "c", "a"]
    assert aicc["verdict"].tolist() == ["preferred", "runner-up", "worse"]
    assert aicc["delta"].tolist() == table["delta_AICc"].tolist()
    assert standings["criterion"].tolist() == ["AICc"] * 3 + ["AIC"] * 3


def test_models_within_the_tie_tolerance_are_all_preferred():
    table = compare_models({"a": summary(4.0 + TIE / 2), "b": summary(4.0), "c": summary(4.0 + 2 * TIE)})
    aicc = verdicts(table).query("criterion == 'AICc'")
    assert dict(zip(aicc["model"], aicc["verdict"])) == {"b": "preferred", "a": "preferred", "c": "runner-up"}


def test_the_aic_verdict_ranks_by_aic():
    models = {"a": summary(4.0), "b": summary(5.0)}
    models["b"]["AIC"] = 1.0  # b: lower AIC, higher AICc (more parameters would do this)
    aic = verdicts(compare_models(models)).query("criterion == 'AIC'")
    assert aic["model"].tolist() == ["b", "a"] and aic["verdict"].tolist() == ["preferred", "runner-up"]
    assert aic["delta"].tolist() == [0.0, 2.0]
