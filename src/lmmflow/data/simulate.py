"""Seeded simulation of random-slope data like the chapter's GPA data.

``y = intercept + u0 + (slope + u1) * occasion + e`` with ``(u0, u1)`` bivariate normal per
student and ``e`` normal per observation. Every random number comes from the
``numpy.random.Generator`` passed in (built with ``numpy.random.default_rng(seed)`` from a seed
in the configuration), drawn in a fixed order: random effects, residuals, then dropout. The same
seed therefore gives the same data on every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Dropout:
    """Imbalance by dropout: each student keeps occasion 0 and a weighted sample of the others.

    ``count_weights[k - 1]`` is the weight of keeping ``k`` later occasions (k = 1, 2, ...);
    ``occasion_weights[j - 1]`` the weight of later occasion ``j`` when drawing which ones are kept
    (without replacement). Weights are normalized.
    """

    count_weights: tuple[float, ...]
    occasion_weights: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("count_weights", "occasion_weights"):
            weights = np.asarray(getattr(self, name), dtype=float)
            if weights.ndim != 1 or len(weights) == 0 or np.any(weights < 0) or weights.sum() <= 0:
                raise ValueError(f"dropout {name} must be non-negative weights with a positive sum, got {weights}")
        if len(self.count_weights) > len(self.occasion_weights):
            raise ValueError(
                f"dropout: up to {len(self.count_weights)} later occasions can be kept but only "
                f"{len(self.occasion_weights)} occasion weights are given"
            )
        if np.count_nonzero(self.occasion_weights) < int(np.flatnonzero(self.count_weights).max()) + 1:
            raise ValueError("dropout: fewer occasions with positive weight than the largest count kept")

    @classmethod
    def from_config(cls, config: Mapping) -> Dropout:
        return cls(tuple(config["count_weights"]), tuple(config["occasion_weights"]))


def random_effect_covariance(sd_intercept: float, sd_slope: float, correlation: float) -> np.ndarray:
    if sd_intercept < 0 or sd_slope < 0:
        raise ValueError(f"standard deviations must be non-negative, got {sd_intercept}, {sd_slope}")
    if not -1 <= correlation <= 1:
        raise ValueError(f"correlation must lie in [-1, 1], got {correlation}")
    covariance = correlation * sd_intercept * sd_slope
    return np.array([[sd_intercept**2, covariance], [covariance, sd_slope**2]])


def simulate_random_slopes(
    n_groups: int,
    n_per_group: int,
    intercept: float,
    slope: float,
    sd_intercept: float,
    sd_slope: float,
    correlation: float,
    sd_residual: float,
    rng: np.random.Generator,
    dropout: Dropout | Mapping | None = None,
) -> pd.DataFrame:
    """Columns ``student`` (categorical "1".."n_groups"), ``occasion`` (0..n_per_group-1), ``y``.

    Rows are sorted by student, then occasion. With ``dropout``, students keep occasion 0 and
    a random subset of the later ones (see :class:`Dropout`).
    """
    if n_groups < 1 or n_per_group < 1:
        raise ValueError(f"need at least one group and one occasion, got {n_groups} x {n_per_group}")
    if sd_residual < 0:
        raise ValueError(f"sd_residual must be non-negative, got {sd_residual}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
    if isinstance(dropout, Mapping):
        dropout = Dropout.from_config(dropout)
    if dropout is not None and len(dropout.occasion_weights) != n_per_group - 1:
        raise ValueError(
            f"dropout has weights for {len(dropout.occasion_weights)} later occasions but there are "
            f"{n_per_group - 1} (n_per_group = {n_per_group})"
        )

    # Cholesky of the covariance (not rng.multivariate_normal, whose SVD may differ by platform);
    # an eigen-decomposition square root covers correlations of exactly +-1.
    covariance = random_effect_covariance(sd_intercept, sd_slope, correlation)
    values, vectors = np.linalg.eigh(covariance)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    effects = rng.standard_normal((n_groups, 2)) @ root.T
    residuals = rng.normal(0.0, sd_residual, size=(n_groups, n_per_group))

    occasion = np.arange(n_per_group, dtype=float)
    y = intercept + effects[:, [0]] + (slope + effects[:, [1]]) * occasion + residuals
    keep = np.ones((n_groups, n_per_group), dtype=bool) if dropout is None else _dropout_mask(n_groups, dropout, rng)

    student_index, occasion_index = np.nonzero(keep)  # row-major: by student, then occasion
    labels = [str(i + 1) for i in range(n_groups)]
    return pd.DataFrame(
        {
            "student": pd.Categorical.from_codes(student_index, categories=labels),
            "occasion": occasion_index.astype(np.int64),
            "y": y[student_index, occasion_index],
        }
    )


def _dropout_mask(n_groups: int, dropout: Dropout, rng: np.random.Generator) -> np.ndarray:
    """Occasion 0 always; k later occasions, k drawn by ``count_weights``, which ones by
    ``occasion_weights`` without replacement.

    Weighted sampling without replacement is vectorized with Efraimidis-Spirakis keys: the k
    occasions with the largest ``log(U) / w`` have the same distribution as k successive weighted
    draws without replacement.
    """
    count_p = np.asarray(dropout.count_weights, dtype=float)
    count_p = count_p / count_p.sum()
    counts = rng.choice(np.arange(1, len(count_p) + 1), size=n_groups, p=count_p)

    weights = np.asarray(dropout.occasion_weights, dtype=float)
    with np.errstate(divide="ignore"):
        keys = np.log(rng.random((n_groups, len(weights)))) / weights  # -inf for weight 0
    rank = np.argsort(np.argsort(-keys, axis=1, kind="stable"), axis=1, kind="stable")
    later = rank < counts[:, None]
    return np.column_stack([np.ones(n_groups, dtype=bool), later])


def simulate_from_config(parameters: Mapping, seed: int) -> pd.DataFrame:
    """A setting of the configuration (``shrinkage.settings.<name>.simulate``) and its seed."""
    names = ("n_groups", "n_per_group", "intercept", "slope", "sd_intercept", "sd_slope", "correlation", "sd_residual")
    missing = [name for name in names if name not in parameters]
    if missing:
        raise ValueError(f"simulation parameters missing: {missing}")
    return simulate_random_slopes(
        **{name: parameters[name] for name in names},
        rng=np.random.default_rng(seed),
        dropout=parameters.get("dropout"),
    )


def simulate_exercise(
    n_groups: int = 50,
    n_per_group: int = 3,
    sd_intercept: float = 0.75,
    sd_slope: float = 0.25,
    sd_residual: float = 0.25,
    rng: np.random.Generator | int | None = None,
) -> pd.DataFrame:
    """The chapter's "Simulation revisited" data: y = 2 + u0 + (0.5 + u1) x + e, x ~ N(0, 1).

    Draws in the chapter's order (intercept effects, slope effects, residuals, x) from a numpy
    Generator; R's ``set.seed(1234)`` stream cannot be reproduced, so the numbers differ from R's.
    """
    rng = np.random.default_rng(rng)
    n = n_groups * n_per_group
    group = np.repeat(np.arange(n_groups), n_per_group)
    re_int = rng.normal(scale=sd_intercept, size=n_groups)
    re_slope = rng.normal(scale=sd_slope, size=n_groups)
    e = rng.normal(scale=sd_residual, size=n)
    x = rng.normal(size=n)
    y = (2 + re_int[group]) + (0.5 + re_slope[group]) * x + e
    groups = pd.Categorical.from_codes(group, categories=[str(g) for g in range(1, n_groups + 1)])
    return pd.DataFrame({"x": x, "y": y, "groups": groups})


GENERATORS = {"exercise": simulate_exercise}


def simulate_dataset(dataset: str, spec: Mapping) -> pd.DataFrame:
    """A configured simulated data set (``datasets.<name>.simulate``: generator, seed, parameters)."""
    generator = GENERATORS[spec["generator"]]
    try:
        return generator(**spec.get("parameters", {}), rng=np.random.default_rng(spec["seed"]))
    except TypeError as error:
        raise ValueError(f"datasets.{dataset}.simulate.parameters: {error}") from None
