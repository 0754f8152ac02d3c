"""Issue 22 through the workflow: a model with offset() and prior weights fitted, profiled,
bootstrapped and tested as lme4 fits it; R's model-frame refusals naming the model; start-up
refusals of functions, names and focus groups; a configuration file given twice.

lme4 numbers: tests/offset_weights_oracle.py (the R calls: tests/model/test_offset_weights.py)."""

import json

import pandas as pd
import pytest
from conftest import MIRROR
from offset_weights_oracle import ORACLE
from test_faults import leftovers, path_source, run, sleepstudy
from workflow_helpers import output, snakemake

pytestmark = pytest.mark.workflow

WEIGHTED = ORACLE["A"]["formula"]  # Reaction ~ Days + offset(z) + (Days | Subject), weights w


@pytest.fixture(scope="module")
def formulas_run(tmp_path_factory):
    """One --keep-going run: the weighted model and its outputs beside models refused at fit time."""
    workdir = tmp_path_factory.mktemp("formulas")
    data = sleepstudy()
    data["w"] = 1 + data["rownames"] % 3
    data["z"] = 0.5 * data["Days"] + data["rownames"] % 5
    data["one"] = "x"
    data.to_csv(workdir / "sleep_w.csv", index=False)
    data.rename(columns={"Reaction": "größe", "Days": "älter", "Subject": "schüle"}).to_csv(
        workdir / "sleep_umlaut.csv", index=False
    )
    models = {
        "m_weighted": {"dataset": "sleep_w", "formula": WEIGHTED, "weights": "w"},
        "m_weighted_ml": {"dataset": "sleep_w", "formula": WEIGHTED, "weights": "w", "reml": False},
        "m_null_ml": {
            "dataset": "sleep_w",
            "formula": "Reaction ~ 1 + offset(z) + (Days | Subject)",
            "weights": "w",
            "reml": False,
        },
        "m_response_right": {"dataset": "sleep_w", "formula": "Reaction ~ Reaction + Days + (1 | Subject)"},
        "m_one_level": {"dataset": "sleep_w", "formula": "Reaction ~ Days + one + (1 | Subject)"},
        "m_bad_weights": {"dataset": "sleep_w", "formula": WEIGHTED, "weights": "Subject"},
        "m_umlaut": {"dataset": "sleep_umlaut", "formula": "größe ~ älter + (älter | schüle)"},
    }
    extra = {
        "datasets": {
            "sleep_w": path_source(workdir / "sleep_w.csv"),
            "sleep_umlaut": {"source": {"path": str(workdir / "sleep_umlaut.csv")}, "factors": ["schüle"]},
        },
        "models": models,
        "likelihood_ratio_tests": {"weighted": ["m_null_ml", "m_weighted_ml"]},
        "intervals": {"models": ["m_weighted"], "bootstrap": {"replicates": 8, "chunks": 2, "seed": 1}},
        # a job per model: with --keep-going a failing model's batch would take its others along
        "batches": {"size": 1},
    }
    targets = [f"results/models/{model}/fit.json" for model in models]
    targets += ["results/lrt/weighted.csv", "results/intervals/m_weighted/profile.csv"]
    targets += ["results/intervals/m_weighted/bootstrap.csv"]
    result = run(workdir, *targets, extra=extra, args=["--keep-going"])
    assert result.returncode != 0, output(result)
    return workdir, output(result)


def test_weighted_model_with_offset_is_fitted_as_lme4_fits_it(formulas_run):
    workdir, printed = formulas_run
    fit = json.loads((workdir / "results/models/m_weighted/fit.json").read_text())
    assert abs(fit["logLik"] - ORACLE["A"]["logLik"]) < 1e-4
    assert fit["offset"] is True and fit["prior_weights"] is True
    fixed = pd.read_csv(workdir / "results/models/m_weighted/fixed_effects.csv")
    pd.testing.assert_series_equal(fixed["value"], pd.Series(ORACLE["A"]["beta"], name="value"), rtol=1e-3)
    fitted = pd.read_csv(workdir / "results/models/m_weighted/fitted.csv")
    pd.testing.assert_series_equal(
        fitted["fitted"].iloc[[0, 1, 99]].reset_index(drop=True),
        pd.Series(ORACLE["A"]["fitted"], name="fitted"),
        rtol=1e-5,
    )


