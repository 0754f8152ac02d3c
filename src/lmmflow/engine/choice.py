"""The two profiled (RE)ML engines behind one interface, and the choice between them.

* groups-last (``lmmflow.engine.groups_last``): designs whose terms all nest in one grouping factor; one
  small dense block per top-level group, batched, with an analytic gradient.
* blocked (``lmmflow.engine.blocked``): any design (crossed, partially crossed, nested); a blocked
  Cholesky factor with the largest grouping factor first and a dense block for the others.

Both compute lme4's profiled criterion and its gradient, so a fit, a profile or a bootstrap refit
may use either (``optimize_criterion`` runs the engine's optimizer); ``choose_engine`` takes the
one with less work per evaluation. The work is an estimate from the
design's dimensions, not a timing, so the choice does not depend on the machine's load.
"""

from __future__ import annotations

import numpy as np

from lmmflow.engine import blocked, groups_last
from lmmflow.engine.estimates import Estimates
from lmmflow.engine.optimizer import Attempt, minimize_criterion
from lmmflow.model.design import Design


def groups_last_work(design: Design) -> float:
    """Flops of one groups-last evaluation, roughly G d^2 (d + p + 1): d is the local dimension,
    padded to the group with the most nested levels. Infinite when the design does not nest."""
    if not design.nests_in_one_factor:
        return np.inf
    d, p = groups_last.build_layout(design).size, design.X.shape[1]
    return len(design.group_levels) * d * d * (d + p + 1)


def design_work(design: Design) -> float:
    """Flops of one evaluation on the engine ``choose_engine`` picks, roughly."""
    return min(groups_last_work(design), blocked.evaluation_work(design))


def choose_engine(design: Design) -> str:
    """groups-last where it applies and costs no more per evaluation than the blocked engine."""
    return "groups-last" if groups_last_work(design) <= blocked.evaluation_work(design) else "blocked"


def profiled_criterion(design: Design, reml: bool = True, engine: str | None = None):
    """The engine's criterion object: ``deviance(theta)``, ``solve(theta)``, ``lower_bounds``."""
    engine = engine or choose_engine(design)
    if engine == "groups-last":
        return groups_last.GroupsLastCriterion(design, reml=reml)
    return blocked.BlockedCriterion(design, reml=reml)


def criterion_of_engine(design: Design, reml: bool, engine: str):
    """The criterion of the engine that fitted (a fit's ``Estimates.engine``), so that
    re-evaluations reproduce the fit to the last bit; a statsmodels fit gets ``choose_engine``'s."""
    return profiled_criterion(design, reml, engine=engine if engine in ("groups-last", "blocked") else None)


def optimize_criterion(model, start: np.ndarray | None = None) -> tuple[np.ndarray, list[Attempt]]:
    """Minimize a criterion from ``profiled_criterion`` with its engine's optimizer."""
    if isinstance(model, blocked.BlockedCriterion):
        return blocked.optimize_theta(model, start)
    return minimize_criterion(model, start)


def fit_profiled(
    design: Design, reml: bool = True, start: np.ndarray | None = None, engine: str | None = None
) -> Estimates:
    """REML (or ML) fit on ``engine`` (default: ``choose_engine``); ``Estimates.engine`` names it."""
    engine = engine or choose_engine(design)
    if engine == "groups-last":
        return groups_last.fit_groups_last(design, reml=reml, start=start)
    return blocked.fit_blocked(design, reml=reml, start=start)
