"""Benchmarks of issue 23 (scale): MovieLens-shaped crossed fits and InstEval with a vector-valued term.

    python benchmarks/scale.py                      # 1M crossing, InstEval vector, growth (~10 min on 2 cores)
    python benchmarks/scale.py --cases movielens-10m  # the 10M crossing (its fit job alone: minutes)

Cases (``--cases``, any of them; default: all but movielens-10m):

- ``movielens-1m`` / ``movielens-10m``: ``rating ~ 1 + (1 | user) + (1 | movie)``, ML, on ratings
  simulated in MovieLens' shape by ``benchmarks/movielens.py`` (1M: 1,000,209 ratings, 6,040 users x
  3,706 movies; 10M: 10,000,054 ratings, 69,878 users x 10,677 movies): the in-process fit in a
  fresh process (seconds, CPU seconds, evaluations, peak MB, logLik) and the fit job of the whole
  workflow on that data written to a CSV file (``results/benchmarks/fit/<model>.tsv``: seconds and
  max RSS), beside the anchors of ../shared/notes/scale.md.
- ``insteval-vector``: ``y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept) + (0 + service | dept)``,
  ML, on InstEval from the data mirror: in-process fit and fit job, with lme4's logLik.
- ``movielens-10m-evaluation``: the set-up and one evaluation of the 10M crossing's criterion
  (a fit takes ~13 evaluations and one gradient), when the whole 10M fit is too long to wait for.
- ``growth``: how one evaluation of the 1M crossing's criterion grows with the number of ratings
  (users and movies fixed) and with the number of movies (ratings fixed): set-up seconds, seconds
  per evaluation and peak MB, each in a fresh process.

Prints one markdown report and writes it to ``--output`` (default benchmarks/results/scale.md).
Timings are of one run each on whatever machine runs this, with its load average: other processes
slow every number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
MOVIELENS_FORMULA = "rating ~ 1 + (1 | user) + (1 | movie)"
INSTEVAL_VECTOR = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept) + (0 + service | dept)"
INSTEVAL_FACTORS = ["s", "d", "dept", "service"]
LME4_INSTEVAL_VECTOR = -118823.529191  # lme4 1.1-31, with a convergence warning (tests/engine/test_vector_crossed.py)
# ../shared/notes/scale.md, measured on a 2-core machine like this one.
ANCHORS = {
    "movielens-1m": "lmmflow before: refused (DesignTooLarge, 309 million pair products); mixedlm 1.3: 174 s (847 MB); "
    "lme4 1.1-31: 874 s (same logLik to 5e-7); MixedModels.jl docs: 36.7 s for ml-1m (2018 hardware)",
    "movielens-10m": "lmmflow before: refused; MixedModels.jl: subsets of ml-32m in 1,213 s on 8 threads (manuscript)",
    "insteval-vector": "lmmflow before: 9.6 s in-process (239 COBYQA evaluations), fit job 15.7 s; mixedlm 1.3: 5.0 s; "
    "lme4 1.1-31: 63 s (convergence warning); MixedModels.jl: ~155 evaluations of 7.5-12 ms",
}
GROWTH_ROWS = (250_000, 500_000, 1_000_209)  # ratings, at 6,040 users x 3,706 movies
GROWTH_MOVIES = (1_000, 2_000, 3_706)  # movies, at 1,000,209 ratings of 6,040 users


# --------------------------------------------------------------------------- children (fresh processes)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _movielens(shape: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from movielens import SHAPES, simulate_ratings

    return simulate_ratings(*SHAPES[shape.removeprefix("movielens-")], seed=1)


def fit_child(case: str) -> dict:
    """In-process fit of one case: design and fit seconds, CPU seconds, evaluations, logLik, peak MB."""
    import pandas as pd

    from lmmflow.engine.blocked import fit_blocked
    from lmmflow.model.design import build_design

    if case == "insteval-vector":
        data, formula = _insteval(pd), INSTEVAL_VECTOR
    else:
        data, formula = _movielens(case), MOVIELENS_FORMULA
    clock, cpu = time.perf_counter(), time.process_time()
    design = build_design(formula, data)
    design_seconds = time.perf_counter() - clock
    clock, cpu = time.perf_counter(), time.process_time()
    fit = fit_blocked(design, reml=False)
    return {
        "design_seconds": design_seconds,
        "fit_seconds": time.perf_counter() - clock,
        "fit_cpu_seconds": time.process_time() - cpu,
        "evaluations": sum(attempt["n_evaluations"] for attempt in fit.attempts),
        "optimizers": [attempt["optimizer"] for attempt in fit.attempts],
        "converged": bool(fit.converged),
        "logLik": fit.loglik,
        "peak_mb": _peak_mb(),
        "load": os.getloadavg()[0],
    }


def growth_child(n_ratings: int, n_users: int, n_movies: int) -> dict:
    """Set-up and per-evaluation seconds of the crossing's criterion at one size, peak MB."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import numpy as np
    from movielens import simulate_ratings

    from lmmflow.engine.blocked import BlockedCriterion
    from lmmflow.model.design import build_design

    design = build_design(MOVIELENS_FORMULA, simulate_ratings(n_ratings, n_users, n_movies, seed=1))
    clock = time.perf_counter()
    model = BlockedCriterion(design, reml=False)
    setup = time.perf_counter() - clock
    seconds = []
    for theta in ([0.45, 0.5], [0.46, 0.51]):
        clock = time.perf_counter()
        model.deviance(np.array(theta))
        seconds.append(time.perf_counter() - clock)
    split = model.split
    return {
        "setup_seconds": setup,
        "evaluation_seconds": min(seconds),
        "dense_rows": None if split is None else split.n_dense,
        "peak_mb": _peak_mb(),
        "load": os.getloadavg()[0],
    }


