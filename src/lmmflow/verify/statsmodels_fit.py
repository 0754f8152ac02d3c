"""REML (or ML) fits on statsmodels' MixedLM, made robust: several optimizers, best criterion wins.

statsmodels' default optimizer chain stops short of the REML optimum on some models (on the
nested ``(1 | school:ses)`` model by 6.6 log-likelihood units), and which optimizer reaches it
differs by model. So every fit runs each optimizer from statsmodels' default start, polishes the
best solution with a tight-tolerance BFGS, keeps the best criterion (REML or ML) and checks the gradient.

Every attempt is evaluated at the GLS fixed effects computed here, not at statsmodels' own:
statsmodels (statsmodels issue 10239) replaces the inverse of a random-effect covariance with an eigenvalue
below 1e-10 by zero, which returns the coefficients of group-constant regressors as exactly 0.0
with ``converged=True``. The REML criterion itself is statsmodels' ``loglike``, evaluated with
exog_re rotated to the covariance's eigenbasis so that near-singular solutions are exact.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import block_diag
from statsmodels.regression.mixed_linear_model import (
    MixedLM,
    MixedLMParams,
    MixedLMResults,
    VCSpec,
)

from lmmflow.engine.estimates import Estimates
from lmmflow.model.design import Design, RandomBlock

# Measured on the chapter's models: each of lbfgs, bfgs and cg is the only one to reach the
# optimum on some model; powell is the derivative-free fallback (it wins a collapsed-variance
# case); Nelder-Mead was dropped: never uniquely best, often non-converged, slowest.
OPTIMIZERS = ("lbfgs", "bfgs", "cg", "powell")
POLISH = {"method": "bfgs", "gtol": 1e-8}
# Gradient norms (w.r.t. statsmodels' Cholesky-factor parameters) measured on the chapter's
# models (n ~ 1000): 1e-6..1e-5 at interior optima, up to 6e-3 at singular ones; stops short of
# the optimum showed 5e-2 and more. The log-likelihood is a sum over observations, so its
# rounding noise at the optimum grows with n: 0.02-0.17 at 120,000 observations, where an
# attempt 0.004 short of the optimum had 9.8. Hence a tolerance of 0.02 per 1,000 observations.
GRAD_TOL = 0.02
GRAD_TOL_PER_OBSERVATION = GRAD_TOL / 1000
# Attempts within this REML criterion of the best have reached the same optimum.
SAME_OPTIMUM = 1e-4
# statsmodels' REML likelihood takes log det of the (relative) variances; an exact zero variance
# is evaluated at this floor instead, which moves logLik by ~1e-20.
VARIANCE_FLOOR = 1e-20


class UnsupportedByStatsmodels(ValueError):
    """A random-effect structure that statsmodels' MixedLM cannot express faithfully."""


# --- Design -> MixedLM --------------------------------------------------------------------------


def split_blocks(design: Design) -> tuple[int | None, list[int]]:
    """Index of the block that goes to ``exog_re`` and the blocks that become variance components.

    statsmodels gives one covariance matrix per top-level group (``exog_re``); everything else
    must be an iid variance component, i.e. a single effect. The non-nested block with the most
    effects takes ``exog_re``. Crossed grouping factors have no top-level group: refused.
    """
    if design.weights is not None:
        raise UnsupportedByStatsmodels(
            "prior weights (models.<model>.weights): statsmodels' MixedLM has no prior weights; use engine: fast"
        )
    if not design.nests_in_one_factor:
        raise UnsupportedByStatsmodels(
            f"grouping factors {', '.join(design.grouping_factors)} are crossed: statsmodels' MixedLM "
            "needs every random term nested in one grouping factor"
        )
    candidates = [i for i, b in enumerate(design.blocks) if not b.is_nested]
    re_index = max(candidates, key=lambda i: design.blocks[i].n_effects, default=None)
    vc_indices = [i for i in range(len(design.blocks)) if i != re_index]
    for i in vc_indices:
        block = design.blocks[i]
        if block.n_effects > 1:
            why = (
                "a nested term with several correlated effects"
                if block.is_nested
                else "a second term with several correlated effects on the top-level factor"
            )
            raise UnsupportedByStatsmodels(
                f"random term '{block.label}' ({', '.join(block.effects)}): {why} is neither "
                "statsmodels' exog_re nor an iid variance component"
            )
    return re_index, vc_indices


def group_ids(design: Design) -> np.ndarray:
    """Top-level group codes in statsmodels' (sorted) group order."""
    return np.unique(design.group_codes)


