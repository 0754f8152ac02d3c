"""Shared constants and fixtures: the repository and its parsed config.yaml, the chapter's data
prepared as the lme4 oracle assumes, and the oracle itself."""

import copy
import json
from pathlib import Path

import pandas as pd
import pyreadr
import pytest
import yaml

from lmmflow.simulate import Dropout

ROOT = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
# config.yaml as written (no schema defaults filled in); tests that change it use `config`.
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SHARED = ROOT.parent / "shared"
MIRROR = SHARED / "data"
ORACLE = SHARED / "reference" / "lme4_chapter.json"
CONFINT_ORACLE = SHARED / "reference" / "lme4_confint.json"
EXTENSIONS_ORACLE = SHARED / "reference" / "lme4_extensions.json"
# The chapter's imbalanced setting as configured: 1..9 later occasions kept, early ones more often.
CHAPTER_DROPOUT = Dropout.from_config(CONFIG["shrinkage"]["settings"]["imbalanced"]["simulate"]["dropout"])


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


def _as_factor(values: pd.Series) -> pd.Categorical:
    """Numeric ids become factors with R's labels ("1", not "1.0") in numeric order."""
    levels = sorted(values.unique())
    labels = [f"{v:g}" for v in levels]
    return pd.Categorical(values.map(dict(zip(levels, labels))), categories=labels)


@pytest.fixture(scope="session")
def gpa():
    return pyreadr.read_r(MIRROR / "gpa.RData")["gpa"]


@pytest.fixture(scope="session")
def pupils():
    data = pyreadr.read_r(MIRROR / "pupils.RData")["pupils"].rename(columns={"PUPIL": "student"})
    collapse = {"lowest": "low", "2": "low", "3": "low", "4": "mid", "5": "mid", "highest": "high"}
    data["ses"] = pd.Categorical(data["ses"].astype(str).map(collapse), categories=["low", "mid", "high"])
    data["primary_school_id"] = _as_factor(data["primary_school_id"])
    data["secondary_school_id"] = _as_factor(data["secondary_school_id"])
    return data


@pytest.fixture(scope="session")
def sleepstudy():
    data = pd.read_csv(MIRROR / "sleepstudy.csv")
    data["Subject"] = _as_factor(data["Subject"])
    return data
