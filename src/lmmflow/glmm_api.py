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
from lmmflow.engine.parameters import theta_to_sdcor
from lmmflow.fitted import FittedMixedModel, Summary
from lmmflow.inference.glmm_profile_intervals import glmm_parameter_names, glmm_profile_intervals
from lmmflow.inference.likelihood_ratio import MLFit
from lmmflow.inference.profile_intervals import interval_columns
from lmmflow.model.formula import parse_formula
from lmmflow.model.new_data import NewDesign, new_design
from lmmflow.outputs import glmm_tables
from lmmflow.outputs.glmm_summary import glmm_summary_text

PREDICT_TYPES = ("link", "response")
GLMM_CONFINT_METHODS = ("profile", "Wald")


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

    def confint(self, method: str = "profile", level: float = 0.95) -> pd.DataFrame:
        """lme4's ``confint(m, method = method, level = level)``: one row per parameter in lme4's
        order and names (each term's SDs and correlations, ``sd_(Intercept)|herd``, then the
        fixed effects; a GLMM has no sigma).

        ``"profile"`` (lme4's default): profile likelihood of the Laplace (nAGQ > 1: adaptive
        Gauss-Hermite) deviance, ``lmmflow.inference.glmm_profile_intervals``; ``"Wald"``:
        estimate -+ z SE for the fixed effects, NaN for the variance parameters (as lme4).
        Columns parameter, estimate, the bounds named for their percentiles (``lower_2.5``,
        ``upper_97.5`` at 0.95), method (and profile_center for profiles).
        """
        if not 0 < level < 1:
            raise ValueError(f"confint: level {level!r}: expected a number strictly between 0 and 1")
        if method == "profile":
            return glmm_profile_intervals(self.gd, self.fit.theta, self.fit.beta, self.nAGQ, level)
        if method == "Wald":
            return self._wald_intervals(level)
        raise ValueError(f"confint: method {method!r}: expected one of {GLMM_CONFINT_METHODS}")

    def _wald_intervals(self, level: float) -> pd.DataFrame:
        names = glmm_parameter_names(self.gd)
        n_variance = len(names) - len(self.fit.beta)
        variance = theta_to_sdcor(self.fit.theta, [block.n_effects for block in self.design.blocks], 1.0)[:-1]
        half_width = ndtri(0.5 + level / 2) * np.concatenate([np.full(n_variance, np.nan), self.fit.se])
        estimate = np.concatenate([variance, self.fit.beta])
        lower, upper = interval_columns(level)
        return pd.DataFrame(
            {
                "parameter": names,
                "estimate": estimate,
                lower: estimate - half_width,
                upper: estimate + half_width,
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
