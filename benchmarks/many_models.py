"""Many small models on one data set (issue 23, item 1): a seeded configuration generator and a
benchmark of the whole `snakemake` call for their fit.json files.

    python benchmarks/many_models.py write DIR [--models 150] [--seed 23]  # DIR/config.yaml + DIR/many.csv
    python benchmarks/many_models.py [--models 150] [--seed 23] [--size N] [--unbatched] [--floor]

The benchmark, in a fresh scratch directory, on whatever machine runs it (the load average is
printed beside each run: on a shared machine read the seconds as upper bounds, the CPU seconds
of Snakemake and its jobs as the less load-dependent figure):
1. the whole `snakemake --cores 2` call for every model's fit.json (the data set prepared too);
2. a no-op rerun; 3. the rerun after one model's formula changed (`--configfile` overriding it):
   seconds and the jobs that ran;
4. with --unbatched: the clean call with `batches.size: 1`, one job per model, as before batching;
5. with --floor: Snakemake's floor (benchmarks/workflow_runs.py's floor_runs) for as many jobs as the
   batched clean call ran, and for one job per model: a trivial workflow whose Python script jobs
   import nothing or only pandas.
Writes benchmarks/results/many_models.md.

The data set: 1,200 rows, pupils (60) nested in schools (12) and crossed with raters (40), two
numeric predictors and a two-level factor, simulated with ``numpy.random.default_rng(seed)``.
The models: combinations of a fixed part, a random part (intercepts, slopes, correlated or not;
nested, crossed) and REML or ML, shuffled by the seed; the first ``--models`` of them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

SCHOOLS, PUPILS_PER_SCHOOL, RATERS, RATINGS_PER_PUPIL = 12, 5, 40, 20
ROWS = SCHOOLS * PUPILS_PER_SCHOOL * RATINGS_PER_PUPIL
FIXED = ["y ~ 1", "y ~ x", "y ~ x + z", "y ~ x * treat", "y ~ x + z + treat"]
RANDOM = [
    "(1 | pupil)",
    "(1 + x | pupil)",
    "(x || pupil)",
    "(1 | school) + (1 | school:pupil)",
    "(1 | school/pupil)",
    "(1 + x | school) + (1 | pupil)",
    "(1 | pupil) + (1 | rater)",
    "(1 + x | pupil) + (1 | rater)",
    "(1 | school) + (1 | pupil) + (1 | rater)",
    "(1 | pupil) + (0 + x | rater)",
    "(1 | rater)",
    "(1 + z | rater)",
    "(1 | school) + (1 | rater)",
    "(1 + x | school)",
    "(1 | pupil) + (1 | rater) + (0 + z | rater)",
]
DATASET = "many"
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHANGED_FORMULA = "y ~ x + z + (1 | pupil) + (1 | rater)"  # the rerun's new formula of the first model


def simulate(seed: int) -> dict[str, np.ndarray]:
    """1,200 ratings: each pupil rated by RATINGS_PER_PUPIL of the raters (crossed), pupils nested in schools."""
    rng = np.random.default_rng(seed)
    pupils = SCHOOLS * PUPILS_PER_SCHOOL
    pupil = np.repeat(np.arange(pupils), RATINGS_PER_PUPIL)
    rater = np.concatenate([rng.choice(RATERS, RATINGS_PER_PUPIL, replace=False) for _ in range(pupils)])
    school = pupil // PUPILS_PER_SCHOOL
    n = len(pupil)
    x, z = rng.normal(size=n), rng.normal(size=n)
    treat = rng.integers(0, 2, size=n)
    u_school, u_pupil = rng.normal(0, 0.5, SCHOOLS), rng.normal(0, 0.8, (pupils, 2)) * [1, 0.3]
    u_rater = rng.normal(0, 0.6, (RATERS, 2)) * [1, 0.2]
    y = (
        1.0
        + 0.5 * x
        - 0.3 * z
        + 0.4 * treat
        + u_school[school]
        + u_pupil[pupil, 0]
        + u_pupil[pupil, 1] * x
        + u_rater[rater, 0]
        + u_rater[rater, 1] * z
        + rng.normal(0, 1.0, n)
    )
    return {
        "y": np.round(y, 4),
        "x": np.round(x, 4),
        "z": np.round(z, 4),
        "treat": np.where(treat == 1, "b", "a"),
        "school": [f"s{s:02d}" for s in school],
        "pupil": [f"p{p:03d}" for p in pupil],
        "rater": [f"r{r:02d}" for r in rater],
    }


def models(count: int, seed: int) -> dict[str, dict]:
    """The first ``count`` of every (fixed, random, REML/ML) combination, shuffled by ``seed``."""
    combos = list(itertools.product(FIXED, RANDOM, [True, False]))
    if count > len(combos):
        raise ValueError(f"--models {count}: at most {len(combos)} distinct models")
    order = np.random.default_rng(seed).permutation(len(combos))[:count]
    chosen = {}
    for number, index in enumerate(order):
        fixed, random, reml = combos[index]
        chosen[f"m{number:03d}"] = {"dataset": DATASET, "formula": f"{fixed} + {random}", "reml": reml}
    return chosen


def write_config(directory: Path, count: int, seed: int, batch_size: int | None = None) -> Path:
    """``directory``/many.csv and ``directory``/config.yaml (the data set read from that path;
    ``batches.size`` set if ``batch_size`` is given, else the workflow's default)."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = simulate(seed)
    lines = [",".join(columns)] + [",".join(map(str, row)) for row in zip(*columns.values())]
    data = directory / f"{DATASET}.csv"
    data.write_text("\n".join(lines) + "\n")
    config = {
        "datasets": {
            DATASET: {"source": {"path": str(data.resolve())}, "factors": ["treat", "school", "pupil", "rater"]}
        },
        "models": models(count, seed),
    }
    if batch_size is not None:
        config["batches"] = {"size": batch_size}
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fit_targets(config_path: Path) -> list[str]:
    return [f"results/models/{model}/fit.json" for model in yaml.safe_load(config_path.read_text())["models"]]


def snakemake(workdir: Path, *args: str) -> dict:
    """One `snakemake --cores 2` call in ``workdir``, which must succeed: wall and CPU seconds (its
    own and its jobs'), the jobs run by rule, and the load average before it."""
    command = ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    result = subprocess.run([*command, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - clock
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    printed = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command + list(args))} failed:\n{printed[-3000:]}")
    rules = re.findall(r"^\s*(?:local)?rule (\w+):", printed, flags=re.M)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"seconds": seconds, "cpu": cpu, "jobs": len(rules), "rules": rules, "load": load}


