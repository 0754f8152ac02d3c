"""A fitted GLMM (``GLMMFit``: everything lme4's summary(), VarCorr(), ranef(condVar = TRUE),
coef() and fitted() give), built from the optimum by ``summarize``, and lme4's anova() table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lmmflow.engine.families import GLMMError
from lmmflow.engine.parameters import lower_triangle_indices, theta_to_factors
from lmmflow.engine.pirls import PIRLS_MAX_ITER, PIRLS_TOLERANCE, GLMMProblem, State
from lmmflow.model.design import Design


@dataclass
class GLMMFit:
    """A fitted GLMM, everything lme4's ``summary(glmer(...))`` and ``ranef(condVar = TRUE)`` give."""

    formula: str
    family: str
    link: str
    nAGQ: int
    n: int
    ngrps: dict
    fixed_names: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    theta_names: tuple[str, ...]
    varcorr: list[dict]
    logLik: float  # on the usual scale (nAGQ > 1: with the binomial / Poisson normalising constant)
    deviance_lme4: float  # sum of squared deviance residuals at the modes (lme4's deviance())
    objective: float  # the minimized criterion (Laplace deviance; nAGQ > 1: lme4's AGQ deviance)
    npar: int
    u: np.ndarray
    ranef: dict  # grouping label -> DataFrame of modes (levels x effects)
    ranef_sd: dict  # grouping label -> DataFrame of conditional SDs
    eta: np.ndarray
    mu: np.ndarray
    optimizer: dict
    verification: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    logLik_lme4: float | None = None  # lme4 1.1-31's nAGQ > 1 value (no normalising constant)
    hessian: np.ndarray | None = None
    theta_diagonal: np.ndarray | None = None  # which entries of theta are diagonal (SD-like)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    @property
    def z(self) -> np.ndarray:
        return self.beta / self.se

    @property
    def p_values(self) -> np.ndarray:
        return 2 * stats.norm.sf(np.abs(self.z))

    @property
    def is_singular(self) -> bool:
        """lme4's ``isSingular(m, tol = 1e-4)``: a diagonal entry of theta below 1e-4."""
        return bool(np.any(np.abs(self.theta[self.theta_diagonal]) < 1e-4))

    @property
    def AIC(self) -> float:
        return -2 * self.logLik + 2 * self.npar

    @property
    def BIC(self) -> float:
        return -2 * self.logLik + self.npar * math.log(self.n)

    @property
    def AICc(self) -> float:
        return self.AIC + 2 * self.npar * (self.npar + 1) / max(self.n - self.npar - 1, 1)

    @property
    def deviance(self) -> float:
        """-2 logLik (lme4's anova 'deviance' column)."""
        return -2 * self.logLik

    def coefficients(self) -> pd.DataFrame:
        """lme4's ``summary()`` table: Estimate, Std. Error, z value, Pr(>|z|)."""
        return pd.DataFrame(
            {"Estimate": self.beta, "Std. Error": self.se, "z value": self.z, "Pr(>|z|)": self.p_values},
            index=list(self.fixed_names),
        )

    def coef(self) -> dict:
        """lme4's ``coef()``: per grouping factor, fixed effects plus that factor's modes."""
        out = {}
        fixed = pd.Series(self.beta, index=list(self.fixed_names))
        for label, modes in self.ranef.items():
            table = pd.DataFrame(np.tile(self.beta, (len(modes), 1)), index=modes.index, columns=list(self.fixed_names))
            for column in modes.columns:
                table[column] = (fixed.get(column, 0.0) + modes[column]).to_numpy()
            out[label] = table
        return out

    def fitted(self, scale: str = "response") -> np.ndarray:
        return self.mu if scale == "response" else self.eta

    def record(self) -> dict:
        """What a fit.json stores about the fit: criterion, optimizer runs, checks."""
        return {
            "family": self.family,
            "link": self.link,
            "nAGQ": self.nAGQ,
            "logLik": self.logLik,
            "logLik_lme4_scale": self.logLik_lme4,
            "objective": self.objective,
            "optimizer": self.optimizer,
            "is_singular": self.is_singular,
            "verification": self.verification,
            "warnings": list(self.warnings),
        }


