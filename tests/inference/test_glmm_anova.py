"""GLMMs in likelihood-ratio tests and AICc comparisons (lmmflow.inference.glmm_anova): lme4's
anova(m0, m1) of glmer fits, e.g. ``anova(glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd),
cbpp, binomial), glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial))``
(../shared/reference/glmm, ``anova``): order, npar and Df exact, the rest within 1e-3 / 2e-3."""

import json

import pytest
from engine.glmm_reference import model_call, model_data, reference_anova
from outputs.test_glmm_tables import outputs_in, write

from lmmflow.inference.comparison import compare_models
from lmmflow.inference.likelihood_ratio import likelihood_ratio_test, ml_criteria_of, ml_fits


@pytest.mark.parametrize("name", ["cbpp_null_vs_cbpp_herd"])
def test_likelihood_ratio_test_of_glmms_is_lme4s_anova(tmp_path, name):
    reference = reference_anova()[name]
    models = list(reversed(reference["models"]))  # given out of order: sorted by npar, as lme4
    specs = {m: {"dataset": "cbpp", "reml": True, "engine": "fast", **model_call(m)} for m in models}
    for model in models:
        write(model, tmp_path / model, dataset="cbpp")
    solutions = {m: outputs_in(tmp_path / m)["solution"] for m in models}
    fits = ml_fits(model_data(models[0]), specs, solutions, "cbpp")
    table = likelihood_ratio_test(fits)
    rows = reference["rows"]
    assert table["model"].tolist() == [row["model"] for row in rows]
    assert table["npar"].tolist() == [row["npar"] for row in rows]
    assert table["Df"].iloc[1] == rows[1]["Df"]
    for column in ("logLik", "deviance", "AIC", "BIC"):
        assert table[column].to_numpy() == pytest.approx([row[column] for row in rows], abs=1e-3), column
    assert table["Chisq"].iloc[1] == pytest.approx(rows[1]["Chisq"], abs=2e-3)
    assert table["p_value"].iloc[1] == pytest.approx(rows[1]["Pr(>Chisq)"], rel=1e-2)
    assert table["fit"].tolist() == ["ML fit", "ML fit"]

    summaries = {m: json.loads((tmp_path / m / "fit.json").read_text()) for m in models}
    compared = compare_models(summaries, ml_criteria_of(fits))
    assert compared["model"].tolist()[0] == "cbpp_herd" and set(compared["likelihood"]) == {"ML"}
    by_model = compared.set_index("model")
    for row in rows:
        k, n = row["npar"], summaries[row["model"]]["n_obs"]
        assert by_model.loc[row["model"], "AICc"] == pytest.approx(row["AIC"] + 2 * k * (k + 1) / (n - k - 1), abs=1e-3)
