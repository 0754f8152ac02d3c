"""A fit's solution.json: written at full precision, read back into the same fit without optimizing."""

from dataclasses import replace

import numpy as np
import pytest

from lmmflow.model.design import build_design
from lmmflow.outputs.solution import estimates_from_solution, read_solution, solution_of, write_solution


@pytest.fixture
def slopes(chapter_fit):
    return chapter_fit("sleep_slopes", "fit_groups_last")


def test_solution_round_trips_to_the_last_bit(slopes, tmp_path):
    _, fit = slopes
    path = tmp_path / "solution.json"
    write_solution(solution_of(fit), path)
    solution = read_solution(path)
    assert solution.theta.tolist() == fit.theta.tolist()
    assert solution.beta.tolist() == fit.beta.tolist()
    assert (solution.sigma2, solution.criterion) == (fit.sigma2, -2 * fit.loglik)
    assert (solution.reml, solution.engine, solution.block_sizes) == (True, "groups-last", (2,))
    for ours, theirs in zip(solution.covariances(), fit.covariances):
        np.testing.assert_array_equal(ours, theirs)


def test_the_fit_is_rebuilt_exactly_without_optimizing(slopes, tmp_path):
    design, fit = slopes
    path = tmp_path / "solution.json"
    write_solution(solution_of(fit), path)
    rebuilt = estimates_from_solution(design, read_solution(path))
    for field in ("beta", "beta_cov", "sigma2", "loglik", "theta"):
        np.testing.assert_array_equal(getattr(rebuilt, field), getattr(fit, field), err_msg=field)
    for name in ("covariances", "modes", "conditional_sds"):
        for ours, theirs in zip(getattr(rebuilt, name), getattr(fit, name)):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
    assert (rebuilt.engine, rebuilt.optimizer, rebuilt.converged) == (fit.engine, fit.optimizer, fit.converged)


def test_a_statsmodels_solution_gets_theta_from_its_covariances(chapter_fit):
    design, fit = chapter_fit("sleep_slopes", "statsmodels")
    assert fit.theta is None
    rebuilt = estimates_from_solution(design, solution_of(fit))
    assert rebuilt.engine == "statsmodels"
    assert rebuilt.loglik == pytest.approx(fit.loglik, abs=1e-6)
    np.testing.assert_allclose(rebuilt.beta, fit.beta, rtol=1e-6)


def test_a_solution_of_other_data_or_another_model_is_refused(slopes, sleepstudy):
    design, fit = slopes
    shifted = replace(design, y=design.y * 1.01)
    with pytest.raises(ValueError, match="not fitted to this design"):
        estimates_from_solution(shifted, solution_of(fit))
    intercepts = build_design("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(ValueError, match=r"sizes \(2,\) and 2 fixed effects; the design has \(1,\) and 2"):
        estimates_from_solution(intercepts, solution_of(fit))
