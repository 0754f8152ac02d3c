"""Section 5 (--glmm): every GLMM of ../shared/reference/glmm fitted in-process by
``lmmflow.engine.glmm.glmer``, beside lme4's time (the reference's ``time_s``: glmer's default
fit, best of 3) and mixedlm's (../shared/notes/glmm.md), with the logLik against lme4's tight
optimum (nAGQ > 1: on the usual scale, ``logLik_normalized`` or the tight logLik plus
``saturated_logLik``)."""

from __future__ import annotations

import re
import sys
import time
import warnings

from common import ROOT, fmt, heading, progress, table

# The reference models' data prepared as their data_prep says and lme4's profile intervals: the
# tests' loader and fixtures, one copy only.
sys.path.insert(0, str(ROOT / "tests"))
from engine.glmm_reference import REFERENCE, SHARED, model_call, model_data, reference_models  # noqa: E402
from inference.lme4_glmm_profiles import LME4_SECONDS, model_fit  # noqa: E402

GLMM_FITS = 3  # best of 3 wall-clock fits (the machine is shared)
NOTES = SHARED / "notes" / "glmm.md"


def mixedlm_seconds() -> dict[str, float]:
    """mixedlm 1.3's time per reference key, from the notes' anchor table (``| key (...) | rows |
    lme4 | mixedlm | ...``)."""
    seconds = {}
    for line in NOTES.read_text().splitlines() if NOTES.exists() else []:
        match = re.match(r"^\| (\w+) \(.*?\) \| [\d,]+ \| [^|]+ \| ([\d.]+) s", line)
        if match:
            seconds[match.group(1)] = float(match.group(2))
    return seconds


def reference_loglik(model: dict) -> float:
    """lme4's tight logLik on the usual scale (nAGQ > 1: with the normalising constant)."""
    tight = model["tight_tolPwrss_1e12"]
    if model["nAGQ"] > 1:
        if "logLik_normalized" in tight:
            return tight["logLik_normalized"]
        return tight["logLik"] + model.get("saturated_logLik", 0.0)
    return tight["logLik"]


def fit_times(key: str) -> dict:
    from lmmflow.engine.glmm import glmer
    from lmmflow.verify.glmm_laplace import verify_fit

    call, data = model_call(key), model_data(key)
    seconds, fit = [], None
    for _ in range(GLMM_FITS):
        clock = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = glmer(
                call["formula"], data, family=call["family"], link=call["link"], nAGQ=call["nAGQ"], verify=False
            )
        seconds.append(time.perf_counter() - clock)
    from lmmflow.engine.glmm_design import glmm_design

    gd = glmm_design(call["formula"], data, call["family"], call["link"])
    clock = time.perf_counter()
    verification = verify_fit(gd, fit)
    return {"best": min(seconds), "verify": time.perf_counter() - clock, "fit": fit, "agrees": verification["agrees"]}


def profile_seconds(key: str) -> float:
    """Wall seconds of the profile intervals of every parameter (one run: each takes seconds)."""
    from lmmflow.inference.glmm_profile_intervals import glmm_profile_intervals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gd, fit = model_fit(key)
    clock = time.perf_counter()
    glmm_profile_intervals(gd, fit.theta, fit.beta, fit.nAGQ)
    return time.perf_counter() - clock


def profile_lines() -> list[str]:
    """Profile intervals of the models lme4's were measured for, beside lme4's seconds."""
    progress("GLMM profile intervals ...")
    rows = [
        [f"`{key}`", fmt(profile_seconds(key), 2), fmt(seconds, 1)] for key, seconds in sorted(LME4_SECONDS.items())
    ]
    return heading(
        "GLMMs: profile-likelihood intervals",
        "In-process wall seconds of `lmmflow.inference.glmm_profile_intervals` for every parameter of a fitted "
        'model, beside lme4\'s `confint(m, method = "profile")` (measured here, tests/inference/'
        "lme4_glmm_profiles.py, which also holds the intervals the tests compare).",
    ) + [*table(["model", "ours (s)", "lme4 (s)"], rows), ""]


def section() -> list[str]:
    """The report's lines: one row per reference model, then the profile intervals."""
    progress("GLMMs ...")
    mixedlm = mixedlm_seconds()
    rows = []
    for key, model in sorted(reference_models().items()):
        result = fit_times(key)
        fit = result["fit"]
        rows.append(
            [
                f"`{key}` ({model['family']}, nAGQ {model['nAGQ']}, n {fit.n})",
                fmt(result["best"], 3),
                fmt(result["verify"], 3),
                fmt(model["time_s"]["best"] if isinstance(model["time_s"], dict) else model["time_s"], 2),
                fmt(mixedlm[key], 2) if key in mixedlm else "–",
                f"{fit.logLik - reference_loglik(model):+.1e}",
                "yes" if result["agrees"] else "**no**",
            ]
        )
    return (
        heading(
            f"GLMMs: lme4's reference models ({REFERENCE.name}/)",
            f"In-process wall seconds of `lmmflow.engine.glmm.glmer` (engine only; best of {GLMM_FITS}), then its "
            "independent re-evaluation of the deviance (`lmmflow.verify.glmm_laplace`), beside lme4 1.1-31's "
            "default glmer (the reference's `time_s`, best of 3, R 4.2.2 on a machine like this) and mixedlm 1.3's "
            "(shared/notes/glmm.md). logLik: ours minus lme4's tight optimum (tolPwrss 1e-12; nAGQ > 1 on the "
            "usual scale); positive is better. The machine is shared: read the times as orders of magnitude.",
        )
        + [
            *table(["model", "ours (s)", "verify (s)", "lme4 (s)", "mixedlm (s)", "logLik - lme4's", "verified"], rows),
            "",
        ]
        + profile_lines()
    )
