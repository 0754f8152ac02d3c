import numpy as np
import pandas as pd
import pytest

from lmmflow.design import DesignError, build_design

MODEL_3 = "achievement ~ ses + (1 | primary_school_id) + (1 | primary_school_id:ses)"


def test_nested_term_creates_only_cells_present(pupils):
    design = build_design(MODEL_3, pupils)
    nested, school = design.blocks  # lme4 order: more levels first
    assert (nested.label, nested.n_levels, nested.is_nested) == ("primary_school_id:ses", 148, True)
    assert (school.label, school.n_levels, school.is_nested) == ("primary_school_id", 50, False)
    assert design.n_random_effects == 198
    assert nested.levels[:3] == ("1:low", "1:mid", "1:high")
    cell = nested.levels.index("10:high")
    assert design.group_levels[nested.parent_codes[cell]] == "10"


def test_fixed_and_random_names_follow_lme4(pupils):
    design = build_design("achievement ~ ses + (0 + ses | primary_school_id)", pupils)
    assert design.fixed_names == ("Intercept", "sesmid", "seshigh")
    assert design.blocks[0].effects == ("seslow", "sesmid", "seshigh")
    assert design.n_random_effects == 150


def test_second_term_on_a_factor_is_labelled_like_lme4(sleepstudy):
    design = build_design("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleepstudy)
    assert [(b.label, b.effects) for b in design.blocks] == [("Subject", ("Intercept",)), ("Subject.1", ("Days",))]


def test_random_slope_columns_are_the_data(gpa):
    design = build_design("gpa ~ occasion + (occasion | student)", gpa)
    block = design.blocks[0]
    assert block.effects == ("Intercept", "occasion")
    np.testing.assert_array_equal(block.Z[:, 1], gpa["occasion"].to_numpy())
    assert len(design.group_levels) == 200


def test_rows_with_missing_model_values_are_dropped_and_counted(sleepstudy):
    data = sleepstudy.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    data["unused"] = np.nan
    design = build_design("Reaction ~ Days + (Days | Subject)", data)
    assert (design.n_obs, design.n_dropped) == (177, 3)


@pytest.mark.parametrize(
    "formula, fragment",
    [
        ("Reaction ~ Dayz + (Days | Subject)", r"fixed part 'Dayz' names column\(s\) \['Dayz'\]"),
        ("Reaction ~ Days + (Days | Subjekt)", r"term '\(Days \| Subjekt\)' names column\(s\) \['Subjekt'\]"),
        ("Speed ~ Days + (Days | Subject)", "response column 'Speed' not found"),
        ("Subject ~ Days + (1 | Days)", "response 'Subject' must be numeric"),
    ],
)
def test_bad_columns_are_named(sleepstudy, formula, fragment):
    with pytest.raises(DesignError, match=fragment):
        build_design(formula, sleepstudy)


def test_crossed_factors_are_refused_naming_the_term(pupils):
    with pytest.raises(DesignError, match=r"term '\(1 \| secondary_school_id\)'.*crossed"):
        build_design("achievement ~ ses + (1 | primary_school_id) + (1 | secondary_school_id)", pupils)


def test_numeric_group_ids_get_r_labels_in_numeric_order():
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "g": [10.0, 2.0, 10.0, 2.0]})
    design = build_design("y ~ 1 + (1 | g)", data)
    assert design.group_levels == ("2", "10")
    np.testing.assert_array_equal(design.group_codes, [1, 0, 1, 0])


def test_grouping_factor_with_one_level_is_refused_naming_it(sleepstudy):
    one_subject = sleepstudy[sleepstudy["Subject"] == "308"]
    with pytest.raises(DesignError, match=r"grouping factor 'Subject' has only one level \('308'\)"):
        build_design("Reaction ~ Days + (Days | Subject)", one_subject)


def test_one_level_left_after_dropping_missing_values_is_refused(sleepstudy):
    data = sleepstudy.copy()
    data.loc[data["Subject"] != "308", "Reaction"] = np.nan
    with pytest.raises(DesignError, match="grouping factor 'Subject' has only one level"):
        build_design("Reaction ~ Days + (1 | Subject)", data)


def test_large_numeric_ids_keep_distinct_labels():
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "g": [1234567.0, 1234568.0, 1234567.0, 1234568.0]})
    design = build_design("y ~ 1 + (1 | g)", data)
    assert design.group_levels == ("1234567", "1234568")
