"""Section 4 (--insteval): the crossed InstEval model fitted by lmmflow and, on shares of the
students, by statsmodels; each fit in a fresh process, `python benchmarks/insteval.py lmmflow MIRROR`
or `python benchmarks/insteval.py statsmodels MIRROR FRACTION`, which prints one JSON line."""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from common import ROOT, child_result, fmt, heading, peak_mb, progress, table, timed

INSTEVAL_FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
INSTEVAL_STATSMODELS_FRACTIONS = (0.01, 0.02)  # of the students, for statsmodels' predicted time
INSTEVAL_FITS = 5  # the first in a fresh process, then the same fit again: best and median
LME4_REFERENCE = ROOT.parent / "shared" / "reference" / "lme4_extensions.json"


def section(mirror: Path) -> list[str]:
    """The report's lines on InstEval, read from ``mirror``."""
    progress("InstEval ...")
    return insteval_lines(insteval_result(mirror))


def insteval_data(mirror: Path):
    import pandas as pd

    data = pd.read_csv(mirror / "InstEval.csv")
    data["service"] = pd.Categorical(data["service"].astype(str), categories=["0", "1"])
    return data


def insteval_child(mirror: Path) -> None:
    """Fresh process: the design, the engine's fit (conditional SDs included) INSTEVAL_FITS times,
    its verification, and the load average (the machine's other work slows every timing)."""
    from lmmflow.engine.choice import fit_profiled
    from lmmflow.fit import reevaluate
    from lmmflow.model.design import build_design

    load_before = os.getloadavg()[0]
    data = insteval_data(mirror)
    design_s, design = timed(build_design, INSTEVAL_FORMULA, data)
    fits = [timed(fit_profiled, design) for _ in range(INSTEVAL_FITS)]
    fit_s = [seconds for seconds, _ in fits]
    fit = fits[0][1]
    verify_s, verified = timed(reevaluate, design, fit, "sparse LU")
    result = {
        "design_s": design_s,
        "fit_s": fit_s[0],
        "fit_best_s": min(fit_s),
        "fit_median_s": float(np.median(fit_s)),
        "load": [load_before, os.getloadavg()[0]],
        "engine": fit.engine,
        "optimizers": " + ".join(a["optimizer"] for a in fit.attempts),
        "evaluations": sum(a["n_evaluations"] for a in fit.attempts),
        "loglik": fit.loglik,
        "converged": fit.converged,
        "verify_s": verify_s,
        "verified_loglik": verified,
        "peak_mb": peak_mb(),
    }
    print(json.dumps(result))


def statsmodels_insteval_child(mirror: Path, fraction: float) -> None:
    """Fresh process: statsmodels' REML fit of the crossed model as variance components of one
    all-data group, on the ratings of a random ``fraction`` of the students."""
    import statsmodels.formula.api as smf

    data = insteval_data(mirror)
    students = data["s"].unique()
    chosen = np.random.default_rng(20261127).choice(students, round(fraction * len(students)), replace=False)
    subset = data[data["s"].isin(chosen)].assign(one=1)
    components = {factor: f"0 + C({factor})" for factor in ("s", "d", "dept")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm("y ~ service", subset, groups="one", re_formula="0", vc_formula=components)
        fit_s, result = timed(lambda: model.fit(reml=True))
    print(json.dumps({"rows": len(subset), "fit_s": fit_s, "loglik": float(result.llf)}))


def insteval_result(mirror: Path) -> dict:
    progress("  InstEval: lmmflow ...")
    ours = child_result("insteval.py", "lmmflow", str(mirror))
    statsmodels_rows = []
    for fraction in INSTEVAL_STATSMODELS_FRACTIONS:
        progress(f"  InstEval: statsmodels on {fraction:.0%} of the students ...")
        statsmodels_rows.append(child_result("insteval.py", "statsmodels", str(mirror), str(fraction)))
    measured = [r for r in statsmodels_rows if "fit_s" in r]
    full_rows = len(insteval_data(mirror))
    # A lower bound: linear in rows from the largest subset (its growth was steeper than linear).
    predicted = measured[-1]["fit_s"] * full_rows / measured[-1]["rows"] if measured else math.nan
    lme4 = json.loads(LME4_REFERENCE.read_text())["insteval_crossed"] if LME4_REFERENCE.exists() else {}
    return {"ours": ours, "statsmodels": statsmodels_rows, "predicted": predicted, "lme4": lme4}


def insteval_lines(result: dict) -> list[str]:
    ours, lme4 = result["ours"], result["lme4"]
    lines = heading(
        f"InstEval: `{INSTEVAL_FORMULA}` (73,421 ratings; students x lecturers x departments, crossed)",
        f"Ours in a fresh process (peak MB: its maximum RSS), the fit {INSTEVAL_FITS} times: the first, "
        "then best and median; the load average before and after says how busy the machine was. "
        "An evaluation of the scaled L-BFGS-B includes the gradient. statsmodels: `smf.mixedlm` with the three "
        "factors as variance components of one all-data group (it has no crossed random effects), "
        "fitted on the ratings of a share of the students; full size predicted (linear in rows from "
        "the largest share: a lower bound, as its time grew faster than that), not run. lme4: "
        "1.1-31 on R 4.2.2 took 34-45 s for `lmer` plus 11 s for `ranef(condVar = TRUE)` on a "
        "machine like this (shared/notes/crossed.md).",
    )
    if "error" in ours:
        return lines + [f"lmmflow failed: {ours['error']}", ""]
    reference = lme4.get("logLik", math.nan)
    rows = [
        ["design (lmmflow.model.design.build_design)", ours["design_s"], "–", "–", "–"],
        [
            f"fit: {ours['engine']} engine, {ours['optimizers']}, {ours['evaluations']} evaluations, conditional SDs "
            f"included; load {ours['load'][0]:.1f} to {ours['load'][1]:.1f}"
            + ("" if ours["converged"] else " (not converged)"),
            f"{ours['fit_s']:.2f} first; {ours['fit_best_s']:.2f} best, {ours['fit_median_s']:.2f} median",
            fmt(ours["peak_mb"], 0),
            fmt(ours["loglik"], 5),
            f"{ours['loglik'] - reference:.2g}",
        ],
        [
            "verification: sparse LU at the solution",
            ours["verify_s"],
            "–",
            fmt(ours["verified_loglik"], 5),
            f"{ours['verified_loglik'] - reference:.2g}",
        ],
    ]
    for fraction, r in zip(INSTEVAL_STATSMODELS_FRACTIONS, result["statsmodels"]):
        label = f"statsmodels, {fraction:.0%} of the students ({r.get('rows', 0):,} rows)"
        rows.append([label, r.get("fit_s", math.nan), "–", fmt(r.get("loglik", math.nan), 5), r.get("error", "–")])
    rows.append(["statsmodels, all 73,421 rows", f"≥ {result['predicted']:,.0f} predicted; not run", "–", "–", "–"])
    return lines + table(["what", "seconds", "peak MB", "REML logLik", "minus lme4's"], rows) + [""]


if __name__ == "__main__":
    if sys.argv[1] == "lmmflow":
        insteval_child(Path(sys.argv[2]))
    else:
        statsmodels_insteval_child(Path(sys.argv[2]), float(sys.argv[3]))
