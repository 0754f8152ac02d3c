"""Many small models in batches (lmmflow.pipeline.batches): each model's outputs byte-identical to
fitting it in a job of its own, and a changed formula reruns its batch only."""

import importlib.util
import re

import pytest
import yaml
from conftest import ROOT
from workflow_helpers import output, snakemake

pytestmark = pytest.mark.workflow

MODELS = 10
SIZE = 4  # slots {m000..m003}, {m004..m007}, {m008, m009}
CHANGED = "m005"
FILES = ["fit.json", "solution.json", "attempts.csv", "fixed_effects.csv", "variance_components.csv"]
FILES += ["re_correlations.csv", "random_effects.csv", "random_coefficients.csv", "fitted.csv"]


def many_models():
    """benchmarks/many_models.py, the generator of such configurations."""
    spec = importlib.util.spec_from_file_location("many_models", ROOT / "benchmarks" / "many_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configure(workdir, size):
    config = yaml.safe_load(many_models().write_config(workdir, MODELS, seed=7, batch_size=size).read_text())
    return [f"results/models/{model}/fit.json" for model in config["models"]]


def fits_run(result):
    """The fit jobs of a successful run, by rule."""
    assert result.returncode == 0, output(result)
    return sorted(re.findall(r"^\s*(?:local)?rule (fit_\w+):", output(result), flags=re.M))


def model_files(workdir, model):
    return {name: (workdir / "results" / "models" / model / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same models in batches of SIZE and alone, clean."""
    batched, alone = tmp_path_factory.mktemp("batched"), tmp_path_factory.mktemp("alone")
    targets = configure(batched, SIZE)
    assert fits_run(snakemake(batched, *targets)) == ["fit_batch_many_0", "fit_batch_many_1", "fit_batch_many_2"]
    assert fits_run(snakemake(alone, *configure(alone, 1))) == ["fit_model"] * MODELS
    return batched, alone, targets


def test_batched_models_write_what_they_write_alone(runs):
    batched, alone, targets = runs
    for target in targets:
        model = target.split("/")[2]
        assert model_files(batched, model) == model_files(alone, model), model
        log = (batched / "logs" / "fit" / f"{model}.log").read_text()
        assert log.splitlines() and all(line.startswith(f"{model}: ") for line in log.splitlines())


def test_changing_one_formula_reruns_its_batch_only(runs):
    batched, alone, targets = runs
    untouched = {model: model_files(batched, model) for model in ["m000", "m004", "m008"]}
    clock = {target: (batched / target).stat().st_mtime_ns for target in targets}
    override = {"models": {CHANGED: {"formula": "y ~ x + (1 | pupil) + (1 | rater)"}}}
    for workdir in (batched, alone):
        (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    assert fits_run(snakemake(batched, *targets, "--configfile", batched / "override.yaml")) == ["fit_batch_many_1"]
    changed = f"results/models/{CHANGED}/fit.json"
    assert fits_run(snakemake(alone, changed, "--configfile", alone / "override.yaml")) == ["fit_model"]
    assert model_files(batched, CHANGED) == model_files(alone, CHANGED)
    assert b"(1 | rater)" in model_files(batched, CHANGED)["fit.json"]
    rerun = {target for target in targets if (batched / target).stat().st_mtime_ns != clock[target]}
    assert rerun == {f"results/models/m00{i}/fit.json" for i in range(4, 8)}
    assert {model: model_files(batched, model) for model in untouched} == untouched
