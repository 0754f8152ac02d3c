"""lmmflow's public API for GLMMs: lme4's ``glmer()`` and the fitted model it returns.

    >>> m = lmmflow.glmer("decision ~ sex + (1 | iid)", speed, family="binomial")   # doctest: +SKIP

The model is the workflow's: the fit is ``lmmflow.engine.glmm`` (verified independently), the
tables those the workflow writes for a GLMM (``lmmflow.outputs.glmm_tables``); ``lmmflow.anova``
takes these models as fitted (lme4's anova of glmer fits). Same accessors as ``lmmflow.lmer``'s
``FittedModel`` where they apply.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import ndtri

from lmmflow.engine.glmm import RESPONSE_COLUMN, GLMMDesign, GLMMFit, glmer_with_design
from lmmflow.engine.glmm_design import design_formula
from lmmflow.inference.likelihood_ratio import MLFit
from lmmflow.model.formula import parse_formula
from lmmflow.model.new_data import NewDataError, new_design
from lmmflow.outputs import glmm_tables
from lmmflow.outputs.glmm_summary import glmm_summary_text

PREDICT_TYPES = ("link", "response")


def glmer(
    formula: str, data: pd.DataFrame, *, family: str, link: str | None = None, nAGQ: int = 1, weights=None
) -> FittedGLMM:
    """Fit the generalized linear mixed model ``formula`` to ``data`` as lme4's
    ``glmer(formula, data, family = family(link), nAGQ = nAGQ, weights = weights)``.

    ``family``: "binomial" (0/1, TRUE/FALSE, a two-level factor, ``cbind(successes, failures)``,
    or a proportion with ``weights`` the trials) or "poisson" (counts; ``offset(log(t))`` in the
    formula). ``weights``: a column name or an array. Rows with a missing model value are dropped.
    """
    from lmmflow.api import model_data

    frame = model_data(parse_formula(formula), data)
    if isinstance(weights, str) and weights in data.columns:  # prior weights as given, not as a model column
        frame[weights] = data[weights].to_numpy()
    gd, fit = glmer_with_design(formula, frame, family=family, link=link, nAGQ=nAGQ, weights=weights)
    return FittedGLMM(formula, frame, gd, fit, data.index)


class FittedGLMM:
    """A GLMM fitted by ``glmer``: ``gd`` and ``fit`` are the engine's ``GLMMDesign`` and
    ``GLMMFit``; the tables are those the workflow writes to results/models/<model>/."""

    def __init__(self, formula: str, frame: pd.DataFrame, gd: GLMMDesign, fit: GLMMFit, index: pd.Index):
        self.formula = formula
        self.gd = gd
        self.fit = fit
        self.design = gd.design
        self._frame = frame
        self._index = index

    family = property(lambda self: self.fit.family)
    link = property(lambda self: self.fit.link)
    nAGQ = property(lambda self: self.fit.nAGQ)
    n_obs = property(lambda self: self.design.n_obs)
    loglik = property(lambda self: float(self.fit.logLik))
    aic = property(lambda self: float(self.fit.AIC))
    bic = property(lambda self: float(self.fit.BIC))
    aicc = property(lambda self: float(self.fit.AICc))
    deviance = property(lambda self: float(self.fit.deviance))

    @cached_property
    def fixed_effects(self) -> pd.DataFrame:
        """term, value, se, z, p_value (Wald z test, as glmer's summary), lower_2.5, upper_97.5."""
        return glmm_tables.fixed_effects(self.gd, self.fit)

    @cached_property
    def variance_components(self) -> pd.DataFrame:
        """group, effect, variance, sd, var_prop (no residual row)."""
        return glmm_tables.variance_components(self.gd, self.fit)

    @cached_property
    def re_correlations(self) -> pd.DataFrame:
        return glmm_tables.re_correlations(self.gd, self.fit)

    @cached_property
    def random_effects(self) -> pd.DataFrame:
        """Conditional modes and SDs (lme4's ``ranef(condVar = TRUE)``)."""
        return glmm_tables.random_effects(self.gd, self.fit)

    @cached_property
    def random_coefficients(self) -> pd.DataFrame:
        return glmm_tables.random_coefficients(self.gd, self.fit)

    def summary(self) -> str:
        """The model as lme4's ``summary(glmer(...))`` shows it."""
        from lmmflow.api import Summary

        gd, fit = self.gd, self.fit
        pearson = (gd.y - fit.mu) / np.sqrt(gd.family.variance(fit.mu) / gd.weights)
        verified = ", verified by an independent Laplace re-evaluation" if fit.verification.get("agrees") else ""
        return Summary(
            glmm_summary_text(
                formula=self.formula,
                family=self.family,
                link=self.link,
                nAGQ=self.nAGQ,
                criteria={"AIC": self.aic, "BIC": self.bic, "logLik": self.loglik},
                n_parameters=fit.npar,
                pearson_residuals=pearson,
                variance_components=self.variance_components,
                re_correlations=self.re_correlations,
                n_groups={block.label: block.n_levels for block in self.design.blocks},
                n_obs=self.n_obs,
                fixed_effects=self.fixed_effects,
                fitted_by=f"lmmflow glmm engine{verified}",
                warnings=list(fit.warnings),
            )
        )

    def __repr__(self) -> str:
        fixed = ", ".join(f"{name} {value:.6g}" for name, value in zip(self.design.fixed_names, self.fit.beta))
        return (
            f"<lmmflow {self.family} ({self.link}) mixed model fit by maximum likelihood: {self.formula}; "
            f"logLik {self.loglik:.6f}; {self.n_obs} obs; fixed effects: {fixed}>"
        )

    def confint(self, method: str = "Wald", level: float = 0.95) -> pd.DataFrame:
        """lme4's ``confint(m, method = "Wald")``: fixed effects -+ z SE (profile and bootstrap
        intervals of GLMMs are not available yet)."""
        if method != "Wald":
            raise NotImplementedError(f"confint: method {method!r} is not available for GLMMs yet; use 'Wald'")
        z = ndtri(0.5 + level / 2)
        table = self.fixed_effects
        return pd.DataFrame(
            {
                "parameter": table["term"],
                "estimate": table["value"],
                f"lower_{100 * (1 - level) / 2:g}": table["value"] - z * table["se"],
                f"upper_{100 * (1 + level) / 2:g}": table["value"] + z * table["se"],
                "method": "Wald",
            }
        )

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        type: str = "link",
        random_effects: bool = True,
        allow_new_levels: bool = False,
    ) -> pd.Series:
        """lme4's ``predict(m, newdata, type = type)``: the linear predictor (``"link"``, lme4's
        default) or the mean (``"response"``: probability, expected count), with each row's
        conditional modes or, ``random_effects=False``, at the population level (``re.form = NA``);
        offsets included. Unseen grouping levels as ``lmmflow.lmer``'s ``predict``."""
        if type not in PREDICT_TYPES:
            raise ValueError(f"predict: type {type!r}: expected one of {PREDICT_TYPES}")
        eta, index = self._linear_predictor(newdata, random_effects, allow_new_levels)
        values = eta if type == "link" else self.gd.family.link.inverse(eta)[0]
        return pd.Series(values, index=index, name="prediction")

    def _linear_predictor(self, newdata, random_effects: bool, allow_new_levels: bool):
        from lmmflow.outputs.predictions import linear_predictor

        if newdata is None:
            X, Z = self.design.X, [block.Z for block in self.design.blocks]
            codes, offset = [block.level_codes for block in self.design.blocks], self.gd.offset
            index = self._index[self.design.rows]
        else:
            learnt = self._frame.assign(**{RESPONSE_COLUMN: self._fitted_rows()})
            new = new_design(parse_formula(design_formula(self.formula)), learnt, self.design, newdata)
            if new.new_levels and random_effects and not allow_new_levels:
                found = "; ".join(f"grouping factor {factor!r}: {levels}" for factor, levels in new.new_levels.items())
                raise NewDataError(
                    f"predict: new levels not seen in fitting ({found}); pass allow_new_levels=True "
                    "to predict them with zero random effects"
                )
            X, Z, codes, index, offset = new.X, new.Z, new.level_codes, newdata.index, new.offset
        values = linear_predictor(X, Z, codes if random_effects else None, glmm_tables.EstimatesView(self.gd, self.fit))
        return values + offset, index

    def _fitted_rows(self) -> np.ndarray:
        """0 on the rows fitted, NaN elsewhere: the model frame learnt from the fitted rows."""
        marker = np.full(len(self._frame), np.nan)
        marker[self.design.rows] = 0.0
        return marker

    def ml_fit(self, name: str) -> MLFit:
        """This model's entry in ``lmmflow.anova``: its log-likelihood as fitted (no refit)."""
        return MLFit(
            name=name, loglik=self.loglik, npar=self.fit.npar, n_obs=self.n_obs, response=self.gd.response_text
        )
