"""The sparse-LU evaluation of the criterion, the verifier of crossed fits."""

import numpy as np
import pytest
from conftest import EXTENSIONS, PUPILS_CROSSED
from dense_reference import dense_fit

from lmmflow.model.design import build_design
from lmmflow.verify.sparse_lu import sparse_lu_deviance


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(
    "formula",
    [
        PUPILS_CROSSED,
        "achievement ~ ses + (1 + ses | secondary_school_id) + (1 | primary_school_id)",
        "achievement ~ ses + (ses || primary_school_id) + (1 | primary_school_id:sex)",
    ],
)
def test_sparse_lu_equals_the_dense_evaluation(pupils, formula, reml):
    design = build_design(formula, pupils)
    n_theta = sum(b.n_effects * (b.n_effects + 1) // 2 for b in design.blocks)
    theta = 0.3 + 0.05 * np.arange(n_theta)
    assert abs(sparse_lu_deviance(design, theta, reml) - dense_fit(design, theta, reml)["deviance"]) < 1e-8


def test_sparse_lu_at_lme4s_theta_is_lme4s_loglik(pupils):
    oracle = EXTENSIONS["pupils_crossed"]
    design = build_design(PUPILS_CROSSED, pupils)
    assert abs(-sparse_lu_deviance(design, np.array(oracle["theta"])) / 2 - oracle["logLik"]) < 1e-6
