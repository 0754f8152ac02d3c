"""GLM families and links as R's ``binomial()`` / ``poisson()`` family objects (and lme4's C++
glmFamily) compute them, with their clipping of extreme linear predictors, plus the derivatives
the exact gradient of the Laplace deviance needs (d mu / d eta, d^2 mu / d eta^2, V'(mu)).

Each link returns, for the linear predictor eta, ``mu``, ``mu_eta`` = d mu / d eta (clipped at
machine epsilon as R clips it) and ``mu_eta2`` = d^2 mu / d eta^2 (zero where R clips ``mu_eta``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from lmmflow.model.family_names import ALLOWED, CANONICAL

EPS = np.finfo(float).eps
_THRESH = 30.0  # R's family.c: logit_linkinv clips at |eta| > 30
_INVEPS = 1.0 / EPS
_PROBIT_THRESH = -stats.norm.ppf(EPS)


class GLMMError(ValueError):
    """A generalized linear mixed model that cannot be fitted as asked: the message names the
    family, link, column or term at fault."""


@dataclass(frozen=True)
class Link:
    name: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]  # mu, mu_eta, mu_eta2


def _logit_inverse(eta):
    tmp = np.exp(np.clip(eta, -_THRESH, _THRESH))
    mu = tmp / (1.0 + tmp)
    mu_eta = mu * (1.0 - mu)
    mu_eta2 = mu_eta * (1.0 - 2.0 * mu)
    outside = np.abs(eta) > _THRESH
    if np.any(outside):  # R's family.c: mu from exp clipped to [eps, 1/eps], mu_eta = eps
        tmp = np.where(eta < -_THRESH, EPS, np.where(eta > _THRESH, _INVEPS, tmp))
        mu = tmp / (1.0 + tmp)
        mu_eta = np.where(outside, EPS, mu_eta)
        mu_eta2 = np.where(outside, 0.0, mu_eta2)
    return mu, mu_eta, mu_eta2


def _probit_inverse(eta):
    clipped = np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)
    mu = special.ndtr(clipped)
    density = np.exp(-0.5 * eta * eta) / np.sqrt(2 * np.pi)
    mu_eta = np.maximum(density, EPS)
    mu_eta2 = np.where(density > EPS, -eta * density, 0.0)
    return mu, mu_eta, mu_eta2


def _cloglog_inverse(eta):
    e = np.exp(np.minimum(eta, 700.0))
    mu = np.clip(-np.expm1(-e), EPS, 1.0 - EPS)
    density = e * np.exp(-e)
    mu_eta = np.maximum(density, EPS)
    mu_eta2 = np.where(density > EPS, density * (1.0 - e), 0.0)
    return mu, mu_eta, mu_eta2


def _log_inverse(eta):
    mu = np.maximum(np.exp(eta), EPS)
    return mu, mu, np.where(mu > EPS, mu, 0.0)


LINKS = {
    "logit": Link("logit", lambda mu: np.log(mu / (1.0 - mu)), _logit_inverse),
    "probit": Link("probit", lambda mu: stats.norm.ppf(mu), _probit_inverse),
    "cloglog": Link("cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inverse),
    "log": Link("log", np.log, _log_inverse),
}


@dataclass(frozen=True)
class Family:
    """``name`` binomial or poisson with its ``link``; ``canonical`` when Fisher and Newton weights agree."""

    name: str
    link: Link

    @property
    def canonical(self) -> bool:
        return (self.name, self.link.name) in (("binomial", "logit"), ("poisson", "log"))

    def variance(self, mu):
        return mu * (1.0 - mu) if self.name == "binomial" else mu

    def variance_derivative(self, mu):
        return 1.0 - 2.0 * mu if self.name == "binomial" else np.ones_like(mu)

    def unit_deviance(self, y, mu, wt):
        """R's ``dev.resids(y, mu, wt)``: prior-weighted squared deviance residuals."""
        if self.name == "binomial":
            return 2.0 * wt * (special.xlogy(y, y / mu) + special.xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))
        return 2.0 * wt * np.where(y > 0, special.xlogy(y, y / mu) - (y - mu), mu)

    def aic_terms(self, y, mu, wt, trials):
        """R's family ``aic()`` per observation: -2 log-likelihood including its normalising
        constant (binomial: ``dbinom(round(m y), round(m), mu)`` weighted by wt/m; poisson:
        ``dpois(y, mu) * wt``)."""
        if self.name == "binomial":
            m = np.round(trials)
            k = np.round(trials * y)
            with np.errstate(divide="ignore", invalid="ignore"):
                logp = (
                    special.gammaln(m + 1)
                    - special.gammaln(k + 1)
                    - special.gammaln(m - k + 1)
                    + special.xlogy(k, mu)
                    + special.xlog1py(m - k, -mu)
                )
                scale = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
            return -2.0 * scale * np.where(m > 0, logp, 0.0)
        return -2.0 * wt * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))

    def saturated_aic_terms(self, y, wt, trials):
        """``aic_terms`` at mu = y: -2 times the saturated log-likelihood."""
        return self.aic_terms(y, y, wt, trials)

    def evaluators(self, y, wt, trials):
        """Fast ``(deviance(mu), aic(mu))`` sums for fixed data: the terms that do not depend on mu
        (y log y, log choose(m, k), log y!) computed once."""
        if self.name == "binomial":
            c = special.xlogy(y, y) + special.xlogy(1.0 - y, 1.0 - y)
            a, b = 2.0 * wt * y, 2.0 * wt * (1.0 - y)
            const = float(np.sum(2.0 * wt * c))
            m = np.round(trials)
            k = np.round(trials * y)
            scale = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
            lch = special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(m - k + 1)
            aic_const = float(-2.0 * np.sum(scale * np.where(m > 0, lch, 0.0)))
            ak, bk = 2.0 * scale * k, 2.0 * scale * (m - k)

            def deviance(mu):
                return const - a @ np.log(mu) - b @ np.log1p(-mu)

            def aic(mu):
                return aic_const - ak @ np.log(mu) - bk @ np.log1p(-mu)

            return deviance, aic
        c = float(np.sum(2.0 * wt * (special.xlogy(y, y) - y)))
        a, w2 = 2.0 * wt * y, 2.0 * wt
        aic_const = float(2.0 * np.sum(wt * special.gammaln(y + 1)))

        def deviance(mu):
            return c - a @ np.log(mu) + w2 @ mu

        def aic(mu):
            return aic_const - a @ np.log(mu) + w2 @ mu

        return deviance, aic

    def starting_mu(self, y, wt):
        """R's ``initialize``: binomial (wt y + 0.5)/(wt + 1), poisson y + 0.1."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        return y + 0.1

    def pieces(self, eta, y, wt):
        """Per-observation quantities of PIRLS and of the exact gradient at ``eta``:
        mu, Fisher weight w = wt mu_eta^2 / V, its derivative dw/deta, the deviance's first
        derivative d1 = d dev / d eta, and half its second derivative (observed Newton weight)."""
        mu, mu_eta, mu_eta2 = self.link.inverse(eta)
        var = self.variance(mu)
        dvar = self.variance_derivative(mu)
        w = wt * mu_eta * mu_eta / var
        dw = wt * (2.0 * mu_eta * mu_eta2 / var - mu_eta**3 * dvar / var**2)
        d1 = -2.0 * wt * (y - mu) * mu_eta / var
        if self.canonical:
            half_d2 = w
        else:
            half_d2 = w - wt * (y - mu) * (mu_eta2 / var - mu_eta * mu_eta * dvar / var**2)
        return mu, mu_eta, w, dw, d1, half_d2


def get_family(family: str, link: str | None = None) -> Family:
    """``family`` binomial or poisson, ``link`` one R allows for it (default the canonical one)."""
    name = str(family).lower()
    if name not in ALLOWED:
        raise GLMMError(f"family {family!r} is not supported: use one of {sorted(ALLOWED)} (gaussian is lmer)")
    link = CANONICAL[name] if link is None else str(link)
    if link not in ALLOWED[name]:
        raise GLMMError(f"link {link!r} is not supported for family {name!r}: use one of {list(ALLOWED[name])}")
    return Family(name, LINKS[link])