def benchmark(scratch: Path, count: int, seed: int, size: int | None, unbatched: bool, floor: bool) -> list[list]:
    """The rows of the report (module docstring)."""
    workdir = scratch / "batched"
    config = write_config(workdir, count, seed, size)
    targets = fit_targets(config)
    runs = [("clean", snakemake(workdir, *targets))]
    runs.append(("no-op rerun", snakemake(workdir, *targets)))
    first = next(iter(yaml.safe_load(config.read_text())["models"]))
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump({"models": {first: {"formula": CHANGED_FORMULA}}}))
    runs.append((f"{first}'s formula changed", snakemake(workdir, *targets, "--configfile", str(override))))
    if unbatched:
        alone = scratch / "unbatched"
        write_config(alone, count, seed, batch_size=1)
        runs.append(("clean, one job per model (batches.size: 1)", snakemake(alone, *targets)))
    rows = [[name, run["seconds"], run["cpu"], run["jobs"], describe(run["rules"]), run["load"]] for name, run in runs]
    print(report(rows, count, seed, size), file=sys.stderr, flush=True)  # kept if the floor fails
    if floor:
        from workflow_runs import floor_runs  # this file's folder is on sys.path

        for jobs in dict.fromkeys([runs[0][1]["jobs"], count + 1]):
            (scratch / f"floor_{jobs}").mkdir()
            for row in floor_runs(scratch / f"floor_{jobs}", jobs, 1)[1:3]:
                rows.append([f"Snakemake's floor: {row['run']}", row["seconds"][0], None, jobs, "", None])
    return rows


def describe(rules: list[str]) -> str:
    """Jobs by rule, batches counted together."""
    counts: dict[str, int] = {}
    for rule in rules:
        name = "fit_batch_*" if rule.startswith("fit_batch_") else rule
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{rule} x{n}" for rule, n in counts.items()) or "none"


def report(rows: list[list], count: int, seed: int, size: int | None) -> str:
    batches = "the default batches" if size is None else f"batches.size: {size}"
    lines = [
        f"# Many models: {count} models on one {ROWS:,}-row data set (seed {seed}), {batches}, `snakemake --cores 2`",
        "",
        "| run | seconds | CPU seconds | jobs | jobs by rule | load average before |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, cpu, jobs, rules, load in rows:
        cells = [name, f"{seconds:.1f}", "–" if cpu is None else f"{cpu:.1f}", str(jobs), rules]
        cells.append("–" if load is None else f"{load:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["write", "benchmark"], default="benchmark")
    parser.add_argument("directory", nargs="?", type=Path, help="write: where config.yaml and the data go")
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--size", type=int, help="batches.size (default: the workflow's)")
    parser.add_argument("--unbatched", action="store_true", help="also the clean call with one job per model")
    parser.add_argument("--floor", action="store_true", help="also Snakemake's floor for as many jobs")
    args = parser.parse_args(argv)
    if args.command == "write":
        print(write_config(args.directory, args.models, args.seed, args.size))
        return
    with tempfile.TemporaryDirectory(prefix="lmmflow_many_") as scratch:
        rows = benchmark(Path(scratch), args.models, args.seed, args.size, args.unbatched, args.floor)
    text = report(rows, args.models, args.seed, args.size)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "many_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
