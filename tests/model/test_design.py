import numpy as np
import pandas as pd
import pytest

from lmmflow.model.design import DesignError, build_design

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
        ("Speed ~ Days + (Days | Subject)", r"response 'Speed' names column\(s\) \['Speed'\] not found"),
        ("Subject ~ Days + (1 | Days)", "response 'Subject' must be numeric"),
    ],
)
def test_bad_columns_are_named(sleepstudy, formula, fragment):
    with pytest.raises(DesignError, match=fragment):
        build_design(formula, sleepstudy)


CROSSED = "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"


def test_crossed_factors_are_accepted_and_marked_as_not_nesting(pupils):
    design = build_design(CROSSED, pupils)
    assert [(b.label, b.n_levels) for b in design.blocks] == [("primary_school_id", 50), ("secondary_school_id", 30)]
    assert design.n_random_effects == 80  # lme4's number for pupils_crossed
    assert not design.nests_in_one_factor
    assert (design.group_var, design.group_codes, design.group_levels) == (None, None, None)
    assert all(b.parent_codes is None and not b.is_nested for b in design.blocks)
    assert design.grouping_factors == ("primary_school_id", "secondary_school_id")


def test_nesting_is_read_from_the_data_not_from_the_names():
    """Classes labelled 1..3 in every school are crossed with schools; unique labels nest in them."""
    school = np.repeat(["a", "b", "c", "d"], 6)
    reused = np.tile(np.repeat(["1", "2", "3"], 2), 4)
    data = pd.DataFrame({"y": np.arange(24.0) % 5, "school": school, "class": reused})
    crossed = build_design("y ~ 1 + (1 | school) + (1 | class)", data)
    assert not crossed.nests_in_one_factor
    data["unique_class"] = data["school"] + data["class"]
    nested = build_design("y ~ 1 + (1 | school) + (1 | unique_class)", data)
    assert nested.group_var == "school" and nested.nests_in_one_factor
    classes = nested.blocks[0]
    assert (classes.label, classes.is_nested) == ("unique_class", True)
    assert [nested.group_levels[k] for k in classes.parent_codes] == [c[0] for c in classes.levels]


def test_partially_crossed_factors_do_not_nest():
    """Most classes lie in one school, one spans two: partially crossed."""
    data = pd.DataFrame({"y": np.arange(12.0) % 4, "school": list("aaaabbbbcccc"), "teacher": list("ppqqrrsspptt")})
    design = build_design("y ~ 1 + (1 | school) + (1 | teacher)", data)
    assert not design.nests_in_one_factor


def test_interaction_grouping_factor_has_the_cells_present(pupils):
    design = build_design("achievement ~ ses + (1 | primary_school_id:sex)", pupils)
    (block,) = design.blocks
    cells = pupils.groupby(["primary_school_id", "sex"], observed=True).ngroups
    assert (block.group_var, block.n_levels) == ("primary_school_id:sex", cells)
    assert design.group_var == "primary_school_id:sex"


def test_vector_valued_term_on_a_crossed_factor(pupils):
    design = build_design("achievement ~ ses + (1 + ses | secondary_school_id) + (1 | primary_school_id)", pupils)
    assert [(b.label, b.effects) for b in design.blocks] == [
        ("primary_school_id", ("Intercept",)),
        ("secondary_school_id", ("Intercept", "sesmid", "seshigh")),
    ]
    assert design.n_random_effects == 50 + 3 * 30


def test_double_bar_gives_lme4s_blocks_and_labels(pupils):
    """(ses || g) is (1 | g) + (0 + ses | g): the factor's three dummies stay one correlated block."""
    design = build_design("achievement ~ ses + (ses || primary_school_id)", pupils)
    assert [(b.label, b.effects) for b in design.blocks] == [
        ("primary_school_id", ("Intercept",)),
        ("primary_school_id.1", ("seslow", "sesmid", "seshigh")),
    ]


def test_slash_nesting_gives_lme4s_interaction_labels(pupils):
    design = build_design("achievement ~ ses + (1 | primary_school_id/ses)", pupils)
    assert [b.label for b in design.blocks] == ["ses:primary_school_id", "primary_school_id"]
    assert design.blocks[0].levels[:3] == ("low:1", "low:2", "low:3")
    assert design.group_var == "primary_school_id"


@pytest.mark.parametrize(
    "formula, fragment",
    [
        (
            "y ~ x + (1 | id)",
            r"grouping factor 'id' has 8 levels for 8 observations \(lme4: number of levels of each "
            r"grouping factor must be < number of observations\)",
        ),
        ("y ~ x + (0 | g)", r"term \(0 \| g\) has no random effect"),
        (
            "y ~ x + (1 + x | g)",
            r"term \(1 \+ x \| g\) has 8 random effects for 8 observations \(lme4: number of observations "
            r"<= number of random effects",
        ),
    ],
)
def test_what_lme4_refuses_is_refused_naming_the_factor_or_term(formula, fragment):
    data = pd.DataFrame(
        {"y": np.arange(8.0) ** 2 % 5, "x": np.arange(8.0), "id": range(8), "g": [1, 1, 2, 2, 3, 3, 4, 4]}
    )
    with pytest.raises(DesignError, match=fragment):
        build_design(formula, data)


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
