"""Many small models on one data set (issue 23, item 1): a seeded configuration generator and a
benchmark of the whole `snakemake` call for their fit.json files.

    python benchmarks/many_models.py write DIR [--models 150] [--seed 23]  # DIR/config.yaml + DIR/many.csv
    python benchmarks/many_models.py [--models 150] [--seed 23]            # the benchmark (below)

The data set: 1,200 rows, pupils (60) nested in schools (12) and crossed with raters (40), two
numeric predictors and a two-level factor, simulated with ``numpy.random.default_rng(seed)``.
The models: combinations of a fixed part, a random part (intercepts, slopes, correlated or not;
nested, crossed) and REML or ML, shuffled by the seed; the first ``--models`` of them.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import yaml

SCHOOLS, PUPILS_PER_SCHOOL, RATERS, RATINGS_PER_PUPIL = 12, 5, 40, 20
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


def write_config(directory: Path, count: int, seed: int) -> Path:
    """``directory``/many.csv and ``directory``/config.yaml (the data set read from that path)."""
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
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["write", "benchmark"], default="benchmark")
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args(argv)
    if args.command == "write":
        print(write_config(args.directory, args.models, args.seed))


if __name__ == "__main__":
    main()
