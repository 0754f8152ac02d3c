"""What the fitted models of ``lmmflow.lmer`` and ``lmmflow.glmer`` share: the criteria, the
workflow's tables of the model, the pieces of a summary, and predictions.

Each kind of model has its own table functions, of the same names (``lmmflow.outputs.tables``
for ``FittedModel``, ``lmmflow.outputs.glmm_tables`` for ``FittedGLMM``); a subclass names its
module and the model's criteria, and says how it evaluates new rows. The rest it states itself:
the summary, the intervals and its entry in ``lmmflow.anova``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

import pandas as pd

from lmmflow.model.design import Design
from lmmflow.model.new_data import NewDataError, NewDesign
from lmmflow.outputs.predictions import linear_predictor

if TYPE_CHECKING:  # only for annotations
    from lmmflow.engine.estimates import Estimates
    from lmmflow.engine.glmm_results import GLMMFit
    from lmmflow.model.formula import ModelFormula


class Summary(str):
    """The text of a fitted model's ``summary()``: prints as itself, also at a prompt."""

    def __repr__(self) -> str:
        return str(self)


class FittedMixedModel(ABC):
    """A fitted mixed model: ``design`` is the workflow's ``Design`` of it (X, the random blocks,
    the rows used), ``fit`` the engine's estimates; the tables are those the workflow writes to
    results/models/<model>/ (same columns)."""

    # the kind's table functions, each called with (``_table_design``, ``fit``)
    _tables: ClassVar[ModuleType]

    def __init__(
        self,
        formula: ModelFormula | str,
        frame: pd.DataFrame,
        design: Design,
        fit: Estimates | GLMMFit,
        index: pd.Index,
    ):
        self.formula = formula
        self.design = design
        self.fit = fit
        self._frame = frame  # the model's columns as fitted, for predictions on new data
        self._index = index

    @property
    def _table_design(self):
        """What the table functions take with the fit: the ``Design`` itself unless the kind says otherwise."""
        return self.design

    @property
    @abstractmethod
    def _criteria(self) -> dict[str, float]:
        """logLik, AIC, BIC and AICc of the fit, as lme4 (and MuMIn's AICc) computes them."""

    # -- criteria

    @property
    def n_obs(self) -> int:
        return self.design.n_obs

    @property
    def loglik(self) -> float:
        """The log-likelihood at the optimum, lme4's ``logLik`` (of an LMM fitted by REML, the
        REML log-likelihood)."""
        return float(self._criteria["logLik"])

    @property
    def aic(self) -> float:
        return float(self._criteria["AIC"])

    @property
    def bic(self) -> float:
        return float(self._criteria["BIC"])

    @property
    def aicc(self) -> float:
        return float(self._criteria["AICc"])

    # -- tables (each the workflow's CSV of the same name)

    @cached_property
    def fixed_effects(self) -> pd.DataFrame:
        """term, value, se, then an LMM's t, df, p_value (Satterthwaite), p_value_z, or a GLMM's
        z, p_value (Wald z test, as glmer's summary); lower_2.5, upper_97.5."""
        return self._tables.fixed_effects(self._table_design, self.fit)

    @cached_property
    def variance_components(self) -> pd.DataFrame:
        """group, effect, variance, sd, var_prop; an LMM's residual last (a GLMM has no residual row)."""
        return self._tables.variance_components(self._table_design, self.fit)

    @cached_property
    def re_correlations(self) -> pd.DataFrame:
        """group, effect_1, effect_2, correlation."""
        return self._tables.re_correlations(self._table_design, self.fit)

    @cached_property
    def random_effects(self) -> pd.DataFrame:
        """Conditional modes and SDs (lme4's ``ranef(condVar = TRUE)``): group_var, effect, group,
        value, se, lower_2.5, upper_97.5."""
        return self._tables.random_effects(self._table_design, self.fit)

    @cached_property
    def random_coefficients(self) -> pd.DataFrame:
        """lme4's ``coef``: group_var, effect, group, value."""
        return self._tables.random_coefficients(self._table_design, self.fit)

    # -- text

    def _summary_tables(self) -> dict:
        """What every summary shows of the model's tables, groups and observations."""
        return {
            "variance_components": self.variance_components,
            "re_correlations": self.re_correlations,
            "n_groups": {block.label: block.n_levels for block in self.design.blocks},
            "n_obs": self.n_obs,
            "fixed_effects": self.fixed_effects,
        }

    def _fixed_effects_text(self) -> str:
        """The fixed effects as ``repr`` lists them: ``Intercept 251.405, Days 10.4673``."""
        return ", ".join(f"{name} {value:.6g}" for name, value in zip(self.design.fixed_names, self.fit.beta))

    # -- predictions

    @abstractmethod
    def _new_design(self, newdata: pd.DataFrame) -> NewDesign:
        """The model's design on the rows of ``newdata`` (``lmmflow.model.new_data.new_design``)."""

    @property
    def _estimates(self):
        """What ``linear_predictor`` reads of the fit (beta, the conditional modes)."""
        return self.fit

    def _linear_predictor(
        self, newdata: pd.DataFrame | None, random_effects: bool, allow_new_levels: bool
    ) -> pd.Series:
        """X beta + offset plus, unless ``random_effects`` is False, each row's conditional modes
        (Z b), on the rows fitted (index as in the data) or on ``newdata``; an unseen grouping
        level raises ``NewDataError`` unless ``allow_new_levels`` (its random effects are zero)."""
        if newdata is None:
            X, Z = self.design.X, [block.Z for block in self.design.blocks]
            codes = [block.level_codes for block in self.design.blocks]
            index, offset = self._index[self.design.rows], self.design.linear_offset()
        else:
            new = self._new_design(newdata)
            if random_effects and not allow_new_levels:
                _refuse_new_levels(new)
            X, Z, codes, index, offset = new.X, new.Z, new.level_codes, newdata.index, new.offset
        values = linear_predictor(X, Z, codes if random_effects else None, self._estimates) + offset
        return pd.Series(values, index=index, name="prediction")


def _refuse_new_levels(new: NewDesign) -> None:
    """``NewDataError`` naming each grouping factor's levels not seen in fitting, if any."""
    if new.new_levels:
        found = "; ".join(f"grouping factor {factor!r}: {levels}" for factor, levels in new.new_levels.items())
        raise NewDataError(
            f"predict: new levels not seen in fitting ({found}); pass allow_new_levels=True "
            "to predict them with zero random effects"
        )
