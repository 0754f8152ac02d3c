"""A binomial GLMM's blocks (lmmflow.report.blocks.glmm): odds ratios with lme4's default, profile,
intervals when the model's profile.csv is among the job's inputs, else Wald ones, the table
saying which; the participants' SD and its profile interval in the prose."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from report_helpers import CONTEXT, write_fit

from lmmflow.report import ReportError, Results, fill_template
from lmmflow.report.blocks import glmm_value, odds_ratio_table
from lmmflow.report.formatting import number
from lmmflow.report.results import MissingResult
from lmmflow.report.template import SECTION

FIXED = pd.DataFrame(
    {
        "term": ["Intercept", "sexMale", "sameraceYes", "attractive_sc"],
        "value": [-0.6, 0.25, 0.15, 0.5],
        "se": [0.1, 0.12, 0.08, 0.015],
        "z": [-6.0, 2.08, 1.88, 33.3],
        "p_value": [2e-9, 0.037, 0.06, 1e-200],
        "lower_2.5": [-0.796, 0.015, -0.007, 0.471],
        "upper_97.5": [-0.404, 0.485, 0.307, 0.529],
    }
)
COMPONENTS = pd.DataFrame(
    {"group": ["iid"], "effect": ["Intercept"], "variance": [2.56], "sd": [1.6], "var_prop": [1.0]}
)
# The same fit's profile intervals (lme4's names, its order: SD first): asymmetric, unlike Wald.
PROFILE = pd.DataFrame(
    {
        "parameter": ["sd_(Intercept)|iid", "(Intercept)", "sexMale", "sameraceYes", "attractive_sc"],
        "estimate": [1.6, -0.6, 0.25, 0.15, 0.5],
        "lower_2.5": [1.45, -0.83, -0.02, -0.01, 0.468],
        "upper_97.5": [1.78, -0.41, 0.52, 0.31, 0.533],
        "method": ["profile"] * 5,
        "profile_center": [1.6, -0.6, 0.25, 0.15, 0.5],
    }
)


def glmm_results(tmp_path, profile: pd.DataFrame | None = PROFILE, declared: bool = True) -> Results:
    """Model ``sd`` as the fit job and the profile rule write it; its profile.csv (if any) among
    the inputs only if ``declared``, as the report rule declares it for ``intervals.models``."""
    root = tmp_path / "results"
    folder = write_fit(
        root,
        "sd",
        formula="decision ~ sex + samerace + attractive_sc + (1 | iid)",
        family="binomial",
        link="logit",
        n_obs=100,
        n_groups={"iid": 20},
        singular=False,
        fixed_effects=list(FIXED["term"]),
    )
    FIXED.to_csv(folder / "fixed_effects.csv", index=False)
    COMPONENTS.to_csv(folder / "variance_components.csv", index=False)
    figure = root / "figures" / "speed_dating_probabilities.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"png")
    paths = [*folder.iterdir(), figure]
    if profile is not None:
        (root / "intervals" / "sd").mkdir(parents=True)
        profile.to_csv(root / "intervals" / "sd" / "profile.csv", index=False)
        if declared:
            paths.append(root / "intervals" / "sd" / "profile.csv")
    return Results(map(str, paths), config={}, figures_dir=tmp_path / "build" / "figures")


def rows(text: str) -> dict[str, list[str]]:
    """The pipe table's cells by term (header row under "term")."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return {row[0]: row[1:] for row in cells}


def expected(lower, upper) -> dict[str, list[str]]:
    return {
        term: [number(np.exp(value)), number(np.exp(lo)), number(np.exp(hi))]
        for term, value, lo, hi in zip(FIXED["term"], FIXED["value"], lower, upper)
    }


def test_the_odds_ratios_have_the_profile_intervals_when_the_model_was_profiled(tmp_path):
    text = odds_ratio_table(glmm_results(tmp_path), "sd")
    table = rows(text)
    assert table["term"] == ["odds_ratio", "lower_2.5 (profile)", "upper_97.5 (profile)", "p_value"]
    profile = PROFILE.set_index("parameter")
    lme4 = ["(Intercept)", "sexMale", "sameraceYes", "attractive_sc"]
    want = expected(profile.loc[lme4, "lower_2.5"], profile.loc[lme4, "upper_97.5"])
    assert {term: cells[:3] for term, cells in table.items() if term != "term"} == want
    assert table["sexMale"] == [number(np.exp(0.25)), number(np.exp(-0.02)), number(np.exp(0.52)), "0.037"]
    assert "profile-likelihood 95% intervals, lme4's default `confint`" in text and "Wald 95% interval" not in text
    assert "p-values from Wald z tests" in text


