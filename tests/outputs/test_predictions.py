"""Conditional fitted values and the one-group tables (the chapter's school 10)."""

import numpy as np
import pandas as pd
import pytest

from lmmflow.outputs.predictions import conditional_fitted, fitted_values, group_predictions, group_random_effects


@pytest.fixture
def model_3(chapter_fit):
    """The chapter's model 3 (ach_cat_re_3), fitted by fit_model's default path."""
    return chapter_fit("ach_cat_re_3")


def test_fitted_adds_every_random_effect_to_the_fixed_part(model_3, pupils):
    design, fit = model_3
    school, cell = design.blocks[1], design.blocks[0]
    row = 0
    expected = (
        design.X[row] @ fit.beta + fit.modes[1][school.level_codes[row], 0] + fit.modes[0][cell.level_codes[row], 0]
    )
    assert conditional_fitted(design, fit)[row] == pytest.approx(expected, rel=1e-12)
    table = fitted_values(design, fit)
    np.testing.assert_allclose(table["fitted"] + table["residual"], pupils["achievement"], rtol=1e-12)


def test_school_10_predictions_match_lme4(model_3, pupils, lme4):
    design, fit = model_3
    table = group_predictions(pupils, {"m3": fitted_values(design, fit)}, "primary_school_id", "10", "ses")
    assert table["ses"].tolist() == ["low", "mid", "high"]
    expected = [row["model_3"] for row in lme4["school10_predictions"]]
    np.testing.assert_allclose(table["m3"], expected, atol=1e-3)


def test_predictions_that_vary_within_a_level_are_refused(pupils):
    fitted = pd.DataFrame({"row": np.arange(len(pupils)), "fitted": np.arange(len(pupils), dtype=float)})
    with pytest.raises(ValueError, match="vary within levels of 'ses'"):
        group_predictions(pupils, {"m": fitted}, "primary_school_id", "10", "ses")


def test_unknown_group_and_column_are_named(pupils):
    fitted = pd.DataFrame({"row": [0], "fitted": [1.0]})
    with pytest.raises(ValueError, match="group '999' not found"):
        group_predictions(pupils, {"m": fitted}, "primary_school_id", "999", "ses")
    with pytest.raises(ValueError, match="column 'class' not found"):
        group_predictions(pupils, {"m": fitted}, "primary_school_id", "10", "class")


def test_group_random_effects_keep_nested_cells_of_that_group_only():
    table = pd.DataFrame(
        {
            "group_var": ["g", "g", "g:h", "g:h"],
            "effect": "Intercept",
            "group": ["10", "1", "10:low", "1:low"],
            "value": 1.0,
        }
    )
    picked = group_random_effects({"m": table}, "10")
    assert picked["group"].tolist() == ["10", "10:low"]
    assert picked.columns[0] == "model"