def _insteval(pd):
    data = pd.read_csv(MIRROR / "InstEval.csv")
    for column in INSTEVAL_FACTORS:
        data[column] = pd.Categorical(
            data[column].astype(str), categories=sorted(set(data[column].astype(str)), key=int)
        )
    return data


def child(*arguments: str) -> dict:
    """Run this file's ``--child`` in a fresh process; its JSON result."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [sys.executable, __file__, "--child", *arguments], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"child {arguments} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- fit jobs through the workflow


def fit_job(case: str, scratch: Path) -> dict:
    """The workflow's fit job for the case, on its data in a CSV file: seconds and max RSS from
    results/benchmarks/fit/<model>.tsv, logLik, verification and warnings from fit.json."""
    import pandas as pd

    workdir = scratch / case
    workdir.mkdir()
    model = case.replace("-", "_")
    if case == "insteval-vector":
        data, formula, factors = pd.read_csv(MIRROR / "InstEval.csv"), INSTEVAL_VECTOR, INSTEVAL_FACTORS
    else:
        data, formula, factors = _movielens(case), MOVIELENS_FORMULA, ["user", "movie"]
    data.to_csv(workdir / "data.csv", index=False)
    config = {
        "datasets": {"data": {"source": {"path": "data.csv"}, "factors": factors}},
        "models": {model: {"dataset": "data", "formula": formula, "reml": False}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [*command, f"results/models/{model}/fit.json"], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"fit job of {case} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    benchmark = pd.read_csv(workdir / "results" / "benchmarks" / "fit" / f"{model}.tsv", sep="\t")
    summary = json.loads((workdir / "results" / "models" / model / "fit.json").read_text())
    return {
        "job_seconds": float(benchmark["s"].iloc[0]),
        "job_cpu_seconds": float(benchmark["cpu_time"].iloc[0]),
        "job_max_rss_mb": float(benchmark["max_rss"].iloc[0]),
        "logLik": summary["logLik"],
        "converged": summary["converged"],
        "verification": summary["verification"],
        "warnings": summary["warnings"],
        "load": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------- report


def case_lines(case: str, fit: dict, job: dict | None) -> list[str]:
    lines = [f"## {case}", "", f"Anchors: {ANCHORS[case]}.", ""]
    lines.append(
        f"- in-process fit (fresh process): {fit['fit_seconds']:.2f} s ({fit['fit_cpu_seconds']:.2f} s CPU; "
        f"design {fit['design_seconds']:.2f} s), {fit['evaluations']} evaluations ({', '.join(fit['optimizers'])}), "
        f"converged {fit['converged']}, peak {fit['peak_mb']:.0f} MB, logLik {fit['logLik']:.6f}, load {fit['load']:.1f}"
    )
    if case == "insteval-vector":
        lines.append(
            f"- lme4 1.1-31: logLik {LME4_INSTEVAL_VECTOR:.6f}; ours minus lme4's: {fit['logLik'] - LME4_INSTEVAL_VECTOR:+.2e}"
        )
    if job is not None:
        lines.append(
            f"- fit job (results/benchmarks/fit): {job['job_seconds']:.2f} s ({job['job_cpu_seconds']:.2f} s CPU), "
            f"max RSS {job['job_max_rss_mb']:.0f} MB, "
            f"logLik {job['logLik']:.6f}, verification {job['verification']}, load {job['load']:.1f}"
        )
        lines += [f"  - warning: {warning}" for warning in job["warnings"]]
    return lines + [""]


def growth_lines(rows: list[tuple[int, int, int, dict]]) -> list[str]:
    lines = [
        "## growth: one evaluation of a MovieLens-shaped crossing's criterion",
        "",
        "| ratings | users | movies | dense rows | set-up s | s / evaluation | peak MB | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ratings, users, movies, r in rows:
        lines.append(
            f"| {ratings:,} | {users:,} | {movies:,} | {r['dense_rows']} | {r['setup_seconds']:.2f} | "
            f"{r['evaluation_seconds']:.2f} | {r['peak_mb']:.0f} | {r['load']:.1f} |"
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["movielens-1m", "insteval-vector", "growth"])
    parser.add_argument("--no-jobs", action="store_true", help="in-process fits only, no workflow fit jobs")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "scale.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = fit_child(*rest) if kind == "fit" else growth_child(*map(int, rest))
        print(json.dumps(result))
        return
    lines = ["# lmmflow scale benchmarks (issue 23)", ""]
    with tempfile.TemporaryDirectory(prefix="lmmflow-scale-") as scratch:
        for case in args.cases:
            print(f"  {case} ...", file=sys.stderr, flush=True)
            if case == "growth":
                rows = [(n, 6_040, 3_706, child("growth", str(n), "6040", "3706")) for n in GROWTH_ROWS]
                rows += [(1_000_209, 6_040, m, child("growth", "1000209", "6040", str(m))) for m in GROWTH_MOVIES[:-1]]
                lines += growth_lines(rows)
                continue
            if case == "movielens-10m-evaluation":
                lines += growth_lines([(10_000_054, 69_878, 10_677, child("growth", "10000054", "69878", "10677"))])
                continue
            job = None if args.no_jobs else fit_job(case, Path(scratch))
            lines += case_lines(case, child("fit", case), job)
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
