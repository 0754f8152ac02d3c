"""Policies for fits too large for the usual checks (issue 23): verification and Satterthwaite df."""

import numpy as np

from lmmflow import fit as fitting
from lmmflow.inference import satterthwaite
from lmmflow.model.design import build_design
from lmmflow.outputs import tables

PUPILS_CROSSED = "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"


def test_richardson_levels_follow_the_work_budget():
    assert satterthwaite.richardson_levels(1e5, 3) == satterthwaite.RICHARDSON_LEVELS  # the chapter's models
    assert satterthwaite.richardson_levels(5e8, 3) == 3  # InstEval, scalar terms (12 evaluations a level)
    assert satterthwaite.richardson_levels(5.4e8, 6) == 1  # InstEval with its vector-valued term (42)
    assert satterthwaite.richardson_levels(1.7e10, 2) == 0  # a MovieLens-1M-shaped crossing (6)


def test_a_fit_too_large_for_the_sparse_lu_says_so(pupils, monkeypatch):
    monkeypatch.setattr(fitting, "SPARSE_LU_MAX_DENSE", 10)
    fit = fitting.fit_model(build_design(PUPILS_CROSSED, pupils))
    assert fit.verification is None and fit.converged
    assert any("sparse LU: its fill is a dense block of" in warning for warning in fit.warnings), fit.warnings


def test_df_not_computed_are_nan_with_the_reason_in_fit_json(pupils, monkeypatch):
    monkeypatch.setattr(satterthwaite, "SATTERTHWAITE_SKIP_WORK", 0.0)
    design = build_design(PUPILS_CROSSED, pupils)
    fit = fitting.fit_model(design)
    table = tables.fixed_effects(design, fit)
    assert table["df"].isna().all() and table["p_value"].isna().all() and table["p_value_z"].notna().all()
    summary = tables.fit_summary(design, fit, dataset="pupils", formula=PUPILS_CROSSED)
    assert any(warning.startswith("Satterthwaite df not computed") for warning in summary["warnings"])
    assert np.all(np.isfinite(table["se"]))