def summarize(problem: GLMMProblem, params, nAGQ: int, record: dict) -> GLMMFit:
    gd, S = problem.gd, problem.structure
    nt = problem.n_theta
    theta, beta = params[:nt], params[nt:]
    agq = record.get("agq")
    nagq0 = record.get("nagq0")
    if nagq0 is not None:
        st, g = nagq0["state"], nagq0["gradient"]
    elif agq is None:
        st, g = problem.solution_state(np.asarray(params, float))
    else:
        st = problem.state(theta, beta)
        g = problem.gradient(st)
    problem.last_converged = st.iterations < PIRLS_MAX_ITER
    if agq is not None:
        H = agq["hessian"]
        objective = agq["objective"]
        saturated = -0.5 * float(np.sum(gd.family.saturated_aic_terms(gd.y, gd.weights, gd.trials)))
        logLik_lme4 = -0.5 * objective
        logLik = logLik_lme4 + saturated
        grad = agq["gradient"]
    else:
        H = record["newton"]["hessian"]
        objective = st.deviance
        logLik = -0.5 * objective
        logLik_lme4 = None
        grad = g
    vcov, vcov_note = fixed_vcov(H, nt) if nagq0 is None else (nagq0["vcov"], "RX'RX^-1 of the joint PIRLS (nAGQ = 0)")
    if nagq0 is not None:
        grad = g
    if vcov is None:
        vcov = np.full((problem.p, problem.p), np.nan)
    try:
        scaled = np.linalg.solve(H, grad)
    except np.linalg.LinAlgError:
        scaled = np.full_like(grad, np.nan)
    inv = S.inverse_parts(st.factor)
    ranef, ranef_sd = conditional_modes(problem, st, inv)
    npar = nt + problem.p
    optimizer = {
        "method": (
            "lme4's nAGQ = 0 stage: theta by Nelder-Mead / Brent, u and beta by joint PIRLS"
            if nAGQ == 0
            else "lmmflow: BFGS on the exact gradient of the Laplace deviance + Newton polish"
            + (f", then quasi-Newton on the nAGQ = {nAGQ} deviance (finite-difference gradient)" if nAGQ > 1 else "")
        ),
        "runs": record["runs"],
        "newton_steps": record["newton"]["steps"],
        "agq_runs": (agq or {}).get("runs"),
        "n_deviance_evaluations": problem.n_evaluations,
        "n_gradients": problem.n_gradients,
        "pirls_iterations": problem.pirls_iterations,
        "pirls_tolerance": PIRLS_TOLERANCE,
        "pirls_not_converged_runs": problem.pirls_failures,
        "pirls_converged_at_solution": problem.last_converged,
        "max_abs_gradient": float(np.max(np.abs(grad))),
        "max_abs_scaled_gradient": float(np.max(np.abs(scaled))),
        "hessian_positive_definite": bool(np.all(np.linalg.eigvalsh(H) > 0)),
        "vcov": vcov_note,
    }
    dev_resid = float(np.sum(gd.family.unit_deviance(gd.y, st.mu, gd.weights)))
    return GLMMFit(
        formula=gd.formula,
        family=gd.family.name,
        link=gd.family.link.name,
        nAGQ=nAGQ,
        n=S.n,
        ngrps={b.label: b.n_levels for b in gd.design.blocks},
        fixed_names=gd.fixed_names,
        beta=beta.copy(),
        vcov=vcov,
        theta=theta.copy(),
        theta_names=theta_names(gd.design),
        varcorr=varcorr(gd.design, theta),
        logLik=logLik,
        deviance_lme4=dev_resid,
        objective=objective,
        npar=npar,
        u=st.u.copy(),
        ranef=ranef,
        ranef_sd=ranef_sd,
        eta=st.eta.copy(),
        mu=st.mu.copy(),
        optimizer=optimizer,
        logLik_lme4=logLik_lme4,
        hessian=H,
        theta_diagonal=np.isfinite(problem.lower[:nt]),
    )


def fixed_vcov(H: np.ndarray, n_theta: int):
    """lme4's default glmer vcov: the beta block of (H / 2)^-1, H the Hessian of the deviance
    over (theta, beta)."""
    try:
        V = np.linalg.inv(H / 2.0)
    except np.linalg.LinAlgError:
        return None, "Hessian singular"
    V = V[n_theta:, n_theta:]
    return 0.5 * (V + V.T), "inverse of half the Hessian of the Laplace deviance over (theta, beta), beta block"


