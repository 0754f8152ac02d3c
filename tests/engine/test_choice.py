"""One interface over the two engines: the choice, the fits, and intervals for crossed models."""

import numpy as np
import pandas as pd
import pytest
from conftest import EXTENSIONS, PUPILS_CROSSED
from lme4_agreement import CHAPTER_MODELS

from lmmflow.engine.blocked import BlockedCriterion
from lmmflow.engine.choice import choose_engine, fit_profiled, profiled_criterion
from lmmflow.engine.groups_last import GroupsLastCriterion
from lmmflow.engine.parameters import parameter_names
from lmmflow.inference.bootstrap import bootstrap_replicates, replicate_seeds
from lmmflow.inference.profile_intervals import MLProfile, profile_intervals
from lmmflow.model.design import build_design


@pytest.mark.parametrize("model", sorted(CHAPTER_MODELS))
def test_chapter_models_go_to_groups_last(chapter_design, model):
    assert choose_engine(chapter_design(model)) == "groups-last"


def test_crossed_models_go_to_the_blocked_engine(pupils):
    design = build_design(PUPILS_CROSSED, pupils)
    assert choose_engine(design) == "blocked"
    assert isinstance(profiled_criterion(design), BlockedCriterion)


def test_a_nested_design_padded_by_one_large_group_goes_to_the_blocked_engine():
    """School 0 has 200 classes, the others 2: groups-last pads every school to 201 effects."""
    classes = [(0, c) for c in range(200) for _ in range(2)] + [
        (s, c) for s in range(1, 30) for c in range(2) for _ in range(3)
    ]
    data = pd.DataFrame(classes, columns=["school", "klass"])
    data["y"] = np.random.default_rng(1).normal(size=len(data))
    design = build_design("y ~ 1 + (1 | school) + (1 | school:klass)", data)
    assert design.nests_in_one_factor
    assert choose_engine(design) == "blocked"
    assert isinstance(profiled_criterion(design, engine="groups-last"), GroupsLastCriterion)


def test_ml_fit_on_either_engine_is_lme4s(chapter_design):
    oracle = EXTENSIONS["ach_cat_re_1_ML"]
    design = chapter_design("ach_cat_re_1")
    for engine in ("groups-last", "blocked"):
        fit = fit_profiled(design, reml=False, engine=engine)
        assert fit.engine == engine and fit.converged
        assert abs(fit.loglik - oracle["logLik"]) < 1e-4


@pytest.fixture(scope="module")
def crossed_fit(pupils):
    design = build_design(PUPILS_CROSSED, pupils)
    return design, fit_profiled(design)


def test_profile_intervals_of_a_crossed_model_end_where_zeta_is_1_96(crossed_fit):
    design, fit = crossed_fit
    which = ["sd_(Intercept)|secondary_school_id", "sexfemale"]
    table = profile_intervals(design, fit, which=which).set_index("parameter")
    profile = MLProfile(design)
    names = parameter_names(design)
    for name in which:
        zeta = profile.zeta_function(names.index(name))
        assert zeta(table.loc[name, "lower_2.5"]) == pytest.approx(-1.959964, abs=1e-4)
        assert zeta(table.loc[name, "upper_97.5"]) == pytest.approx(1.959964, abs=1e-4)
        assert table.loc[name, "lower_2.5"] < table.loc[name, "estimate"] < table.loc[name, "upper_97.5"]


def test_bootstrap_of_a_crossed_model_refits_on_the_blocked_engine(crossed_fit):
    design, fit = crossed_fit
    seeds = replicate_seeds(3, 2)
    first, again = bootstrap_replicates(design, fit, seeds), bootstrap_replicates(design, fit, seeds)
    assert first["converged"].all()
    pd.testing.assert_frame_equal(first, again)
    assert (first["sigma"] - np.sqrt(fit.sigma2)).abs().max() < 0.1 * np.sqrt(fit.sigma2)
