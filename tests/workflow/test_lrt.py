"""Beyond the chapter, run by Snakemake: likelihood-ratio tests (lme4's anova()), ML fits and the
crossed pupils model, against lme4_extensions.json; an ML model and a test on another data set
added by configuration alone."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from lme4_agreement import assert_fit_matches_lme4_tables
from workflow_helpers import offline, output, snakemake

from lmmflow.inference.likelihood_ratio import COLUMNS

pytestmark = pytest.mark.workflow

# oracle key -> the configured likelihood-ratio test
TESTS = {"gpa_occasion_anova": "gpa_occasion", "ach_cat_re_anova": "ach_cat_re"}
USER_CONFIG = {
    "models": {
        "sleep_intercepts_ml": {"dataset": "sleepstudy", "formula": "Reaction ~ Days + (1 | Subject)", "reml": False},
        "sleep_null": {"dataset": "sleepstudy", "formula": "Reaction ~ 1 + (Days | Subject)"},
    },
    "likelihood_ratio_tests": {"sleep_days": ["sleep_null", "sleep_slopes", "sleep_intercepts_ml"]},
    "comparisons": {"sleep_fixed": ["sleep_null", "sleep_slopes"]},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lrt")
    (workdir / "extra.yaml").write_text(yaml.safe_dump(USER_CONFIG))
    targets = [f"results/lrt/{name}.csv" for name in [*TESTS.values(), "sleep_days"]]
    targets += ["results/models/pupils_crossed/fit.json", "results/comparisons/sleep_fixed.csv"]
    result = snakemake(workdir, *targets, "--configfile", str(workdir / "extra.yaml"), *offline())
    assert result.returncode == 0, output(result)
    return workdir / "results"


@pytest.mark.parametrize("key", TESTS)
def test_likelihood_ratio_tables_are_lme4s_anova(results, key, lme4_extensions):
    table = pd.read_csv(results / "lrt" / f"{TESTS[key]}.csv")
    lme4 = pd.DataFrame(lme4_extensions[key]).reindex(columns=COLUMNS)
    assert table.columns.tolist() == [*COLUMNS, "fit"]
    assert table["model"].tolist() == lme4["model"].tolist()
    assert table["npar"].tolist() == lme4["npar"].tolist()
    assert table["Df"].tolist()[1:] == lme4["Df"].tolist()[1:] and pd.isna(table["Df"][0])
    for column in ["logLik", "deviance", "AIC", "BIC"]:
        np.testing.assert_allclose(table[column], lme4[column], rtol=0, atol=1e-4)
    np.testing.assert_allclose(table["Chisq"], lme4["Chisq"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(table["p_value"], lme4["p_value"], rtol=1e-2, atol=1e-12)
    assert set(table["fit"]) == {"ML refit of the REML fit"}


def test_the_crossed_pupils_model_is_lme4s(results, lme4_extensions):
    folder = results / "models" / "pupils_crossed"
    fit = json.loads((folder / "fit.json").read_text())
    oracle = lme4_extensions["pupils_crossed"]
    assert abs(fit["logLik"] - oracle["logLik"]) < 1e-4
    assert fit["n_random_effects"] == oracle["n_random_effects"] == 80
    assert fit["engine"] == "blocked" and fit["verification"] == "sparse LU"
    assert fit["verification_difference"] < 1e-6
    assert_fit_matches_lme4_tables(folder, oracle)


def test_an_ml_model_and_a_test_on_another_data_set_come_from_configuration_alone(results):
    fit = json.loads((results / "models" / "sleep_intercepts_ml" / "fit.json").read_text())
    assert fit["REML"] is False
    table = pd.read_csv(results / "lrt" / "sleep_days.csv")
    assert table["model"].tolist() == ["sleep_intercepts_ml", "sleep_null", "sleep_slopes"]  # by npar: 4, 5, 6
    assert table["fit"].tolist() == ["ML fit", "ML refit of the REML fit", "ML refit of the REML fit"]
    assert table["logLik"][0] == pytest.approx(fit["logLik"], abs=1e-9)  # read back, not refitted
    assert table["Df"].tolist()[1:] == [1, 1]


def test_a_comparison_across_fixed_effects_ranks_the_ml_fits(results):
    table = pd.read_csv(results / "comparisons" / "sleep_fixed.csv")
    assert set(table["likelihood"]) == {"ML"}
    lrt = pd.read_csv(results / "lrt" / "sleep_days.csv").set_index("model")
    for row in table.itertuples():
        assert row.logLik == pytest.approx(lrt.loc[row.model, "logLik"], abs=1e-9)
        assert row.AIC == pytest.approx(lrt.loc[row.model, "AIC"], abs=1e-9)
