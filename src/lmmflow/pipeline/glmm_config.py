"""Start-up checks of the configuration's GLMMs (``models.<m>.family: binomial | poisson``).

Family, link and nAGQ are checked as lme4 checks them, before any job runs; what needs the data
(the response's values, the offset's and weights' columns) is checked by the fit job before it
fits (``lmmflow.engine.glmm_design``), so a bad response leaves no output behind.
"""

from __future__ import annotations

import re

from lmmflow.model.family_names import ALLOWED
from lmmflow.model.formula import parse_formula

GAUSSIAN = "gaussian"


class GLMMConfigError(ValueError):
    """A GLMM setting the workflow cannot run; the message names the model and the key."""


def family_of(spec: dict) -> str:
    """A configured model's family (gaussian when not given)."""
    return spec.get("family") or GAUSSIAN


def glmm_models(config: dict) -> dict[str, dict]:
    """The configured models fitted by glmer."""
    return {name: spec for name, spec in config["models"].items() if family_of(spec) != GAUSSIAN}


def binomial_models(config: dict) -> list[str]:
    """The binomial GLMMs: each gets a figure of predicted probabilities."""
    return [name for name, spec in glmm_models(config).items() if spec["family"] == "binomial"]


def check_glmm_models(config: dict) -> None:
    """Family, link and nAGQ of every model; GLMMs only where the workflow handles them."""
    for name, spec in config["models"].items():
        if family_of(spec) == GAUSSIAN:
            _check_gaussian(name, spec)
        else:
            _check_glmm(name, spec)
    _check_uses(config)


def _check_gaussian(name: str, spec: dict) -> None:
    if parse_formula(spec["formula"]).response.replace(" ", "").startswith("cbind("):
        raise GLMMConfigError(f"models.{name}.formula: a cbind(successes, failures) response needs family: binomial")
    if spec.get("link") not in (None, "identity"):
        raise GLMMConfigError(f"models.{name}.link: {spec['link']!r} needs a family (binomial or poisson)")
    if spec.get("nAGQ") not in (None, 1):
        raise GLMMConfigError(f"models.{name}.nAGQ: only for a binomial or poisson model (lmer has no nAGQ)")


def _check_glmm(name: str, spec: dict) -> None:
    links = ALLOWED[spec["family"]]  # the schema allows only known families
    if spec.get("link") is not None and spec["link"] not in links:
        raise GLMMConfigError(
            f"models.{name}.link: {spec['link']!r} is not a link of family {spec['family']!r}; use one of {list(links)}"
        )
    if spec.get("engine", "fast") != "fast":
        raise GLMMConfigError(f"models.{name}.engine: {spec['engine']!r} fits LMMs only; a GLMM has one engine")
    nagq = spec.get("nAGQ", 1)
    if nagq > 1:
        terms = parse_formula(spec["formula"]).random
        if len(terms) != 1 or not _scalar(terms[0].expr):
            listed = ", ".join(term.text for term in terms)
            raise GLMMConfigError(
                f"models.{name}.nAGQ: {nagq} needs a single scalar random-effect term such as (1 | g), "
                f"as lme4; the formula has {listed}"
            )


def _scalar(expr: str) -> bool:
    """A random term of one effect: (1 | g) or (0 + x | g) (a factor x is caught by the fit job)."""
    parts = [part.strip() for part in expr.replace("-", "+").split("+")]
    effects = [part for part in parts if part not in ("0", "1")]
    no_intercept = "0" in parts or re.search(r"-\s*1\b", expr) is not None
    return len(effects) == 1 if no_intercept else not effects


def _check_uses(config: dict) -> None:
    """GLMMs compared only with GLMMs of the same family; profile intervals, not bootstrap ones."""
    glmms = glmm_models(config)
    method = config["intervals"]["method"]
    for model in config["intervals"]["models"]:
        if model in glmms and method != "profile":
            raise GLMMConfigError(
                f"intervals.method: {method!r} asks for bootstrap intervals of {model!r}, a "
                f"{glmms[model]['family']} GLMM; GLMMs have profile intervals (method: profile) and "
                "Wald intervals (fixed_effects.csv)"
            )
    sections = {f"comparisons.{n}": listed for n, listed in config["comparisons"].items()}
    sections |= {f"likelihood_ratio_tests.{n}": listed for n, listed in config["likelihood_ratio_tests"].items()}
    sections |= {f"focus_groups.{n}.models": f["models"] for n, f in config["focus_groups"].items()}
    for key, listed in sections.items():
        families = {model: family_of(config["models"][model]) for model in listed}
        if len(set(families.values())) > 1:
            described = ", ".join(f"{model}: {family}" for model, family in families.items())
            raise GLMMConfigError(f"{key}: models of different families ({described}); compare models of one family")
        if key.startswith("focus_groups") and set(families.values()) != {GAUSSIAN}:
            raise GLMMConfigError(f"{key}: focus groups are for LMMs only")
    for model in config["coefficient_checks"]:
        if model in glmms:
            raise GLMMConfigError(f"coefficient_checks: {model!r} is a GLMM; coefficient checks are for LMMs only")
