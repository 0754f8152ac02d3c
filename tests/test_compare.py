import pytest

from lmmflow.compare import ComparisonError, compare_models


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
    assert table.columns.tolist() == ["model", "K", "AICc", "delta_AICc", "n_random_effects", "logLik", "AIC"]


@pytest.mark.parametrize(
    "other, what",
    [
        (summary(1.0, dataset="gpa"), "data set"),
        (summary(1.0, n_obs=990), "number of observations"),
        (summary(1.0, fixed=("Intercept",)), "fixed effects"),
    ],
)
def test_refuses_models_reml_cannot_compare(other, what):
    with pytest.raises(ComparisonError, match=f"models 'a' and 'b' differ in {what}"):
        compare_models({"a": summary(2.0), "b": other})


def test_needs_two_models():
    with pytest.raises(ComparisonError, match="at least two"):
        compare_models({"a": summary(2.0)})
