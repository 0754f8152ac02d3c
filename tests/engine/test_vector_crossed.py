"""A vector-valued term beside crossed scalar ones on the blocked engine: InstEval, ML (issue 23)."""

import numpy as np
import pandas as pd
import pytest
from conftest import MIRROR

from lmmflow.engine.blocked import BlockedCriterion, fit_blocked
from lmmflow.engine.start_values import curvature_scales, moment_start
from lmmflow.model.design import build_design

INSTEVAL_VECTOR = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept) + (0 + service | dept)"
# lme4 1.1-31 (R 4.2.2), with a convergence warning; mixedlm 1.3 reaches -118823.529190:
#   library(lme4)
#   m <- lmer(y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept) + (0 + service | dept),
#             data = InstEval, REML = FALSE)
#   sprintf("%.6f", logLik(m))   # "-118823.529191"
LME4_LOGLIK = -118823.529191


@pytest.fixture(scope="module")
def insteval_vector():
    data = pd.read_csv(MIRROR / "InstEval.csv")
    for column in ("s", "d", "dept", "service"):  # factors in lme4's InstEval
        data[column] = pd.Categorical(
            data[column].astype(str), categories=sorted(set(data[column].astype(str)), key=int)
        )
    return build_design(INSTEVAL_VECTOR, data)


def test_amalgamated_into_one_block_per_factor(insteval_vector):
    model = BlockedCriterion(insteval_vector, reml=False)
    assert [(f.name, f.n_levels, f.q) for f in model.factors] == [("s", 2972, 1), ("d", 1128, 1), ("dept", 14, 3)]
    assert model.n_theta == 6 and model.q2 == 1128 + 3 * 14


def test_start_and_scales_cover_vector_terms(insteval_vector):
    """The moment start sets every diagonal entry (off-diagonals 0) and the scales are all positive."""
    model = BlockedCriterion(insteval_vector, reml=False)
    start, scales = moment_start(model), curvature_scales(model, moment_start(model))
    assert np.all(start[[0, 1, 2, 3, 5]] > 0) and start[4] == 0
    assert np.all(scales > 0)


def test_insteval_vector_reaches_lme4s_optimum(insteval_vector):
    """At lme4's logLik or above, converged, with few evaluations (239 of COBYQA before issue 23)."""
    fit = fit_blocked(insteval_vector, reml=False)
    assert fit.converged, fit.attempts
    assert fit.loglik >= LME4_LOGLIK - 1e-6
    assert sum(attempt["n_evaluations"] for attempt in fit.attempts) <= 30