def test_profile_bootstrap_and_lrt_of_the_weighted_model(formulas_run):
    """anova(B0, B) in lme4: Chisq 22.53348 on 1 Df."""
    workdir, _ = formulas_run
    lrt = pd.read_csv(workdir / "results/lrt/weighted.csv")
    assert abs(lrt["Chisq"].iloc[1] - 22.53348) < 1e-4 and lrt["Df"].iloc[1] == 1
    profile = pd.read_csv(workdir / "results/intervals/m_weighted/profile.csv").set_index("parameter")
    sigma = ORACLE["A"]["variances"][-1] ** 0.5
    assert profile.loc["sigma", "lower_2.5"] < sigma < profile.loc["sigma", "upper_97.5"]
    bootstrap = pd.read_csv(workdir / "results/intervals/m_weighted/bootstrap.csv").set_index("parameter")
    assert bootstrap.loc["Days", "lower_2.5"] < ORACLE["A"]["beta"][1] < bootstrap.loc["Days", "upper_97.5"]


def test_column_names_in_any_alphabet_are_fitted_as_r_reads_them(formulas_run):
    """größe ~ älter + (älter | schüle) is sleepstudy's Reaction ~ Days + (Days | Subject), renamed."""
    workdir, _ = formulas_run
    fit = json.loads((workdir / "results/models/m_umlaut/fit.json").read_text())
    assert fit["fixed_effects"] == ["Intercept", "älter"] and fit["n_groups"] == {"schüle": 18}
    assert abs(fit["logLik"] - -871.8141359792453) < 1e-4  # sleep_slopes' (lme4: -871.814135)


def test_response_on_the_right_is_dropped_with_lme4s_warning_in_fit_json(formulas_run):
    workdir, _ = formulas_run
    fit = json.loads((workdir / "results/models/m_response_right/fit.json").read_text())
    assert fit["fixed_effects"] == ["Intercept", "Days"]
    assert "the response appeared on the right-hand side and was dropped" in fit["warnings"]


@pytest.mark.parametrize(
    "model, message",
    [
        (
            "m_one_level",
            "model 'm_one_level': formula 'Reaction ~ Days + one + (1 | Subject)': factor 'one' of "
            "the fixed part has only the level 'x' in the rows used",
        ),
        (
            "m_bad_weights",
            "model 'm_bad_weights': formula '" + WEIGHTED + "': weights column 'Subject' must be numeric",
        ),
    ],
)
def test_fit_time_refusals_name_the_model_in_one_line_and_leave_nothing(formulas_run, model, message):
    workdir, printed = formulas_run
    lines = [line for line in printed.splitlines() if message in line]
    assert lines, printed
    assert leftovers(workdir, model) == []
    assert f"{message}" in lines[0] and "Traceback" not in printed.split(message)[0][-200:]


# --- refused at start-up: one line, nothing runs ---------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            {"models": {"m_foo": {"dataset": "sleepstudy", "formula": "Reaction ~ foo(Days) + (1 | Subject)"}}},
            "models.m_foo.formula: formula 'Reaction ~ foo(Days) + (1 | Subject)': function 'foo' is not one "
            "lmmflow evaluates; supported: C, I, abs",
        ),
        (
            {
                "models": {
                    "m_twice": {"dataset": "sleepstudy", "formula": "Reaction ~ Days + (1 | Subject) + (1 | Subject)"}
                }
            },
            "models.m_twice.formula: formula 'Reaction ~ Days + (1 | Subject) + (1 | Subject)': random term "
            "(1 | Subject) is given twice",
        ),
        (
            {"models": {"m" * 101: {"dataset": "sleepstudy", "formula": "Reaction ~ Days + (1 | Subject)"}}},
            "config key 'models.mmmmmmmmmmmmmmmmm...mmmmmmmmmmmmmmmmmm': not a valid name (a letter, then letters, "
            "digits and underscores, at most 100 characters",
        ),
        (
            {
                "models": {
                    "m_sleep": {"dataset": "pupils", "formula": "achievement ~ ses + (1 | secondary_school_id)"}
                },
                "focus_groups": {"school10": {"models": ["ach_cat_re_1", "m_sleep"], "group": "10", "by": "ses"}},
            },
            "focus_groups.school10: model 'm_sleep' has no grouping factor of model 'ach_cat_re_1' "
            "(primary_school_id); its grouping factors: secondary_school_id",
        ),
    ],
    ids=["unknown-function", "repeated-term", "long-name", "focus-group"],
)
def test_start_up_refusal_is_one_line_and_nothing_runs(tmp_path, extra, message):
    result = run(tmp_path, "-n", extra=extra)
    assert result.returncode != 0
    assert message in output(result), output(result)
    assert "Traceback" not in output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_the_same_config_file_twice_gives_no_notes(tmp_path):
    result = snakemake(
        tmp_path, "-n", "--configfile", "config.yaml", "config.yaml", "--config", f"data_mirror={MIRROR}"
    )
    assert result.returncode == 0, output(result)
    assert "Note:" not in output(result)
