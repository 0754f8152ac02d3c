"""Section 3: fit seconds and peak memory of the GPA random-slope model as the number of students grows.

Each fit runs in a fresh process, `python benchmarks/gpa_scaling.py STUDENTS PATH`, which prints
one JSON line.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
from common import (
    GPA_FORMULA,
    GPA_TRUTH,
    child_result,
    fmt,
    heading,
    peak_mb,
    progress,
    statsmodels_default,
    table,
    timed,
)

SIZES = [200, 2_000, 20_000, 125_000]
QUICK_SIZES = [200, 2_000]
QUICK_STATSMODELS_MAX = 200  # students: a --quick run fits statsmodels' paths on no more
PATHS = {  # path -> what runs in the child
    "fast": "lmmflow.engine.groups_last.fit_groups_last",
    "robust": "lmmflow.verify.statsmodels_fit.fit_statsmodels",
    "default": "statsmodels MixedLM.fit(reml=True)",
}
SAME_OPTIMUM = 1e-4  # logLik units: closer than this to the best counts as the optimum


def section(sizes: list[int] | None, max_seconds: float, quick: bool) -> list[str]:
    """The report's lines on the fits at ``sizes`` students (default SIZES, QUICK_SIZES with ``quick``)."""
    progress("scaling ...")
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    return scaling_lines(*scaling_rows(sizes, max_seconds, QUICK_STATSMODELS_MAX if quick else None))


def scaling_child(n_groups: int, path: str) -> None:
    """Run in a fresh process: simulate, build the design, fit by `path`; print one JSON line."""
    from lmmflow.data.simulate import simulate_random_slopes
    from lmmflow.model.design import build_design

    data = simulate_random_slopes(n_groups, 6, **GPA_TRUTH, rng=np.random.default_rng(20240500 + n_groups))
    build_s, design = timed(build_design, GPA_FORMULA, data)
    if path == "fast":
        from lmmflow.engine.groups_last import fit_groups_last

        fit_s, fit = timed(fit_groups_last, design)
        loglik, converged = fit.loglik, fit.converged
    elif path == "robust":
        from lmmflow.verify.statsmodels_fit import fit_statsmodels

        fit_s, fit = timed(fit_statsmodels, design)
        loglik, converged = fit.loglik, fit.converged
    else:
        fit_s, (loglik, converged) = timed(statsmodels_default, design)
    print(
        json.dumps({"build_s": build_s, "fit_s": fit_s, "loglik": loglik, "converged": converged, "peak_mb": peak_mb()})
    )


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(groups)."""
    if len(sizes) < 2:
        return math.nan
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def predicted_seconds(sizes: list[int], seconds: list[float], size: int) -> float:
    """Extrapolated from the two largest measured sizes, at least linear growth."""
    if not sizes:
        return 0.0
    if len(sizes) == 1:
        return seconds[0] * size / sizes[0]
    exponent = max(1.0, growth_exponent(sizes[-2:], seconds[-2:]))
    return seconds[-1] * (size / sizes[-1]) ** exponent


def scaling_rows(sizes: list[int], max_seconds: float, robust_max: int | None) -> tuple[list[dict], dict]:
    rows = []
    measured = {path: ([], []) for path in PATHS}
    for size in sizes:
        results = {}
        for path in PATHS:
            done_sizes, done_seconds = measured[path]
            estimate = predicted_seconds(done_sizes, done_seconds, size)
            if path != "fast" and robust_max is not None and size > robust_max:
                results[path] = {"skipped": "not run in --quick"}
            elif path != "fast" and estimate > max_seconds:
                results[path] = {"skipped": f"skipped: predicted {estimate:,.0f} s > {max_seconds:,.0f} s"}
            else:
                results[path] = child_result("gpa_scaling.py", str(size), path)
                if "fit_s" in results[path]:
                    done_sizes.append(size)
                    done_seconds.append(results[path]["fit_s"])
            progress(f"  {size:>7,} students, {path}: {results[path]}")
        best = max((r["loglik"] for r in results.values() if "loglik" in r), default=math.nan)
        for path, result in results.items():
            rows.append({"students": size, "path": path, **result, "best": best})
    exponents = {path: growth_exponent(*measured[path]) for path in PATHS}
    exponents_large = {
        path: growth_exponent([s for s in sizes_ if s >= 2_000], [t for s, t in zip(sizes_, times) if s >= 2_000])
        for path, (sizes_, times) in measured.items()
    }
    return rows, {"all sizes": exponents, "2,000 students and more": exponents_large}


def optimum(row: dict) -> str:
    if "loglik" not in row:
        return "–"
    gap = row["best"] - row["loglik"]
    return "yes" if gap <= SAME_OPTIMUM else f"no (short by {gap:.3g})"


def scaling_lines(rows: list[dict], exponents: dict) -> list[str]:
    lines = heading(
        f"Scaling: `{GPA_FORMULA}`, simulated, 6 occasions per student",
        "Each fit in a fresh process; peak MB is that process's maximum RSS (Python, numpy, "
        "statsmodels and the data included). fast = lmmflow.engine.groups_last.fit_groups_last, robust = "
        "lmmflow.verify.statsmodels_fit.fit_statsmodels, default = statsmodels' single fit. optimum: logLik within "
        f"{SAME_OPTIMUM:g} of the best over the paths run at that size.",
    )
    body = []
    for r in rows:
        if "fit_s" in r:
            converged = "yes" if r["converged"] else "no"
            measured = [r["build_s"], r["fit_s"], fmt(r["peak_mb"], 0), fmt(r["loglik"], 4), converged, optimum(r)]
        else:  # skipped, or the child's error
            measured = ["–"] * 5 + [r.get("skipped", r.get("error", "?"))]
        body.append([f"{r['students']:,}", r["path"], f"{6 * r['students']:,}", *measured])
    lines += table(
        ["students", "path", "rows", "design s", "fit s", "peak MB", "REML logLik", "converged", "optimum"], body
    )
    lines += ["", "Growth of fit seconds with the number of students (fitted exponent b in t ~ n^b):", ""]
    lines += table(
        ["path", *exponents],
        [[path, *(fmt(exponents[key][path]) for key in exponents)] for path in PATHS],
    )
    return lines + [""]


if __name__ == "__main__":
    scaling_child(int(sys.argv[1]), sys.argv[2])
