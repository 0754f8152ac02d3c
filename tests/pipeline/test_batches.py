"""Which models share a fit job (lmmflow.pipeline.batches), and the fit job's command
(lmmflow.pipeline.fit_job), without Snakemake."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import CONFIG_SCHEMA, MIRROR
from workflow_helpers import checkout_env

from lmmflow.data.prepare import data_dictionary, write_prepared
from lmmflow.pipeline import fit_job
from lmmflow.pipeline.batches import dataset_rows, formula_terms, model_size, plan_fit_jobs, plan_from_config
from lmmflow.pipeline.config import validate

SCHEMA = yaml.safe_load(CONFIG_SCHEMA.read_text())


def models(*datasets):
    """Models m0, m1, ... on the given data sets, in that order."""
    return {f"m{i}": {"dataset": dataset, "formula": "y ~ x + (1 | g)"} for i, dataset in enumerate(datasets)}


def test_small_models_fill_fixed_slots_per_data_set():
    specs = models("a", "a", "a", "b", "a", "b", "a")
    specs = dict(reversed(specs.items()))  # name order, not the configuration's (--configfile reorders)
    plan = plan_fit_jobs(specs, dict.fromkeys(specs, 100), size=2, own_job_above=1000)
    # a's models are its 1st..5th: slots {m0, m1}, {m2, m4}, {m6}; b's: {m3, m5}
    assert plan.batches == {"a_0": ["m0", "m1"], "a_1": ["m2", "m4"], "b_0": ["m3", "m5"]}
    assert plan.solo == ["m6"]  # alone in its slot: a job of its own


def test_large_and_unknown_models_keep_a_job_of_their_own():
    specs = models("a", "a", "a", "a")
    sizes = {"m0": 100, "m1": 5000, "m2": None, "m3": 100}
    plan = plan_fit_jobs(specs, sizes, size=4, own_job_above=1000)
    assert plan.batches == {"a_0": ["m0", "m3"]}
    assert plan.solo == ["m1", "m2"]


def test_a_model_leaving_its_batch_moves_no_other():
    specs = models(*["a"] * 9)
    before = plan_fit_jobs(specs, dict.fromkeys(specs, 100), size=3, own_job_above=1000)
    grown = dict.fromkeys(specs, 100) | {"m4": 5000}  # m4's new formula makes it large
    after = plan_fit_jobs(specs, grown, size=3, own_job_above=1000)
    assert after.batches == before.batches | {"a_1": ["m3", "m5"]}
    assert after.solo == ["m4"]


def test_size_one_fits_every_model_alone():
    specs = models("a", "a", "b")
    plan = plan_fit_jobs(specs, dict.fromkeys(specs, 100), size=1, own_job_above=1000)
    assert plan.batches == {} and plan.solo == ["m0", "m1", "m2"]


def test_terms_count_fixed_and_random_columns():
    assert formula_terms("y ~ x + (1 | g)") == 2 + 1
    assert formula_terms("y ~ 1 + (1 + x | g) + (1 | h)") == 1 + 2 + 1
    assert formula_terms("y ~ x + z + (x || g)") == 3 + 2  # (1 | g) + (0 + x | g)
    assert formula_terms("y ~ 0 + x + (0 + x | g)") == 1 + 1
    assert model_size("y ~ x + (1 | g)", 100) == 300
    assert model_size("y ~ x + (1 | g)", None) is None


def test_rows_at_start_up(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("y,x\n" + "1,2\n" * 30)
    assert dataset_rows({"source": {"path": str(csv)}}, None, at_most=1000) == 30
    assert dataset_rows({"source": {"path": str(csv)}}, None, at_most=5) > 5  # counting stops early
    csv.write_text("y,x\n1,2\n3,4")  # no newline at the end
    assert dataset_rows({"source": {"path": str(csv)}}, None, at_most=1000) == 2
    assert dataset_rows({"simulate": {"generator": "exercise", "seed": 1}}, None, at_most=1000) == 150
    simulated = {"generator": "exercise", "seed": 1, "parameters": {"n_groups": 10}}
    assert dataset_rows({"simulate": simulated}, None, at_most=1000) == 30
    assert dataset_rows({"source": {"path": str(tmp_path / "absent.csv")}}, None, at_most=1000) is None
    pinned = {"url": "https://example.org/x/sleepstudy.csv", "sha256": "0" * 64}
    assert dataset_rows({"source": pinned}, None, at_most=1000) is None  # not at hand: unknown
    assert dataset_rows({"source": pinned}, str(MIRROR), at_most=1000) == 180  # the mirror's copy


def test_plan_from_the_configuration(config):
    """config.yaml: sleepstudy (from the mirror) and the simulated data's models in batches, the
    .RData data sets' models (rows unknown at start-up) alone."""
    config["data_mirror"] = str(MIRROR)
    validate(config, SCHEMA)
    assert config["batches"] == {"size": 10, "own_job_above": 20000}
    plan = plan_from_config(config)
    assert plan.batches == {
        "sleepstudy_0": ["sleep_slopes", "sleep_uncorrelated"],
        "sim_exercise_0": ["sim_ints_only", "sim_with_slopes"],
    }
    assert "gpa_mixed" in plan.solo and "pupils_crossed" in plan.solo
    config["data_mirror"] = None  # sleepstudy not at hand
    assert list(plan_from_config(config).batches) == ["sim_exercise_0"]