def conditional_modes(problem: GLMMProblem, st: State, inv) -> tuple[dict, dict]:
    """lme4's ranef (b = Lambda u) and condVar SDs per term (sigma = 1 for GLMMs)."""
    S, design = problem.structure, problem.gd.design
    T = S.factors(st.theta)
    ranef, sds = {}, {}
    for b, (block, Tb) in enumerate(zip(design.blocks, T)):
        q = block.n_effects
        ub = st.u[S.offsets[b] : S.offsets[b + 1]].reshape(block.n_levels, q)
        modes = ub @ Tb.T
        if b == 0:
            blocks_inv = inv.A11
        else:
            start = S.offsets[b] - S.n1q1
            idx = start + np.arange(block.n_levels)[:, None] * q + np.arange(q)
            blocks_inv = inv.A22[idx[:, :, None], idx[:, None, :]]
        cov = np.einsum("ij,ljk,mk->lim", Tb, blocks_inv, Tb)
        sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
        names = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        ranef[block.label] = pd.DataFrame(modes, index=list(block.levels), columns=names)
        sds[block.label] = pd.DataFrame(sd, index=list(block.levels), columns=names)
    return ranef, sds


def theta_names(design: Design) -> tuple[str, ...]:
    """lme4's names of theta: ``g.(Intercept)``, ``g.x.(Intercept)``, ``g.x``."""
    names = []
    for block in design.blocks:
        effects = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        rows, cols = lower_triangle_indices(len(effects))
        for i, j in zip(rows, cols):
            names.append(
                f"{block.group_var}.{effects[i]}" if i == j else f"{block.group_var}.{effects[i]}.{effects[j]}"
            )
    return tuple(names)


def varcorr(design: Design, theta: np.ndarray) -> list[dict]:
    """lme4's ``as.data.frame(VarCorr(m))`` rows (no residual row for binomial / Poisson)."""
    rows_out = []
    factors = theta_to_factors(np.asarray(theta, float), [b.n_effects for b in design.blocks])
    for block, T in zip(design.blocks, factors):
        cov = T @ T.T
        effects = ["(Intercept)" if e == "Intercept" else e for e in block.effects]
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        for i, e in enumerate(effects):
            rows_out.append(
                {"grp": block.label, "var1": e, "var2": None, "vcov": float(cov[i, i]), "sdcor": float(sd[i])}
            )
        for j in range(len(effects)):
            for i in range(j + 1, len(effects)):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else float("nan")
                rows_out.append(
                    {
                        "grp": block.label,
                        "var1": effects[j],
                        "var2": effects[i],
                        "vcov": float(cov[i, j]),
                        "sdcor": float(corr),
                    }
                )
    return rows_out


def glmm_anova(fits: dict[str, GLMMFit]) -> pd.DataFrame:
    """lme4's ``anova(m0, m1, ...)`` for GLMMs fitted to the same data: models ordered by npar,
    columns npar, AIC, BIC, logLik, deviance (-2 logLik), Chisq, Df, Pr(>Chisq) (each against
    the model before it)."""
    if len({fit.n for fit in fits.values()}) > 1:
        raise GLMMError("anova: the models were fitted to different numbers of observations")
    ordered = sorted(fits.items(), key=lambda item: item[1].npar)
    rows, previous = [], None
    for name, fit in ordered:
        row = {
            "model": name,
            "npar": fit.npar,
            "AIC": fit.AIC,
            "BIC": fit.BIC,
            "logLik": fit.logLik,
            "deviance": fit.deviance,
            "Chisq": np.nan,
            "Df": np.nan,
            "Pr(>Chisq)": np.nan,
        }
        if previous is not None:
            chisq = max(0.0, 2 * (fit.logLik - previous.logLik))
            df = fit.npar - previous.npar
            row.update({"Chisq": chisq, "Df": df, "Pr(>Chisq)": stats.chi2.sf(chisq, df) if df > 0 else np.nan})
        rows.append(row)
        previous = fit
    return pd.DataFrame(rows).set_index("model")
