"""What the blocks print, from small results trees: single values, the comparison verdict and the
many-regressions statistics read from the tables the comparison and shrinkage jobs wrote."""

import re

import pandas as pd
import pytest
from report_helpers import model_results, write_fit

from lmmflow.inference.comparison import compare_models, verdicts
from lmmflow.inference.likelihood_ratio import MLFit, likelihood_ratio_test
from lmmflow.report import ReportError, Results
from lmmflow.report.blocks import (
    aic,
    comparison,
    diagnostics,
    likelihood_ratio_tests,
    many_regressions,
    value,
    variance_shares,
)


@pytest.mark.parametrize(
    "quantity, named",
    [("fixef.occasionx", "no fixed effect 'occasionx' in fixed_effects.csv"), ("sd.z", "0 random effects named 'z'")],
)
def test_a_value_naming_a_missing_term_is_an_error_naming_it(tmp_path, quantity, named):
    with pytest.raises(ReportError, match=f"m1: {re.escape(quantity)}: {re.escape(named)}"):
        value(model_results(tmp_path), "m1", quantity)


def comparison_results(tmp_path, aicc: dict[str, float], fixed: dict[str, list] | None = None) -> Results:
    """A comparison ``c`` of models with the given AICc (AIC one less), as the comparison job writes
    it; models with different ``fixed`` effects get ML criteria 10 AICc units above."""
    root = tmp_path / "results"
    paths = [write_fit(root, model, singular=False) / "fit.json" for model in aicc]
    fixed = fixed or {}
    summaries = {
        m: {"dataset": "d", "n_obs": 10, "fixed_effects": fixed.get(m, ["Intercept"]), "K": 4, "AICc": a}
        | {"AIC": a - 1, "logLik": -a, "n_random_effects": 5}
        for m, a in aicc.items()
    }
    ml = {m: {"AICc": a + 10, "AIC": a + 9, "logLik": -a - 5} for m, a in aicc.items()}
    table = compare_models(summaries, ml)
    (root / "comparisons").mkdir()
    table.to_csv(root / "comparisons" / "c.csv", index=False)
    verdicts(table).to_csv(root / "comparisons" / "c.verdict.csv", index=False)
    paths += [root / "comparisons" / "c.csv", root / "comparisons" / "c.verdict.csv"]
    return Results(map(str, paths), config={"comparisons": {"c": list(aicc)}})


def test_comparison_names_the_preferred_model_and_the_next(tmp_path):
    results = comparison_results(tmp_path, {"m1": 105.0, "m2": 100.0, "m3": 101.5})
    text = comparison(results)
    assert "All 3 models are fitted to the same 10 observations of `d`" in text
    assert text.index("| m2 |") < text.index("| m3 |") < text.index("| m1 |")
    assert "**Preferred model: `m2`**, with the lowest AICc; the next, `m3`, is 1.500 AICc units worse." in text


def test_a_comparison_across_fixed_effects_says_it_uses_the_ml_fits(tmp_path):
    results = comparison_results(tmp_path, {"m1": 105.0, "m2": 100.0}, fixed={"m1": ["Intercept", "x"]})
    text = comparison(results)
    assert "their fixed effects differ (or some were fitted by ML)" in text
    assert "compared by their ML fits" in text and "by ML AICc" in text and "| m1 | 4 | 115 | 5 |" in text


def test_likelihood_ratio_tests_show_the_table_and_the_ml_refits(tmp_path):
    root = tmp_path / "results"
    paths = [
        write_fit(root, m, formula=f) / "fit.json" for m, f in [("m0", "y ~ 1 + (1 | g)"), ("m1", "y ~ x + (1 | g)")]
    ]
    fits = [MLFit("m0", -20.0, 3, 10, refitted=True), MLFit("m1", -10.0, 4, 10, refitted=False)]
    (root / "lrt").mkdir()
    likelihood_ratio_test(fits).to_csv(root / "lrt" / "t.csv", index=False)
    text = likelihood_ratio_tests(Results(map(str, [*paths, root / "lrt" / "t.csv"]), config={}))
    assert "- `m0`: `y ~ 1 + (1 | g)`\n- `m1`: `y ~ x + (1 | g)`" in text
    assert "| m1 | 4 | 28 | 29.210 | -10 | 20 | 20 | 1 | <0.001 |" in text
    assert text.endswith(
        "`m0` was fitted by REML and refitted by ML for the test, as lme4's `anova()` does (`refit = TRUE`)."
    )


def test_a_tie_names_every_preferred_model(tmp_path):
    results = comparison_results(tmp_path, {"m1": 100.0 + 1e-9, "m2": 100.0})
    text = comparison(results, name="c")
    assert "**Preferred models: `m2` and `m1`**, tied at the lowest AICc (ΔAICc below 1e-06)" in text
    assert text.endswith("differently parameterized.")


def test_aic_orders_by_aic_and_names_the_better_model(tmp_path):
    text = aic(comparison_results(tmp_path, {"m1": 105.0, "m2": 100.0}), name="c")
    assert text.index("| m2 |") < text.index("| m1 |")
    assert text.endswith("**Lower AIC is better: `m2`**, by 5.000 AIC units.")


def test_many_regressions_prints_the_statistics_the_shrinkage_job_wrote(tmp_path):
    path = tmp_path / "results" / "tables" / "gpa_coefficient_statistics.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "coefficient": ["slope", "slope"],
            "estimate": ["separate", "mixed"],
            "n_groups": [200, 200],
            "mean": [0.1, 0.1],
            "sd": [0.08, 0.05],
            "min": [-0.2, -0.01],
            "max": [0.4, 0.3],
        }
    ).to_csv(path, index=False)
    config = {"shrinkage": {"settings": {"gpa": {"label": "GPA data"}}}}
    text = many_regressions(Results([str(path)], config=config), setting="gpa")
    assert text.splitlines()[0] == "| coefficient | estimate | mean | sd | min | max |"
    assert "| slope | separate regressions | 0.100 | 0.080 | -0.200 | 0.400 |" in text
    assert "| slope | mixed model |" in text
    assert text.endswith(": GPA data: per-group coefficients of 200 groups, separate regressions vs the mixed model.")


def test_diagnostics_flag_singular_fits_and_list_warnings(tmp_path):
    root = tmp_path / "results"
    paths = [
        write_fit(root, "m1") / "fit.json",
        write_fit(root, "m2", singular=False, warnings=["slow"], REML=False) / "fit.json",
        write_fit(root, "m3", singular=False, verification="sparse LU", verification_difference=2e-11) / "fit.json",
    ]
    text = diagnostics(Results(map(str, paths)))
    assert "| m1 | d | 10 | groups-last | **L-BFGS-B** | 2.000 (REML) | – | yes | **yes** | 0 |" in text
    assert "| 2.000 (ML) |" in text and "| sparse LU (2.0e-11) |" in text
    assert "Singular fits: `m1`." in text and "All fits converged." in text
    assert "Warnings:\n\n- `m2`: slow" in text


def test_variance_shares_name_each_level_largest_first(tmp_path):
    results = model_results(tmp_path)
    components = results.csv("models/m1/variance_components.csv", keep_default_na=False)
    text = variance_shares(results, "m1", residual="pupils")
    ordered = components.sort_values("var_prop", ascending=False)
    expected = [f"{100 * share:.1f}%" for share in ordered["var_prop"]]
    assert text.startswith(f"Of the total variance, {components['variance'].sum():.3f}, ")
    assert [text.index(share) for share in expected] == sorted(text.index(share) for share in expected)
    assert "pupils: **" in text and "(`x`)" in text
