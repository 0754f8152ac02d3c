"""The template's blocks: each turns results into markdown, called as ``block(results, **arguments)``
for a placeholder ``<!-- lmmflow:NAME key=value ... -->``; BLOCKS maps the names to them."""

from lmmflow.report.blocks.comparisons import (
    aic,
    comparison,
    comparison_models,
    focus_predictions,
    focus_random_effects,
)
from lmmflow.report.blocks.diagnostics import diagnostics
from lmmflow.report.blocks.figures import figure, interactive
from lmmflow.report.blocks.glmm import glmm_value, odds_ratio_table
from lmmflow.report.blocks.lrt import likelihood_ratio_tests
from lmmflow.report.blocks.models import (
    coefficient_check,
    correlation_matrix,
    fixed_effects,
    intervals,
    model_summary,
    singular_note,
    value,
    variance_components,
    variance_shares,
)
from lmmflow.report.blocks.shrinkage import many_regressions, negative_slopes, shrinkage_sd, shrinkage_settings

BLOCKS = {
    "fixed_effects": fixed_effects,
    "variance_components": variance_components,
    "correlation_matrix": correlation_matrix,
    "singular_note": singular_note,
    "value": value,
    "variance_shares": variance_shares,
    "model_summary": model_summary,
    "comparison_models": comparison_models,
    "comparison": comparison,
    "focus_random_effects": focus_random_effects,
    "focus_predictions": focus_predictions,
    "coefficient_check": coefficient_check,
    "intervals": intervals,
    "aic": aic,
    "likelihood_ratio_tests": likelihood_ratio_tests,
    "many_regressions": many_regressions,
    "shrinkage_sd": shrinkage_sd,
    "shrinkage_settings": shrinkage_settings,
    "negative_slopes": negative_slopes,
    "figure": figure,
    "interactive": interactive,
    "diagnostics": diagnostics,
    "odds_ratios": odds_ratio_table,
    "glmm_value": glmm_value,
}
