"""Time the fast REML path on simulated GPA-like data (random intercept and slope, 6 obs per group).

Usage: python benchmarks/reml_timing.py 20000 [125000 ...]   (one fresh process per size, so
the reported peak RSS is that fit's own).
"""

import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def simulate(n_groups: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    occasion = np.tile(np.arange(6.0), n_groups)
    student = np.repeat(np.arange(n_groups), 6)
    cov = np.array([[0.045, -0.001], [-0.001, 0.0045]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_groups)
    gpa = 2.6 + 0.1 * occasion + b[student, 0] + b[student, 1] * occasion + rng.normal(0, 0.2, len(student))
    labels = [str(i + 1) for i in range(n_groups)]
    return pd.DataFrame(
        {"gpa": gpa, "occasion": occasion, "student": pd.Categorical.from_codes(student, categories=labels)}
    )


def run_one(n_groups: int) -> None:
    from lmmflow.design import build_design
    from lmmflow.reml import fit_reml

    data = simulate(n_groups)
    clock = time.perf_counter()
    design = build_design("gpa ~ occasion + (1 + occasion | student)", data)
    built = time.perf_counter() - clock
    clock = time.perf_counter()
    fit = fit_reml(design)
    fitted = time.perf_counter() - clock
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evaluations = sum(a["n_evaluations"] for a in fit.attempts)
    print(
        f"{n_groups:>7} groups: build_design {built:.2f}s, fit_reml {fitted:.2f}s "
        f"({evaluations} evaluations: {[(a['optimizer'], a['n_evaluations'], round(a['seconds'], 3)) for a in fit.attempts]}), "
        f"converged={fit.converged}, peak RSS {peak_mb:.0f} MB, loglik {fit.loglik:.4f}, "
        f"sigma2 {fit.sigma2:.5f}, cov {np.round(fit.covariances[0].ravel(), 5).tolist()}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 2:
        run_one(int(sys.argv[1]))
    else:
        for size in sys.argv[1:] or ["20000", "125000"]:
            subprocess.run([sys.executable, __file__, size], check=True)
