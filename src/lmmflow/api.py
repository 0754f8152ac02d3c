"""lmmflow's public API: lme4's ``lmer()`` and ``anova()``, and the fitted model they work on.

    >>> import lmmflow
    >>> m = lmmflow.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)   # doctest: +SKIP
    >>> print(m.summary())                                                   # doctest: +SKIP

Everything goes through the workflow's own code, so a number from the API is the number in the
workflow's tables: the data's factors as the prepare step makes them
(``lmmflow.data.prepare.r_factors``), the design (``lmmflow.model.design``), the fit with its engine
choice and independent verification (``lmmflow.fit.fit_model``), the tables
(``lmmflow.outputs.tables``), likelihood-ratio tests (``lmmflow.inference.likelihood_ratio``),
profile and bootstrap intervals (``lmmflow.inference``). Grouping columns are factors whatever
their type, as in lme4: their levels are R's labels of the values (308 and 308.0 are level "308").
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from lmmflow.data.prepare import check_finite, r_factors
from lmmflow.engine.estimates import Estimates
from lmmflow.engine.parameters import parameter_names, parameter_values
from lmmflow.fit import fit_model
from lmmflow.fitted import FittedMixedModel, Summary
from lmmflow.inference.likelihood_ratio import anova_table, ml_fit
from lmmflow.model.design import Design, build_design
from lmmflow.model.formula import ModelFormula, parse_formula
from lmmflow.model.new_data import NewDesign, new_design
from lmmflow.outputs import tables
from lmmflow.outputs.model_summary import summary_text
from lmmflow.outputs.predictions import conditional_fitted

CONFINT_METHODS = ("profile", "Wald", "boot")
ENGINE = "fast"  # the workflow's default engine (lmmflow.fit): groups-last or blocked, verified


def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, weights=None) -> FittedModel:
    """Fit the linear mixed model ``formula`` (lme4's syntax) to ``data`` by REML (``reml=False``:
    maximum likelihood), as lme4's ``lmer(formula, data, REML = reml)``.

    Rows with a missing value in a model column are dropped, as lme4 does. Text, boolean and
    categorical columns are factors (first level the reference); grouping columns are factors
    whatever their type. ``weights`` (lme4's prior weights) are not supported yet.
    """
    if weights is not None:
        raise NotImplementedError("lmer: prior weights (weights=) are not supported yet; fit without them")
    parsed = parse_formula(formula)
    frame = model_data(parsed, data)
    design = build_design(parsed, frame)
    return FittedModel(parsed, frame, design, fit_model(design, ENGINE, reml=reml), data.index)


def model_data(formula: ModelFormula, data: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``data`` the formula reads, with R's factors (``r_factors``); infinite
    values refused as lme4 does. A column the formula names but ``data`` lacks is left for
    ``build_design`` to report."""
    variables = formula.response_variables | formula.fixed_variables
    variables |= {variable for term in formula.random for variable in term.variables}
    columns = [column for column in data.columns if column in variables]
    frame = r_factors(data[columns].reset_index(drop=True))
    check_finite(frame, columns, f"formula {formula.text!r}: data")
    return frame


def anova(*models: FittedModel, names: Sequence[str] | None = None) -> pd.DataFrame:
    """lme4's ``anova(m1, m2, ...)``: likelihood-ratio tests of models fitted to the same data,
    REML fits refitted by ML first (``refit = TRUE``), GLMMs (``glmer``) as fitted, rows by
    increasing number of parameters.

    ``names`` label the rows (default ``model1``, ``model2``, ... in the order given). Columns:
    model, npar, AIC, BIC, logLik, deviance, Chisq, Df, p_value; ``table.attrs["note"]`` names
    the refitted models.
    """
    names = [f"model{i + 1}" for i in range(len(models))] if names is None else list(names)
    if len(names) != len(models):
        raise ValueError(f"anova: {len(names)} names for {len(models)} models")
    return anova_table([model.ml_fit(name) for name, model in zip(names, models)])


class FittedModel(FittedMixedModel):
    """A linear mixed model fitted by ``lmer``: lme4's accessors as attributes and methods.

    ``design`` and ``fit`` are the workflow's ``Design`` and ``Estimates`` of the model; the
    tables are those the workflow writes to results/models/<model>/ (same columns).
    """

    _tables = tables

    # restated for the types an LMM takes: a parsed formula and the engines' Estimates
    def __init__(self, formula: ModelFormula, frame: pd.DataFrame, design: Design, fit: Estimates, index: pd.Index):
        super().__init__(formula, frame, design, fit, index)

    @property
    def reml(self) -> bool:
        return bool(self.fit.reml)

    @cached_property
    def _criteria(self) -> dict[str, float]:
        n_parameters = tables.n_parameters(self.design)
        return {"logLik": self.fit.loglik} | tables.information_criteria(self.fit.loglik, n_parameters, self.n_obs)

    # -- text

    def summary(self) -> Summary:
        """The model as lme4's ``summary()`` shows it, with lmerTest's Satterthwaite t tests."""
        fitted = conditional_fitted(self.design, self.fit)
        verified = f", verified by {self.fit.verification}" if self.fit.verification else ""
        warnings = list(self.fit.warnings)
        if tables.is_singular(self.fit):
            warnings.append("boundary (singular) fit: see lme4's help('isSingular')")
        return Summary(
            summary_text(
                formula=self.formula.text,
                reml=self.reml,
                criteria={"logLik": self.loglik, "AIC": self.aic, "BIC": self.bic},
                scaled_residuals=(self.design.y - fitted) / np.sqrt(self.fit.sigma2),
                n_parameters=tables.n_parameters(self.design),
                fitted_by=f"lmmflow, engine {self.fit.engine}{verified}",
                warnings=warnings,
                **self._summary_tables(),
            )
        )

    def __repr__(self) -> str:
        method = "REML" if self.reml else "ML"
        groups = ", ".join(f"{block.label} {block.n_levels}" for block in self.design.blocks)
        return (
            f"<lmmflow linear mixed model fit by {method}: {self.formula.text}; logLik {self.loglik:.6f}; "
            f"{self.n_obs} obs, groups: {groups}; fixed effects: {self._fixed_effects_text()}>"
        )

    # -- intervals

    def confint(self, method: str = "profile", *, nsim: int = 500, seed: int | None = None) -> pd.DataFrame:
        """lme4's ``confint(m, method = ...)`` at level 0.95, one row per parameter in lme4's order
        and names (``sd_(Intercept)|Subject``, ..., ``sigma``, then the fixed effects).

        ``"profile"``: profile likelihood (``lmmflow.inference.profile_intervals``);
        ``"Wald"``: estimate -+ z SE for fixed effects, NaN for variance parameters (as lme4);
        ``"boot"``: percentile intervals of a parametric bootstrap of ``nsim`` REML refits seeded
        by ``seed`` (``lmmflow.inference.bootstrap``). Columns parameter, estimate, lower_2.5,
        upper_97.5, method (and the method's own: profile_center, n_replicates).
        """
        if method == "profile":
            from lmmflow.inference.profile_intervals import profile_intervals

            return profile_intervals(self.design, self.fit)
        if method == "Wald":
            return self._wald_intervals()
        if method == "boot":
            return self._bootstrap_intervals(nsim, seed)
        raise ValueError(f"confint: method {method!r}: expected one of {CONFINT_METHODS}")

    def _parameters(self) -> tuple[list[str], np.ndarray]:
        return parameter_names(self.design), parameter_values(self.fit.covariances, self.fit.sigma2, self.fit.beta)

    def _wald_intervals(self) -> pd.DataFrame:
        names, estimates = self._parameters()
        n_variance = len(names) - len(self.fit.beta)
        lower, upper = tables.wald_interval(
            estimates, np.concatenate([np.full(n_variance, np.nan), tables.fixed_effect_se(self.fit)])
        )
        return pd.DataFrame(
            {"parameter": names, "estimate": estimates, "lower_2.5": lower, "upper_97.5": upper, "method": "Wald"}
        )

    def _bootstrap_intervals(self, nsim: int, seed: int | None) -> pd.DataFrame:
        from lmmflow.inference.bootstrap import aggregate_bootstrap, bootstrap_replicates, replicate_seeds

        if not self.reml:
            raise NotImplementedError("confint(method='boot'): the bootstrap refits by REML; fit the model by REML")
        seed = np.random.SeedSequence().entropy if seed is None else seed
        replicates = bootstrap_replicates(self.design, self.fit, replicate_seeds(seed, nsim))
        return aggregate_bootstrap([replicates], estimate=self._parameters()[1])

    # -- predictions

    def predict(
        self, newdata: pd.DataFrame | None = None, *, random_effects: bool = True, allow_new_levels: bool = False
    ) -> pd.Series:
        """lme4's ``predict(m, newdata)``: X beta plus each row's conditional modes (Z b), or with
        ``random_effects=False`` the population level X beta (lme4's ``re.form = NA``).

        Without ``newdata``: the rows fitted (index as in the data). A grouping-factor level not
        seen in fitting raises ``NewDataError`` naming the factor and the levels, unless
        ``allow_new_levels=True``: its random effects are then zero, as lme4's
        ``allow.new.levels = TRUE``. Factor columns are matched to the fit's levels by their R
        labels; a fixed-effect factor level not seen in fitting is an error.
        """
        return self._linear_predictor(newdata, random_effects, allow_new_levels)

    def _new_design(self, newdata: pd.DataFrame) -> NewDesign:
        return new_design(self.formula, self._frame, self.design, newdata)

    # -- comparisons

    def ml_fit(self, name: str):
        """This model's entry in a likelihood-ratio test: its ML fit, a REML fit refitted by ML."""
        fit = fit_model(self.design, ENGINE, reml=False) if self.reml else self.fit
        return ml_fit(name, self.design, fit, refitted=self.reml)


def __getattr__(name: str):
    """``glmer`` and ``FittedGLMM`` (``lmmflow.glmm_api``), loaded on first use."""
    if name in ("glmer", "FittedGLMM"):
        from lmmflow import glmm_api

        return getattr(glmm_api, name)
    raise AttributeError(f"module 'lmmflow.api' has no attribute {name!r}")
