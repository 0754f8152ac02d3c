"""Choosing the engine and verifying its solution."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import EXTENSIONS, PUPILS_CROSSED
from lme4_agreement import CHAPTER_MODELS
from workflow_helpers import checkout_env

from lmmflow import fit as fitting
from lmmflow.model.design import build_design
from lmmflow.outputs import tables


@pytest.mark.parametrize("name", sorted(CHAPTER_MODELS))
def test_chapter_fits_are_groups_last_verified_by_statsmodels_and_at_least_as_good(name, chapter_fit):
    _, fit = chapter_fit(name)  # fit_model(design)
    assert (fit.engine, fit.verification) == ("groups-last", "statsmodels")
    assert fit.statsmodels_loglik == fit.verification_loglik
    assert fit.verification_difference <= fitting.VERIFY_TOLERANCE
    assert fit.loglik >= chapter_fit(name, "statsmodels")[1].loglik - 1e-7


def test_crossed_fit_is_blocked_and_verified_by_sparse_lu(pupils):
    design = build_design(PUPILS_CROSSED, pupils)
    fit = fitting.fit_model(design)
    assert (fit.engine, fit.verification) == ("blocked", "sparse LU")
    assert fit.verification_difference <= fitting.VERIFY_TOLERANCE
    assert abs(fit.loglik - EXTENSIONS["pupils_crossed"]["logLik"]) < 1e-4
    summary = tables.fit_summary(design, fit, dataset="pupils", formula=PUPILS_CROSSED)
    assert summary["grouping_factor"] is None
    assert summary["n_groups"] == {"primary_school_id": 50, "secondary_school_id": 30}
    assert (summary["engine"], summary["verification"]) == ("blocked", "sparse LU")
    assert summary["verification_difference"] == fit.verification_difference
    assert summary["statsmodels_logLik"] is None


def test_many_groups_are_verified_by_the_other_engine_not_statsmodels(sleepstudy, monkeypatch):
    """Above STATSMODELS_MAX_GROUPS groups statsmodels' per-group loop is not cheap."""
    monkeypatch.setattr(fitting, "STATSMODELS_MAX_GROUPS", 10)  # sleepstudy has 18 subjects
    fit = fitting.fit_model(build_design("Reaction ~ Days + (Days | Subject)", sleepstudy))
    assert (fit.engine, fit.verification, fit.statsmodels_loglik) == ("groups-last", "blocked", None)
    assert fit.verification_difference <= 1e-8


def test_the_verifiers_in_order(sleepstudy, pupils):
    nested = build_design("Reaction ~ Days + (Days | Subject)", sleepstudy)
    crossed = build_design(PUPILS_CROSSED, pupils)
    assert fitting.verifiers(nested, "groups-last") == ["statsmodels", "blocked", "sparse LU"]
    assert fitting.verifiers(nested, "statsmodels") == ["groups-last", "blocked", "sparse LU"]
    assert fitting.verifiers(crossed, "blocked") == ["sparse LU"]


def test_each_verifier_reproduces_the_fit(chapter_fit):
    design, fit = chapter_fit("sleep_slopes")  # fit_model(design)
    for verifier in ("statsmodels", "groups-last", "blocked", "sparse LU"):
        assert abs(fitting.reevaluate(design, fit, verifier) - fit.loglik) < 1e-8


def test_disagreement_falls_back_to_statsmodels(sleepstudy, monkeypatch):
    design = build_design("Reaction ~ Days + (Days | Subject)", sleepstudy)
    monkeypatch.setattr(fitting, "reevaluate", lambda design, fit, verifier: fit.loglik - 1.0)
    fit = fitting.fit_model(design)
    assert fit.engine == "statsmodels"
    assert "groups-last fit rejected" in fit.warnings[-1]


def test_disagreement_on_a_crossed_fit_is_kept_with_a_warning(pupils, monkeypatch):
    monkeypatch.setattr(fitting, "reevaluate", lambda design, fit, verifier: fit.loglik - 1.0)
    fit = fitting.fit_model(build_design(PUPILS_CROSSED, pupils))
    assert fit.engine == "blocked"
    assert "differs from sparse LU's" in fit.warnings[-1]


def test_a_verifier_that_cannot_run_gives_way_to_the_next(sleepstudy, monkeypatch):
    real = fitting.reevaluate

    def statsmodels_cannot(design, fit, verifier):
        if verifier == "statsmodels":
            raise fitting.CannotVerify("second multi-effect block")
        return real(design, fit, verifier)

    monkeypatch.setattr(fitting, "reevaluate", statsmodels_cannot)
    fit = fitting.fit_model(build_design("Reaction ~ Days + (Days | Subject)", sleepstudy))
    assert (fit.engine, fit.verification) == ("groups-last", "blocked")


def test_no_verifier_at_all_is_a_warning(sleepstudy, monkeypatch):
    def cannot(design, fit, verifier):
        raise fitting.CannotVerify(f"{verifier} unavailable")

    monkeypatch.setattr(fitting, "reevaluate", cannot)
    fit = fitting.fit_model(build_design("Reaction ~ Days + (Days | Subject)", sleepstudy))
    assert fit.verification is None and fit.verification_difference is None
    assert fit.warnings[-1].startswith("criterion not re-evaluated independently (statsmodels: statsmodels unavailable")


def test_a_statsmodels_fit_is_verified_by_lmmflows_engine(chapter_fit):
    _, fit = chapter_fit("sleep_slopes", "statsmodels")  # fit_model(design, "statsmodels")
    assert (fit.engine, fit.verification) == ("statsmodels", "groups-last")
    assert fit.verification_difference < 1e-6


def test_unknown_engine_is_refused(sleepstudy):
    with pytest.raises(ValueError, match="engine 'lme4': expected one of"):
        fitting.fit_model(build_design("Reaction ~ Days + (1 | Subject)", sleepstudy), "lme4")


def test_fit_module_does_not_import_statsmodels_for_large_models():
    """The fit job of a large model must not pay for importing statsmodels (~1 s)."""
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from lmmflow.model.design import build_design\n"
        "from lmmflow.fit import fit_model, STATSMODELS_MAX_GROUPS\n"
        "g = np.repeat(np.arange(STATSMODELS_MAX_GROUPS + 1), 2)\n"
        "x = np.arange(len(g)) % 3\n"
        "y = x + np.sin(g) + np.cos(7 * np.arange(len(g)))\n"
        "fit = fit_model(build_design('y ~ x + (1 | g)', pd.DataFrame(dict(y=y, x=x, g=g))))\n"
        "print(fit.verification, 'statsmodels' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=checkout_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["blocked", "False"]


def test_verification_difference_is_absolute(sleepstudy):
    fit = fitting.fit_model(build_design("Reaction ~ Days + (1 | Subject)", sleepstudy))
    fit.verification_loglik = fit.loglik + 0.5
    assert fit.verification_difference == pytest.approx(0.5)
    assert np.isfinite(fit.verification_difference)
