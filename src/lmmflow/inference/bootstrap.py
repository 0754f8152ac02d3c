"""lme4's parametric bootstrap of a fit, run in seeded chunks, and its percentile intervals.

``bootstrap_replicates`` is lme4's ``bootMer(type = "parametric", use.u = FALSE)``: new random
effects and residuals are simulated from the fitted (REML) model and the model is refitted by
REML. Replicate i always uses ``SeedSequence(base).spawn(n)[i]``, so a set of replicates is the
same however it is split into chunks (separate jobs). ``aggregate_bootstrap`` gives boot's
percentile intervals (``boot.ci(type = "perc")``, which lme4's ``confint(method = "boot")``
uses) from the chunks alone. Parameters are on lme4's scale (``lmmflow.engine.parameters``): a
correlation with a zero-SD effect is NaN, as in lme4, and drops out of its percentiles as boot
drops non-finite replicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import ndtri  # the normal quantile, without scipy.stats' ~1 s import

from lmmflow.engine.choice import fit_profiled
from lmmflow.engine.estimates import Estimates
from lmmflow.engine.parameters import covariances_to_theta, parameter_names, parameter_values, safe_cholesky
from lmmflow.model.design import Design

LEVEL = 0.95


def replicate_seeds(base_seed: int, n_replicates: int) -> list[np.random.SeedSequence]:
    """One independent stream per replicate, all derived from one base seed."""
    return np.random.SeedSequence(base_seed).spawn(n_replicates)


def chunk_replicates(n_replicates: int, n_chunks: int, chunk: int) -> np.ndarray:
    """Replicate indices of chunk ``chunk`` (0-based): contiguous, sizes differing by at most one."""
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{n_chunks - 1}")
    return np.array_split(np.arange(n_replicates), n_chunks)[chunk]


def simulate_response(design: Design, fit: Estimates, rng: np.random.Generator) -> np.ndarray:
    """lme4's ``simulate(fit, use.u = FALSE)``: new random effects and residuals from the fitted
    model, the offset added and each residual's SD sigma / sqrt(w) under prior weights w."""
    y = design.X @ fit.beta + design.linear_offset()
    for block, cov in zip(design.blocks, fit.covariances):
        effects = rng.standard_normal((block.n_levels, block.n_effects)) @ safe_cholesky(cov).T
        y = y + np.einsum("ij,ij->i", np.asarray(block.Z, float), effects[np.asarray(block.level_codes)])
    residuals = np.sqrt(fit.sigma2) * rng.standard_normal(design.n_obs)
    return y + (residuals if design.weights is None else residuals / np.sqrt(design.weights))


def bootstrap_replicates(
    design: Design,
    estimates: Estimates,
    seeds: Sequence[np.random.SeedSequence | int],
    replicate_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Simulate y* from the fit and refit by REML once per seed; one row of lme4-named parameters each.

    Columns: replicate, converged, then ``parameter_names(design)`` (``parameter_values`` of the
    refit). ``replicate_ids`` (default 0..len(seeds)-1) label the rows, so chunks can be put back together.
    A refit that fails or does not converge keeps its row with ``converged`` False.
    """
    ids = list(range(len(seeds))) if replicate_ids is None else list(replicate_ids)
    if len(ids) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(ids)} replicate ids")
    names = parameter_names(design)
    start = covariances_to_theta(estimates.covariances, estimates.sigma2)  # every path reports covariances
    rows = []
    for replicate, seed in zip(ids, seeds):
        rng = np.random.default_rng(seed)
        simulated = replace(design, y=simulate_response(design, estimates, rng))
        try:
            refit = fit_profiled(simulated, start=start)
            values = parameter_values(refit.covariances, refit.sigma2, refit.beta)
            converged = bool(refit.converged)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            values, converged = np.full(len(names), np.nan), False
        rows.append([replicate, converged, *values])
    return pd.DataFrame(rows, columns=["replicate", "converged", *names])


def bootstrap_chunk(
    design: Design, estimates: Estimates, base_seed: int, n_replicates: int, n_chunks: int, chunk: int
) -> pd.DataFrame:
    """The replicates of one chunk of a bootstrap of ``n_replicates`` seeded by ``base_seed``
    (columns as ``bootstrap_replicates``)."""
    ids = chunk_replicates(n_replicates, n_chunks, chunk)
    seeds = replicate_seeds(base_seed, n_replicates)
    return bootstrap_replicates(design, estimates, [seeds[i] for i in ids], replicate_ids=ids)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """boot's ``norm.inter`` percentile ends (``boot.ci(type = "perc")``): order statistic (R+1)a,
    interpolated on the normal quantile scale when (R+1)a is not an integer."""
    t = np.sort(np.asarray(values, float)[np.isfinite(values)])
    n = len(t)
    if n == 0:
        return np.nan, np.nan
    out = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        rk = (n + 1) * alpha
        k = int(np.floor(rk + 1e-9 * rk))
        if abs(k - rk) <= 1e-9 * rk and 0 < k <= n:
            out.append(t[k - 1])
        elif k <= 0:
            out.append(t[0])
        elif k >= n:
            out.append(t[-1])
        else:
            q, q_k, q_k1 = ndtri([alpha, k / (n + 1), (k + 1) / (n + 1)])
            out.append(t[k - 1] + (q - q_k) / (q_k1 - q_k) * (t[k] - t[k - 1]))
    return float(out[0]), float(out[1])


def aggregate_bootstrap(
    tables: Iterable[pd.DataFrame], level: float = LEVEL, estimate: np.ndarray | None = None
) -> pd.DataFrame:
    """Percentile intervals from the union of bootstrap chunks (replicate ids must not repeat).

    Columns: parameter, estimate, lower_2.5 and upper_97.5 (named for level 0.95), method,
    n_replicates (finite values). Non-converged replicates are kept, as lme4's bootMer keeps fits
    with convergence warnings; failed ones (NaN) are dropped. ``estimate``, the fit's values in
    the chunks' parameter order (``lmmflow.engine.parameters.parameter_values``), fills that column.
    """
    union = pd.concat(list(tables), ignore_index=True).sort_values("replicate", ignore_index=True)
    repeated = union["replicate"][union["replicate"].duplicated()].unique()
    if len(repeated):
        raise ValueError(f"replicates {list(repeated)[:10]} appear in more than one chunk")
    names = [c for c in union.columns if c not in ("replicate", "converged")]
    estimate = np.full(len(names), np.nan) if estimate is None else np.asarray(estimate, dtype=float)
    if len(estimate) != len(names):
        raise ValueError(f"{len(estimate)} estimates for the chunks' {len(names)} parameters {names}")
    rows = []
    for name, value in zip(names, estimate):
        values = union[name].to_numpy(dtype=float)
        lower, upper = percentile_interval(values, level)
        rows.append(
            {
                "parameter": name,
                "estimate": float(value),
                "lower_2.5": lower,
                "upper_97.5": upper,
                "method": "bootstrap (percentile)",
                "n_replicates": int(np.isfinite(values).sum()),
            }
        )
    return pd.DataFrame(rows)