def cells_in_group(block: RandomBlock, group: int) -> np.ndarray:
    """Indices into ``block.levels`` of the levels inside top-level group ``group``."""
    return np.flatnonzero(block.parent_codes == group)


def _vc_spec(design: Design, vc_indices: list[int]) -> VCSpec:
    """One variance component per block: per group, one column per level (cell) of the block."""
    names, colnames, mats = [], [], []
    for i in vc_indices:
        block = design.blocks[i]
        cols, group_mats = [], []
        for g in group_ids(design):
            rows = design.group_codes == g
            cells = cells_in_group(block, g)
            indicator = block.level_codes[rows, None] == cells[None, :]
            group_mats.append(indicator * block.Z[rows, :1])
            cols.append([block.levels[k] for k in cells])
        names.append(block.label)
        colnames.append(cols)
        mats.append(group_mats)
    return VCSpec(names, colnames, mats)


def to_mixedlm(design: Design, re_rotation: np.ndarray | None = None, reml: bool = True) -> MixedLM:
    """The design as a statsmodels MixedLM whose loglike and score are the REML (or ML) ones.

    ``re_rotation`` (q x q, orthogonal) replaces the ``exog_re`` columns Z by Z @ rotation, so
    that a covariance can be passed in its eigenbasis (see ``statsmodels_loglike``).
    """
    re_index, vc_indices = split_blocks(design)
    design = design.whitened()  # the offset off the response (prior weights are refused above)
    exog_re = None if re_index is None else design.blocks[re_index].Z
    if exog_re is not None and re_rotation is not None:
        exog_re = exog_re @ re_rotation
    exog_vc = _vc_spec(design, vc_indices) if vc_indices else None
    model = MixedLM(design.y, design.X, design.group_codes, exog_re=exog_re, exog_vc=exog_vc)
    # loglike and score read these, but only fit() sets them: make an unfitted model usable.
    model.cov_pen, model._freepat, model.reml = None, None, reml
    return model


# --- Evaluating a solution ------------------------------------------------------------------


def _gls_cross_products(model: MixedLM, params: MixedLMParams) -> np.ndarray:
    """[X y]' V^-1 [X y] for V = I + A D A' (relative scale), summed over groups.

    Uses V^-1 = I - A (I + D A'A)^-1 D A', which never inverts D, so a variance at or near zero
    is handled exactly (statsmodels' own GLS pseudo-inverts D there: statsmodels issue 10239).
    """
    total = 0.0
    for g in range(model.n_groups):
        a, ata = model._aex_r[g], model._aex_r2[g]
        d = block_diag(params.cov_re, np.diag(model._expand_vcomp(params.vcomp, g)))
        xy = np.column_stack([model.exog_li[g], model.endog_li[g]])
        a_xy = a.T @ xy
        total = total + xy.T @ xy - a_xy.T @ np.linalg.solve(np.eye(len(d)) + d @ ata, d @ a_xy)
    return total


@dataclass
class Gls:
    """Fixed effects at given relative variances, with lme4's vcov and the REML (or ML) residual variance."""

    beta: np.ndarray
    beta_cov: np.ndarray
    sigma2: float


def gls(model: MixedLM, params: MixedLMParams) -> Gls:
    m = _gls_cross_products(model, params)
    p = model.k_fe
    xvx_inv = np.linalg.inv(m[:p, :p])
    beta = xvx_inv @ m[:p, p]
    # lme4's sigma^2: the penalized RSS over n - p (REML) or n (ML).
    sigma2 = (m[p, p] - m[:p, p] @ beta) / (model.nobs - p if model.reml else model.nobs)
    return Gls(beta, sigma2 * xvx_inv, float(sigma2))


@dataclass
class Attempt:
    """One optimizer run, evaluated at the GLS fixed effects of its variance parameters.

    ``criterion`` is -2 logLik of the fit's criterion: the ML deviance for an ML fit.
    """

    optimizer: str
    params: MixedLMParams | None
    criterion: float
    grad_norm: float
    converged: bool
    fe_repaired: bool = False
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "criterion": self.criterion,
            "grad_norm": self.grad_norm,
            "converged": self.converged,
        }