def test_the_odds_ratios_fall_back_to_wald_intervals_without_a_profile(tmp_path):
    text = odds_ratio_table(glmm_results(tmp_path, profile=None), "sd")
    table = rows(text)
    assert table["term"] == ["odds_ratio", "lower_2.5 (Wald)", "upper_97.5 (Wald)", "p_value"]
    want = expected(FIXED["lower_2.5"], FIXED["upper_97.5"])
    assert {term: cells[:3] for term, cells in table.items() if term != "term"} == want
    assert "Wald 95% intervals (`sd` has no profile intervals: it is not in `intervals.models`)" in text
    assert "profile-likelihood" not in text


def test_a_profile_the_job_was_not_given_is_not_read(tmp_path):
    """Only declared inputs count: a profile.csv left on disk (the model since dropped from
    intervals.models) is not the report's."""
    text = odds_ratio_table(glmm_results(tmp_path, declared=False), "sd")
    assert "lower_2.5 (Wald)" in text and rows(text)["Intercept"][1] == number(np.exp(-0.796))


def test_a_custom_caption_keeps_the_kind_in_the_column_headers(tmp_path):
    text = odds_ratio_table(glmm_results(tmp_path), "sd", caption="Odds ratios.")
    assert text.endswith("\n\n: Odds ratios.") and "| lower_2.5 (profile) | upper_97.5 (profile) |" in text


def test_a_profile_of_another_fit_is_an_error_naming_the_model(tmp_path):
    other = PROFILE.assign(estimate=PROFILE["estimate"] * 1.1)
    with pytest.raises(ReportError, match="odds_ratios model=sd: .*not the same fit"):
        odds_ratio_table(glmm_results(tmp_path, profile=other), "sd")


def test_the_sd_interval_comes_from_the_profile(tmp_path):
    results = glmm_results(tmp_path)
    assert glmm_value(results, "sd", "sd") == "1.600"
    assert glmm_value(results, "sd", "sd_lower") == "1.450"
    assert glmm_value(results, "sd", "sd_upper", digits="2") == "1.78"
    assert glmm_value(results, "sd", "sd_interval", digits="2") == (
        "The SD's profile-likelihood 95% interval (lme4's default `confint`) is 1.45 to 1.78."
    )


def test_without_a_profile_the_sd_interval_sentence_is_empty_and_its_bounds_missing(tmp_path):
    results = glmm_results(tmp_path, profile=None)
    assert glmm_value(results, "sd", "sd_interval") == ""
    with pytest.raises(MissingResult, match="results/intervals/sd/profile.csv"):
        glmm_value(results, "sd", "sd_lower")
    with pytest.raises(ReportError, match="sd_lower, sd_upper, sd_interval, odds_ratio.TERM"):
        glmm_value(results, "sd", "sd_middle")


def speed_dating_section(model: str) -> str:
    """The template's speed-dating section, for model ``model``."""
    text = (ROOT / "reports" / "report.qmd").read_text()
    (section,) = [m.group(0) for m in SECTION.finditer(text) if "a yes/no outcome (speed dating)" in m.group(1)]
    return section.replace("model=speed_dating", f"model={model}")


@pytest.mark.parametrize("profiled", [True, False])
def test_the_report_section_is_kept_and_states_its_interval_kind(tmp_path, profiled):
    results = glmm_results(tmp_path, profile=PROFILE if profiled else None)
    filled, left_out = fill_template(speed_dating_section("sd"), results, CONTEXT)
    assert left_out == [] and "lmmflow:" not in filled
    prose = " ".join(filled.split())
    table = rows(filled)
    if profiled:
        assert table["Intercept"][1:3] == [number(np.exp(-0.83)), number(np.exp(-0.41))]
        assert re.search(r"\(SD 1\.600\)\. The SD's profile-likelihood 95% interval .* is 1\.450 to 1\.780\.", prose)
    else:
        assert table["Intercept"][1:3] == [number(np.exp(-0.796)), number(np.exp(-0.404))]
        assert "(SD 1.600). For a woman" in prose and "profile-likelihood" not in prose
