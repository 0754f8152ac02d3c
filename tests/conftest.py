"""Shared constants and fixtures: the repository and its parsed config.yaml, the chapter's data
prepared as the workflow prepares it (with config.yaml's own spec, from the mirror), the lme4
oracle, and the chapter's models fitted once per session on each path."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from lme4_agreement import CHAPTER_MODELS

from lmmflow.data.acquire import raw_file_name
from lmmflow.data.prepare import prepare_dataset
from lmmflow.data.simulate import Dropout
from lmmflow.engine.groups_last import fit_groups_last
from lmmflow.fit import fit_model
from lmmflow.model.design import build_design

ROOT = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
# config.yaml as written (no schema defaults filled in); tests that change it use `config`.
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SHARED = ROOT.parent / "shared"
MIRROR = SHARED / "data"
ORACLE = SHARED / "reference" / "lme4_chapter.json"
CONFINT_ORACLE = SHARED / "reference" / "lme4_confint.json"
EXTENSIONS_ORACLE = SHARED / "reference" / "lme4_extensions.json"
EXTENSIONS = json.loads(EXTENSIONS_ORACLE.read_text())
# The crossed model of the extensions oracle (primary x secondary schools).
PUPILS_CROSSED = "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"
# The chapter's imbalanced setting as configured: 1..9 later occasions kept, early ones more often.
CHAPTER_DROPOUT = Dropout.from_config(CONFIG["shrinkage"]["settings"]["imbalanced"]["simulate"]["dropout"])


@pytest.fixture(scope="session")
def completed_workflow(tmp_path_factory) -> Path:
    """The working directory of one full offline run of the default target (report included),
    shared by every test that reads its outputs; made on first use."""
    from workflow_helpers import offline, output, snakemake

    workdir = tmp_path_factory.mktemp("completed_workflow")
    result = snakemake(workdir, *offline())
    assert result.returncode == 0, output(result)
    return workdir


@pytest.fixture
def config():
    """A copy of config.yaml's content to change."""
    return copy.deepcopy(CONFIG)


@pytest.fixture(scope="session")
def lme4():
    return json.loads(ORACLE.read_text())


@pytest.fixture(scope="session")
def lme4_confint():
    return json.loads(CONFINT_ORACLE.read_text())


@pytest.fixture(scope="session")
def lme4_extensions():
    """lme4 + lmerTest beyond the chapter: ML fits, anova() tables, Satterthwaite df."""
    return json.loads(EXTENSIONS_ORACLE.read_text())


def prepared(name: str):
    """Data set ``name`` as the workflow's prepare step makes it: config.yaml's spec on the mirror's copy."""
    spec = CONFIG["datasets"][name]
    data, _ = prepare_dataset(name, MIRROR / raw_file_name(spec["source"]), spec)
    return data


@pytest.fixture(scope="session")
def gpa():
    return prepared("gpa")


@pytest.fixture(scope="session")
def pupils():
    return prepared("pupils")


@pytest.fixture(scope="session")
def sleepstudy():
    return prepared("sleepstudy")


# How `chapter_fit` fits a model on each path: (design, reml) -> Estimates.
FIT_PATHS = {
    # fit_model's default: the groups-last engine, its solution re-evaluated by statsmodels
    "fast": lambda design, reml: fit_model(design, "fast", reml=reml),
    # fit_model's statsmodels engine (lmmflow.verify.statsmodels_fit.fit_statsmodels), verified by groups-last
    "statsmodels": lambda design, reml: fit_model(design, "statsmodels", reml=reml),
    # the groups-last engine alone (not verified)
    "fit_groups_last": lambda design, reml: fit_groups_last(design, reml=reml),
}


def _read_only(value):
    """Make the numpy arrays in a shared design or fit read-only, so that a test changing them fails."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, list | tuple):
        for item in value:
            _read_only(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            _read_only(getattr(value, name))
    return value


@pytest.fixture(scope="session")
def chapter_design(request):
    """``chapter_design(name)``: the design of a chapter model (lme4_agreement.CHAPTER_MODELS), built once."""
    cache = {}

    def design(name):
        if name not in cache:
            dataset, formula = CHAPTER_MODELS[name]
            cache[name] = _read_only(build_design(formula, request.getfixturevalue(dataset)))
        return cache[name]

    return design


@pytest.fixture(scope="session")
def chapter_fit(chapter_design):
    """``chapter_fit(name, path="fast", reml=True)``: (design, fit) of a chapter model on a path of
    FIT_PATHS, fitted once per session (statsmodels takes 10-30 s a model); shared, so read-only."""
    cache = {}

    def fitted(name, path="fast", reml=True):
        key = name, path, reml
        if key not in cache:
            design = chapter_design(name)
            cache[key] = design, _read_only(FIT_PATHS[path](design, reml))
        return cache[key]

    return fitted
