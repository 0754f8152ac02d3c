"""lmmflow's public API for GLMMs: lme4's ``glmer()`` and the fitted model it returns.

    >>> m = lmmflow.glmer("decision ~ sex + (1 | iid)", speed, family="binomial")   # doctest: +SKIP

The model is the workflow's: the fit is ``lmmflow.engine.glmm`` (verified independently), the
tables those the workflow writes for a GLMM (``lmmflow.outputs.glmm_tables``); ``lmmflow.anova``
takes these models as fitted (lme4's anova of glmer fits). Same accessors as ``lmmflow.lmer``'s
``FittedModel`` where they apply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from lmmflow.engine.glmm import RESPONSE_COLUMN, GLMMDesign, GLMMFit, glmer_with_design
from lmmflow.engine.glmm_design import design_formula
from lmmflow.fitted import FittedMixedModel, Summary
from lmmflow.inference.likelihood_ratio import MLFit
from lmmflow.model.formula import parse_formula
from lmmflow.model.new_data import NewDesign, new_design
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


class FittedGLMM(FittedMixedModel):
    """A GLMM fitted by ``glmer``: ``gd`` and ``fit`` are the engine's ``GLMMDesign`` and
    ``GLMMFit``; the tables are those the workflow writes to results/models/<model>/."""

    _tables = glmm_tables

    def __init__(self, formula: str, frame: pd.DataFrame, gd: GLMMDesign, fit: GLMMFit, index: pd.Index):
        super().__init__(formula, frame, gd.design, fit, index)
        self.gd = gd

    family = property(lambda self: self.fit.family)
    link = property(lambda self: self.fit.link)
    nAGQ = property(lambda self: self.fit.nAGQ)
    deviance = property(lambda self: float(self.fit.deviance))

    @property
    def _table_design(self) -> GLMMDesign:
        return self.gd

    @property
    def _criteria(self) -> dict[str, float]:
        return {"logLik": self.fit.logLik, "AIC": self.fit.AIC, "BIC": self.fit.BIC, "AICc": self.fit.AICc}

    def summary(self) -> str:
        """The model as lme4's ``summary(glmer(...))`` shows it."""
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
                fitted_by=f"lmmflow glmm engine{verified}",
                warnings=list(fit.warnings),
                **self._summary_tables(),
            )
        )

    def __repr__(self) -> str:
        return (
            f"<lmmflow {self.family} ({self.link}) mixed model fit by maximum likelihood: {self.formula}; "
            f"logLik {self.loglik:.6f}; {self.n_obs} obs; fixed effects: {self._fixed_effects_text()}>"
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
        eta = self._linear_predictor(newdata, random_effects, allow_new_levels)
        if type == "link":
            return eta
        return pd.Series(self.gd.family.link.inverse(eta.to_numpy())[0], index=eta.index, name=eta.name)

    def _new_design(self, newdata: pd.DataFrame) -> NewDesign:
        learnt = self._frame.assign(**{RESPONSE_COLUMN: self._fitted_rows()})
        return new_design(parse_formula(design_formula(self.formula)), learnt, self.design, newdata)

    @property
    def _estimates(self) -> glmm_tables.EstimatesView:
        return glmm_tables.EstimatesView(self.gd, self.fit)

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