@pytest.fixture
def prepared_data(tmp_path, monkeypatch):
    """A prepared two-group data set in ``tmp_path``, the working directory."""
    monkeypatch.chdir(tmp_path)
    data = pd.DataFrame(
        {
            "y": [1.0, 2.1, 2.9, 4.2, 5.1, 5.8, 7.2, 8.1],
            "x": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
            "g": pd.Categorical(list("aaaabbbb")),
        }
    )
    write_prepared(data, data_dictionary("d", data, {"path": "d.csv"}), "d.csv", "d.schema.json")
    (tmp_path / "logs" / "fit").mkdir(parents=True)
    return tmp_path


def test_data_a_model_cannot_use_is_refused_before_any_fit(prepared_data, capsys):
    specs = {
        "good": {"dataset": "d", "formula": "y ~ x + (1 | g)", "engine": "fast", "reml": True},
        "bad": {"dataset": "d", "formula": "y ~ nothere + (1 | g)", "engine": "fast", "reml": True},
        "counts": {"dataset": "d", "formula": "x ~ 1 + (1 | g)", "engine": "fast", "reml": True, "family": "binomial"},
    }
    for model in specs:
        (prepared_data / "results" / "models" / model).mkdir(parents=True)
    assert fit_job.main(["d.csv", "d.schema.json", json.dumps(specs)]) == 1
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 2, printed  # each refused model in one line, all at once
    assert printed[0].startswith("model 'bad': ") and "nothere" in printed[0]
    assert printed[1].startswith("model 'counts' (data set 'd'): ") and "'x'" in printed[1]
    assert not list((prepared_data / "results" / "models").rglob("*.*"))  # no fit ran, nothing written
    assert "Traceback" in (prepared_data / "logs/fit/bad.log").read_text()
    assert "not fitted: another model of this job was refused" in (prepared_data / "logs/fit/good.log").read_text()


def test_a_failing_fit_is_named_in_one_line_and_the_others_tried(prepared_data, capsys, monkeypatch):
    import lmmflow.fit

    fit_and_write = lmmflow.fit.fit_and_write

    def fail_first(prepared, **settings):
        if settings["outputs"]["fit"].startswith("results/models/first/"):
            raise FloatingPointError("the optimizer diverged")
        fit_and_write(prepared, **settings)

    monkeypatch.setattr(lmmflow.fit, "fit_and_write", fail_first)
    specs = {
        model: {"dataset": "d", "formula": "y ~ x + (1 | g)", "engine": "fast", "reml": True}
        for model in ("first", "second")
    }
    for model in specs:
        (prepared_data / "results" / "models" / model).mkdir(parents=True)
    assert fit_job.main(["d.csv", "d.schema.json", json.dumps(specs)]) == 1
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed == ["model 'first': FloatingPointError: the optimizer diverged"]
    # the models after a failing one are still fitted; Snakemake removes a failed job's outputs
    assert (prepared_data / "results/models/second/fit.json").exists()
    assert "Traceback" in (prepared_data / "logs/fit/first.log").read_text()
    assert (prepared_data / "logs/fit/second.log").read_text().startswith("second: fitted in ")


def test_each_log_has_its_models_warnings(prepared_data):
    """A warning printed for one model is printed again for the next (Python shows a warning
    once per place in the code): each log is what the model prints alone. In a process of its
    own: pytest records warnings instead of printing them."""
    specs = {model: {"dataset": "d", "formula": "y ~ x + (1 | g)", "engine": "fast", "reml": True} for model in "ab"}
    program = (
        "import sys, warnings, lmmflow.fit\n"
        "def fit(data, **_):\n"
        "    warnings.warn('boundary (singular) fit', UserWarning)\n"
        "lmmflow.fit.fit_and_write = fit\n"
        "from lmmflow.pipeline import fit_job\n"
        "sys.exit(fit_job.main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", program, "d.csv", "d.schema.json", json.dumps(specs)]
    subprocess.run(command, check=True, env=checkout_env())
    for model in "ab":
        log = (prepared_data / "logs" / "fit" / f"{model}.log").read_text()
        assert "UserWarning: boundary (singular) fit" in log and f"{model}: fitted in " in log


def test_batch_settings_are_checked_at_start_up(config):
    from lmmflow.pipeline.config import ConfigError

    config["batches"] = {"size": 0}
    with pytest.raises(ConfigError, match=r"batches\.size"):
        validate(config, SCHEMA)
    config["batches"] = {"size": 4}
    validate(config, SCHEMA)
    assert config["batches"] == {"size": 4, "own_job_above": 20000}
