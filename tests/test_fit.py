"""Choosing and verifying the fitting path."""

import pytest
from lme4_agreement import CHAPTER_MODELS

from lmmflow import fit as fitting
from lmmflow.design import build_design
from lmmflow.smfit import UnsupportedByStatsmodels, fit_statsmodels


@pytest.fixture(scope="module", params=sorted(CHAPTER_MODELS))
def design(request):
    dataset, formula = CHAPTER_MODELS[request.param]
    return build_design(formula, request.getfixturevalue(dataset))


def test_fast_path_is_verified_and_at_least_as_good_as_statsmodels(design):
    fast = fitting.fit_model(design)
    assert fast.path == "fast"
    assert abs(fast.statsmodels_loglik - fast.loglik) <= fitting.VERIFY_TOLERANCE
    assert fast.loglik >= fit_statsmodels(design).loglik - 1e-7


def test_disagreement_with_statsmodels_falls_back_to_it(sleepstudy, monkeypatch):
    design = build_design("Reaction ~ Days + (Days | Subject)", sleepstudy)
    monkeypatch.setattr(fitting, "statsmodels_loglike", lambda design, fit: fit.loglik - 1.0)
    fit = fitting.fit_model(design)
    assert fit.path == "statsmodels"
    assert "fast path rejected" in fit.warnings[-1]


def test_a_model_statsmodels_cannot_express_is_fitted_and_says_it_is_unverified(sleepstudy, monkeypatch):
    def unsupported(design, fit):
        raise UnsupportedByStatsmodels("block 'Subject.1': second multi-effect block")

    monkeypatch.setattr(fitting, "statsmodels_loglike", unsupported)
    fit = fitting.fit_model(build_design("Reaction ~ Days + (Days | Subject)", sleepstudy))
    assert fit.path == "fast" and fit.statsmodels_loglik is None
    assert "not verified by statsmodels" in fit.warnings[-1]


def test_unknown_engine_is_refused(sleepstudy):
    with pytest.raises(ValueError, match="engine 'lme4': expected one of"):
        fitting.fit_model(build_design("Reaction ~ Days + (1 | Subject)", sleepstudy), "lme4")