def _run(design: Design, model: MixedLM, label: str, **fit_args) -> Attempt:
    """Fit once with statsmodels, capturing its warnings instead of letting them stream out."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = model.fit(reml=model.reml, **fit_args)
            attempt = evaluate_attempt(design, model, label, result)
        except (np.linalg.LinAlgError, ValueError) as exc:
            attempt = Attempt(label, None, np.inf, np.inf, False, warnings=[f"failed: {exc}"])
    attempt.warnings += list(dict.fromkeys(str(w.message) for w in caught))
    return attempt


def evaluate_attempt(design: Design, model: MixedLM, label: str, result) -> Attempt:
    """Criterion and gradient of a fit result at the GLS fixed effects of its variance parameters.

    ``fe_repaired`` flags a result whose own fixed effects disagree with that GLS (statsmodels issue 10239).
    """
    params = result.params_object.copy()
    fit = gls(model, params)
    repaired = not np.allclose(result.fe_params, fit.beta, rtol=1e-6, atol=1e-8 * np.sqrt(fit.sigma2))
    params.fe_params = fit.beta
    criterion = -2.0 * _loglike_in_eigenbasis(design, fit.beta, params.cov_re, params.vcomp, model.reml)
    # With fe at their GLS value, the partial gradient in the covariance parameters equals the
    # profile gradient; profile_fe=False keeps statsmodels' faulty GLS (10239) out of it.
    grad = model.score(params, profile_fe=False)[model.k_fe :]
    if not np.isfinite(criterion):
        criterion = np.inf
    return Attempt(
        label, params, float(criterion), float(np.linalg.norm(grad)), bool(result.converged), fe_repaired=repaired
    )


def _lowest_criterion(attempts: list[Attempt]) -> Attempt:
    return min(attempts, key=lambda a: a.criterion)


# --- The fit ----------------------------------------------------------------------------------


def fit_statsmodels(design: Design, optimizers: tuple[str, ...] = OPTIMIZERS, *, reml: bool = True) -> Estimates:
    """REML (or, with ``reml=False``, ML) fit on statsmodels: every optimizer from the default start,
    then a polish of the best."""
    model = to_mixedlm(design, reml=reml)
    attempts = [_run(design, model, name, method=name) for name in optimizers]
    start = _lowest_criterion(attempts)
    if start.params is None:
        raise RuntimeError(f"statsmodels MixedLM failed with every optimizer: {_failures(attempts)}")
    polish_label = f"{POLISH['method']}(gtol={POLISH['gtol']:g}) from {start.optimizer}"
    attempts.append(_run(design, model, polish_label, start_params=start.params.copy(), **POLISH))
    winner = _lowest_criterion(attempts)
    return _estimates(design, model, winner, attempts)


def _failures(attempts: list[Attempt]) -> str:
    return "; ".join(f"{a.optimizer}: {' / '.join(a.warnings)}" for a in attempts)


def _confirmed(winner: Attempt, attempts: list[Attempt], n_obs: int) -> bool:
    """Small gradient at the winner, and some optimizer that reported convergence reached it.

    A polish at a singular optimum rarely meets its tight gtol, so convergence at the optimum
    may be reported by the attempt it started from.
    """
    reached = [a for a in attempts if a.criterion - winner.criterion <= SAME_OPTIMUM]
    tolerance = max(GRAD_TOL, GRAD_TOL_PER_OBSERVATION * n_obs)
    return winner.grad_norm <= tolerance and any(a.converged for a in reached)


def _warning_summary(winner: Attempt, attempts: list[Attempt], converged: bool) -> list[str]:
    notes = [f"{winner.optimizer} (chosen): {w}" for w in winner.warnings]
    short = [a for a in attempts if a.criterion - winner.criterion > SAME_OPTIMUM]
    if short:
        gaps = ", ".join(f"{a.optimizer} (+{a.criterion - winner.criterion:.4g})" for a in short)
        notes.append(
            f"{len(short)} of {len(attempts)} optimizers stopped short of the best "
            f"criterion {winner.criterion:.6f}: {gaps}"
        )
    notes += [
        f"{a.optimizer}: statsmodels' fixed effects disagreed with GLS at its variance "
        "parameters (statsmodels issue 10239); evaluated at the GLS fixed effects"
        for a in attempts
        if a.fe_repaired
    ]
    if not converged:
        notes.append(
            f"optimum not confirmed: gradient norm {winner.grad_norm:.3g} at the best "
            "criterion, or no converged optimizer reached it"
        )
    return notes


def _results_at(model: MixedLM, params: MixedLMParams, sigma2: float) -> MixedLMResults:
    """A statsmodels results object at the winner (GLS fe), for its random-effect predictions."""
    results = MixedLMResults(model, params.get_packed(use_sqrt=False, has_fe=True), None)
    results.fe_params = params.fe_params
    results.scale = sigma2
    results.cov_re = sigma2 * params.cov_re
    results.vcomp = sigma2 * params.vcomp
    results.k_fe, results.k_re, results.k_vc = model.k_fe, model.k_re, model.k_vc
    return results


def _random_effects(design: Design, results: MixedLMResults) -> tuple[list, list]:
    """Conditional modes and SDs per block, rows in ``block.levels`` order.

    statsmodels lists a group's effects as the exog_re effects, then each variance component's
    columns (the block's cells in that group, in ``cells_in_group`` order). Its
    random_effects_cov is Var(b | y) at fixed beta and variances, which is lme4's condVar.
    """
    re_index, vc_indices = split_blocks(design)
    modes = [np.zeros((b.n_levels, b.n_effects)) for b in design.blocks]
    sds = [np.zeros((b.n_levels, b.n_effects)) for b in design.blocks]
    means, covs = results.random_effects, results.random_effects_cov
    for g in group_ids(design):
        mean, sd = means[g].to_numpy(), np.sqrt(np.diag(covs[g].to_numpy()))
        start = 0
        for i in ([] if re_index is None else [re_index]) + vc_indices:
            block = design.blocks[i]
            cells = cells_in_group(block, g)
            width = block.n_effects if i == re_index else len(cells)
            modes[i][cells] = mean[start : start + width].reshape(len(cells), -1)
            sds[i][cells] = sd[start : start + width].reshape(len(cells), -1)
            start += width
    return modes, sds


def _estimates(design: Design, model: MixedLM, winner: Attempt, attempts: list[Attempt]) -> Estimates:
    params = winner.params
    fit = gls(model, params)
    re_index, vc_indices = split_blocks(design)
    covariances = [None] * len(design.blocks)
    if re_index is not None:
        covariances[re_index] = fit.sigma2 * params.cov_re
    for j, i in enumerate(vc_indices):
        covariances[i] = np.array([[fit.sigma2 * params.vcomp[j]]])
    modes, sds = _random_effects(design, _results_at(model, params, fit.sigma2))
    converged = _confirmed(winner, attempts, design.n_obs)
    return Estimates(
        beta=fit.beta,
        beta_cov=fit.beta_cov,
        sigma2=fit.sigma2,
        covariances=covariances,
        modes=modes,
        conditional_sds=sds,
        loglik=-winner.criterion / 2.0,
        engine="statsmodels",
        optimizer=winner.optimizer,
        converged=converged,
        attempts=[a.record() for a in attempts],
        warnings=_warning_summary(winner, attempts, converged),
        reml=model.reml,
    )


# --- statsmodels' likelihood at a given solution --------------------------------------------


def statsmodels_loglike(design: Design, estimates: Estimates) -> float:
    """statsmodels' REML (or, for an ML fit, ML) log-likelihood (``MixedLM.loglike``) at ``estimates``."""
    re_index, vc_indices = split_blocks(design)
    relative = [np.asarray(c, float) / estimates.sigma2 for c in estimates.covariances]
    cov_re = np.zeros((0, 0)) if re_index is None else relative[re_index]
    vcomp = np.array([relative[i][0, 0] for i in vc_indices])
    return _loglike_in_eigenbasis(design, np.asarray(estimates.beta, float), cov_re, vcomp, estimates.reml)


def _loglike_in_eigenbasis(
    design: Design, beta: np.ndarray, cov_re: np.ndarray, vcomp: np.ndarray, reml: bool = True
) -> float:
    """statsmodels' REML (or ML) logLik at relative covariances, with exog_re rotated to cov_re's eigenbasis.

    statsmodels inverts cov_re and takes its log-determinant; near a singular solution that
    loses ~1e-6 of logLik (measured on ach_cat_re_2), and at an exactly singular one it fails.
    In the eigenbasis cov_re is diagonal, so both are exact; zero variances are evaluated at
    ``VARIANCE_FLOOR``. One model construction and one loglike call.
    """
    rotation = None
    if cov_re.size:
        eigenvalues, rotation = np.linalg.eigh(cov_re)
        cov_re = np.diag(np.maximum(eigenvalues, VARIANCE_FLOOR))
    model = to_mixedlm(design, re_rotation=rotation, reml=reml)
    params = MixedLMParams.from_components(beta, cov_re, vcomp=np.maximum(vcomp, VARIANCE_FLOOR))
    return float(model.loglike(params, profile_fe=False))
