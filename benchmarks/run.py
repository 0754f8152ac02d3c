"""lmmflow benchmarks: the workflow's run times, per-model fit times, and REML scaling with groups.

    python benchmarks/run.py            # everything (~5-10 min on 2 cores)
    python benchmarks/run.py --quick    # smoke run: the two sleepstudy models, 200 and 2,000 students

Prints one markdown report and writes it to benchmarks/results/latest.md. Sections:

1. Workflow: a clean run of the default target (the report included when `rule all` asks for
   it) with --cores 2 in a fresh scratch directory (config.yaml copied, raw files from the
   data mirror), a no-op rerun, and an incremental rerun after one model's formula changed
   (`--configfile` overriding models.sleep_uncorrelated.formula): seconds and jobs run. Then a
   user's model: one model (the GPA random-slope model) on 20,000 simulated students x 6
   occasions in a CSV file, fitted by the whole `snakemake` call a user makes for its fit.json
   in a fresh directory (fetch, prepare, fit). With --repeat N the clean run (each in a fresh
   directory), its no-op rerun and the user model run N times: best and spread.
   Snakemake's floor: `snakemake --version`, and a trivial workflow with as many Python script
   jobs as the clean run, each writing a one-row table and importing nothing or only pandas,
   clean with --cores 2 and its no-op rerun (N times with --repeat): the least any workflow of
   that many jobs takes on this machine.
   Per rule, import vs work: a second clean run of the same target, one job at a time
   (--cores 1), under Python's import-time profile (PYTHONPROFILEIMPORTTIME). A job's imports
   are the top-level cumulative import times of its Python process (start-up, Snakemake's
   script preamble, the script's imports and any import during its work, such as statsmodels
   for a verification); its seconds are Snakemake's own record of the job's start and end
   (.snakemake/metadata); work is the rest (the computation, reading and writing files,
   Snakemake's job set-up). The profile itself adds a few percent to the imports.
2. Configured models: the fit job's wall time (the workflow's results/benchmarks/fit/<model>.tsv,
   Python start-up included) and in-process seconds of lmmflow.fit.fit_model (engine fit plus
   the independent check), lmmflow.engine.choice.fit_profiled (the engine alone),
   lmmflow.verify.statsmodels_fit.fit_statsmodels (robust: several optimizers) and statsmodels' default single
   fit, each with its REML logLik (statsmodels: "–" for crossed models, which it cannot express).
3. Scaling: the GPA random-slope model on data simulated with the chapter's estimates, 6
   occasions per student; each fit in a fresh subprocess (its own peak RSS). A path is skipped
   at a size where the growth of its time over the smaller sizes predicts more than
   --max-seconds. "optimum" compares each logLik with the best over every path run at that size.
4. InstEval (only with --insteval): `y ~ service + (1 | s) + (1 | d) + (1 | dept)` on lme4's
   InstEval (73,421 ratings, 2,972 students x 1,128 lecturers x 14 departments, crossed) from the
   data mirror, in a fresh process: design seconds, blocked-engine fit seconds (conditional SDs
   included; the first fit, then best and median of 5, with the load average), the sparse-LU
   verification, peak MB and logLik against lme4's. statsmodels can
   express crossed factors only as variance components of one all-data group: it is fitted on
   1% and 2% of the students and its full-size time predicted (a lower bound: linear in rows).
Timings are of one run each (but InstEval's fit), on whatever machine runs this: read them as orders of magnitude.
No test fails on a timing; tests/workflow/test_benchmarks.py only runs --quick as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_MIRROR = ROOT.parent / "shared" / "data"
GPA_FORMULA = "y ~ occasion + (1 + occasion | student)"
# The chapter's GPA estimates, the truth of the simulation.
GPA_TRUTH = dict(
    intercept=2.599, slope=0.1063, sd_intercept=0.2126, sd_slope=0.0671, correlation=-0.098, sd_residual=0.2059
)
SIZES = [200, 2_000, 20_000, 125_000]
QUICK_SIZES = [200, 2_000]
PATHS = {  # scaling: path -> what runs in the child
    "fast": "lmmflow.engine.groups_last.fit_groups_last",
    "robust": "lmmflow.verify.statsmodels_fit.fit_statsmodels",
    "default": "statsmodels MixedLM.fit(reml=True)",
}
USER_MODEL_STUDENTS = 20_000
QUICK_USER_MODEL_STUDENTS = 2_000
USER_MODEL_TARGET = "results/models/students_slopes/fit.json"
INCREMENTAL_MODEL = "sleep_uncorrelated"
INCREMENTAL_FORMULA = "Reaction ~ Days + (1 | Subject)"
QUICK_TARGETS = ["results/models/sleep_slopes/fit.json", f"results/models/{INCREMENTAL_MODEL}/fit.json"]
SAME_OPTIMUM = 1e-4  # logLik units: closer than this to the best counts as the optimum


# --- 1. workflow ---------------------------------------------------------------------------------


def snakemake_command(workdir: Path, mirror: Path | None, *args: str, cores: int = 2) -> list[str]:
    command = ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", str(cores)]
    command += list(args)
    if mirror is not None:
        command += ["--config", f"data_mirror={mirror}"]
    return command


def snakemake(workdir: Path, mirror: Path | None, *args: str) -> tuple[float, int, str]:
    """Seconds, number of jobs run (rule `all` not counted) and the printed output of one run."""
    seconds, printed = timed_run(snakemake_command(workdir, mirror, *args))
    jobs = len(re.findall(r"^\s*(?:local)?(?:rule|checkpoint) (?!all\b)\w+:", printed, flags=re.M))
    return seconds, jobs, printed


def timed_run(command: list[str]) -> tuple[float, str]:
    """Wall seconds and printed output of ``command``, which must succeed."""
    clock = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - clock
    printed = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{printed[-3000:]}")
    return seconds, printed


def fresh_workdir(path: Path) -> Path:
    """A new working directory with the repository's config.yaml."""
    path.mkdir()
    shutil.copyfile(ROOT / "config.yaml", path / "config.yaml")
    return path


def workflow_section(
    scratch: Path, mirror: Path | None, targets: list[str], students: int, repeats: int
) -> tuple[list[dict], Path]:
    """The runs of section 1; the clean run, its no-op rerun and the user model ``repeats`` times,
    each clean run in a fresh directory (a row's seconds: every run's)."""
    clean, noop = [], []
    for attempt in range(repeats):
        workdir = fresh_workdir(scratch / f"workflow_{attempt}")
        seconds, clean_jobs, _ = snakemake(workdir, mirror, *targets)
        clean.append(seconds)
        seconds, noop_jobs, _ = snakemake(workdir, mirror, *targets)
        noop.append(seconds)
    rows = [
        {"run": "clean, --cores 2", "seconds": clean, "jobs": clean_jobs},
        {"run": "no-op rerun", "seconds": noop, "jobs": noop_jobs},
    ]
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump({"models": {INCREMENTAL_MODEL: {"formula": INCREMENTAL_FORMULA}}}))
    seconds, jobs, printed = snakemake(workdir, mirror, *targets, "--configfile", str(override))
    rerun = sorted(set(re.findall(r"^\s*(?:local)?rule (?!all\b)(\w+):", printed, flags=re.M)))
    rows.append(
        {
            "run": f"incremental: models.{INCREMENTAL_MODEL}.formula changed; reran: {', '.join(rerun)}",
            "seconds": [seconds],
            "jobs": jobs,
        }
    )
    user = [user_model_run(scratch / f"user_model_{attempt}", students) for attempt in range(repeats)]
    rows.append(
        {
            "run": f"user model on {students:,} students: the whole `snakemake` call for its fit.json",
            "seconds": [seconds for seconds, _ in user],
            "jobs": user[-1][1],
        }
    )
    return rows, workdir


def user_model_run(workdir: Path, students: int) -> tuple[float, int]:
    """Seconds and jobs of a user's `snakemake` call for one model's fit.json: the GPA random-slope
    model on simulated students (6 occasions each) in a CSV file of their own (a `path:` source)."""
    from lmmflow.data.simulate import simulate_random_slopes

    workdir.mkdir()
    data = simulate_random_slopes(students, 6, **GPA_TRUTH, rng=np.random.default_rng(20261127))
    data.to_csv(workdir / "students.csv", index=False)
    config = {
        "datasets": {"students": {"source": {"path": "students.csv"}, "factors": ["student"]}},
        "models": {"students_slopes": {"dataset": "students", "formula": GPA_FORMULA}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    seconds, jobs, _ = snakemake(workdir, None, USER_MODEL_TARGET)
    return seconds, jobs


# --- 1b. Snakemake's floor: a trivial workflow with as many jobs ----------------------------------

FLOOR_SNAKEFILE = """\
rule all:
    input:
        expand("out/{job}.csv", job=range(int(config["jobs"]))),


rule job:
    output:
        "out/{job}.csv",
    log:
        "logs/{job}.log",
    script:
        "job.py"
"""
FLOOR_SCRIPTS = {  # what a job imports -> its script: the least a job writing a table does
    "nothing": 'open(snakemake.output[0], "w").write("a\\n1\\n")\n',
    "pandas": 'import pandas\n\npandas.DataFrame({"a": [1]}).to_csv(snakemake.output[0], index=False)\n',
}


def floor_section(scratch: Path, jobs: int, repeats: int) -> list[dict]:
    """What Snakemake itself costs on this machine, beside which the workflow's runs are read:
    `snakemake --version`, then a trivial workflow of ``jobs`` Python script jobs (as many as the
    workflow's clean run) importing nothing or only pandas, clean with --cores 2, and its no-op
    rerun; each ``repeats`` times, every clean run in a fresh directory."""
    rows = [{"run": "`snakemake --version`", "seconds": [], "jobs": 0}]
    for _ in range(repeats):
        rows[0]["seconds"].append(timed_run(["snakemake", "--version"])[0])
    noop = []
    for imports, script in FLOOR_SCRIPTS.items():
        clean = []
        for attempt in range(repeats):
            workdir = scratch / f"floor_{imports}_{attempt}"
            workdir.mkdir()
            (workdir / "Snakefile").write_text(FLOOR_SNAKEFILE)
            (workdir / "job.py").write_text(script)
            snakefile = str(workdir / "Snakefile")
            command = [
                "snakemake",
                "--snakefile",
                snakefile,
                "--directory",
                str(workdir),
                "--cores",
                "2",
                "--config",
                f"jobs={jobs}",
            ]
            clean.append(timed_run(command)[0])
            if imports == "nothing":
                noop.append(timed_run(command)[0])
        rows.append({"run": f"clean, jobs importing {imports}", "seconds": clean, "jobs": jobs})
    rows.append({"run": "no-op rerun", "seconds": noop, "jobs": 0})
    return rows


# --- 1c. per rule: import vs work seconds --------------------------------------------------------

JOB_HEADER = re.compile(r"^\s*(?:local)?rule (\w+):$")
IMPORT_PROFILE_HEADER = "import time: self [us] | cumulative | imported package"
LARGEST_IMPORTS = 4  # packages named per rule, those of SHOWN_IMPORT_SECONDS or more
SHOWN_IMPORT_SECONDS = 0.05
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$")


def rule_profile_section(scratch: Path, mirror: Path | None, targets: list[str]) -> list[dict]:
    """Per rule: jobs, and per job its seconds, its imports' seconds and its largest imports
    (a clean run, one job at a time, under Python's import-time profile: module docstring)."""
    workdir = fresh_workdir(scratch / "profiled")
    started = time.time()
    result = subprocess.run(
        snakemake_command(workdir, mirror, *targets, cores=1),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONPROFILEIMPORTTIME": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"profiled snakemake run failed in {workdir}:\n{result.stdout[-3000:]}")
    imports = job_imports(result.stdout)
    seconds = job_seconds(workdir, started)
    rows = []
    for rule in dict.fromkeys(job["rule"] for job in imports):
        jobs = [job for job in imports if job["rule"] == rule]
        packages: dict[str, float] = {}
        for job in jobs:
            for package, package_seconds in job["packages"].items():
                packages[package] = packages.get(package, 0.0) + package_seconds / len(jobs)
        shown = {package: spent for package, spent in packages.items() if spent >= SHOWN_IMPORT_SECONDS}
        rows.append(
            {
                "rule": rule,
                "jobs": len(jobs),
                "seconds": float(np.mean(seconds[rule])) if seconds.get(rule) else math.nan,
                "imports": float(np.mean([job["imports"] for job in jobs])),
                "largest": sorted(shown.items(), key=lambda item: -item[1])[:LARGEST_IMPORTS],
            }
        )
    return rows


def job_imports(printed: str) -> list[dict]:
    """Per job of a --cores 1 run under PYTHONPROFILEIMPORTTIME, in order: its rule, the seconds
    of its process's top-level imports, and the seconds spent in each package's own modules
    (``package_of``). Snakemake's own imports print before the job's process starts its profile
    (its header line), and are left out."""
    jobs: list[dict] = []
    in_job_process = False
    for line in printed.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append({"rule": header.group(1), "imports": 0.0, "packages": {}})
            in_job_process = False
        elif line.startswith(IMPORT_PROFILE_HEADER):
            in_job_process = bool(jobs)
        elif in_job_process and (match := IMPORT_LINE.match(line)):
            own, cumulative = int(match.group(1)) / 1e6, int(match.group(2)) / 1e6
            indent, package = len(match.group(3)), package_of(match.group(4))
            if indent == 1:
                jobs[-1]["imports"] += cumulative
            if package is not None:
                jobs[-1]["packages"][package] = jobs[-1]["packages"].get(package, 0.0) + own
    return [job for job in jobs if job["rule"] != "all"]


def package_of(module: str) -> str | None:
    """The package a module's import time is counted for: its top-level package, scipy's split by
    subpackage (scipy.stats alone is ~1 s); None for the standard library."""
    top, _, rest = module.partition(".")
    if top == "scipy" and rest and not rest.startswith("_"):
        return f"scipy.{rest.partition('.')[0]}"
    return None if top in sys.stdlib_module_names or top.startswith("_") else top


def job_seconds(workdir: Path, since: float) -> dict[str, list[float]]:
    """Rule -> seconds of each job started since ``since``, from Snakemake's metadata records
    (one per output file, each with its job's hash, start and end)."""
    jobs = {}
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        if record.get("starttime") and record["starttime"] >= since:
            jobs[record["job_hash"]] = (record["rule"], record["endtime"] - record["starttime"])
    seconds: dict[str, list[float]] = {}
    for rule, wall in jobs.values():
        seconds.setdefault(rule, []).append(wall)
    return seconds


# --- 2. chapter models ---------------------------------------------------------------------------


def prepared_datasets(config: dict, mirror: Path | None, workdir: Path | None) -> dict:
    """The workflow's prepared tables if it ran, else prepared here from the mirror."""
    from lmmflow.data.acquire import raw_file_name
    from lmmflow.data.prepare import prepare_dataset, read_prepared

    data = {}
    for name, spec in config["datasets"].items():
        csv = workdir / "results" / "data" / f"{name}.csv" if workdir else None
        if csv is not None and csv.exists():
            data[name] = read_prepared(csv, csv.with_suffix(".schema.json"))
        elif "source" in spec and mirror is not None and (mirror / raw_file_name(spec["source"])).exists():
            data[name] = prepare_dataset(name, mirror / raw_file_name(spec["source"]), spec)[0]
    return data


def statsmodels_default(design):
    """statsmodels' own single fit (its default optimizer chain), REML."""
    from lmmflow.verify.statsmodels_fit import to_mixedlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = to_mixedlm(design).fit(reml=True)
    return float(result.llf), bool(result.converged)


def timed(function, *args):
    clock = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - clock, value


def model_section(config: dict, models: list[str], data: dict, workdir: Path | None) -> list[dict]:
    from lmmflow.engine.choice import fit_profiled
    from lmmflow.fit import fit_model
    from lmmflow.model.design import build_design
    from lmmflow.verify.statsmodels_fit import UnsupportedByStatsmodels, fit_statsmodels

    rows = []
    for model in models:
        spec = config["models"][model]
        if spec["dataset"] not in data:
            continue
        design = build_design(spec["formula"], data[spec["dataset"]])
        job = None
        if workdir is not None and (workdir / "results" / "benchmarks" / "fit" / f"{model}.tsv").exists():
            with open(workdir / "results" / "benchmarks" / "fit" / f"{model}.tsv") as stream:
                header, values = (line.split("\t") for line in stream.read().splitlines()[:2])
            job = dict(zip(header, values))
        fit_model(design)  # warm-up: first calls pay for lazy imports and caches
        t_model, chosen = timed(fit_model, design)
        t_fast, fast = timed(fit_profiled, design)
        try:
            t_robust, robust = timed(fit_statsmodels, design)
            t_default, (default_loglik, default_converged) = timed(statsmodels_default, design)
            robust_loglik = robust.loglik
        except UnsupportedByStatsmodels:  # crossed
            t_robust = t_default = robust_loglik = default_loglik = math.nan
            default_converged = True
        best = max(fast.loglik, robust_loglik, default_loglik)
        rows.append(
            {
                "model": model,
                "n_obs": design.n_obs,
                "job_s": float(job["s"]) if job else math.nan,
                "job_rss_mb": float(job["max_rss"]) if job else math.nan,
                "fit_model_s": t_model,
                "chosen": chosen.engine,
                "fit_reml_s": t_fast,
                "fit_statsmodels_s": t_robust,
                "default_s": t_default,
                "loglik_fast": fast.loglik,
                "loglik_robust": robust_loglik,
                "loglik_default": default_loglik,
                "default_converged": default_converged,
                "default_short_by": best - default_loglik,
            }
        )
    return rows


# --- 3. scaling ----------------------------------------------------------------------------------


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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"build_s": build_s, "fit_s": fit_s, "loglik": loglik, "converged": converged, "peak_mb": peak_mb})
    )


def child_result(*arguments: str) -> dict:
    """Run this script with ``arguments`` in a fresh process; its last printed line, as JSON."""
    command = [sys.executable, __file__, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_child(n_groups: int, path: str) -> dict:
    return child_result("--scaling-child", str(n_groups), path)


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


def scaling_section(sizes: list[int], max_seconds: float, robust_max: int | None) -> tuple[list[dict], dict]:
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
                results[path] = run_child(size, path)
                if "fit_s" in results[path]:
                    done_sizes.append(size)
                    done_seconds.append(results[path]["fit_s"])
            print(f"  {size:>7,} students, {path}: {results[path]}", file=sys.stderr, flush=True)
        best = max((r["loglik"] for r in results.values() if "loglik" in r), default=math.nan)
        for path, result in results.items():
            rows.append({"students": size, "path": path, **result, "best": best})
    exponents = {path: growth_exponent(*measured[path]) for path in PATHS}
    exponents_large = {
        path: growth_exponent([s for s in sizes_ if s >= 2_000], [t for s, t in zip(sizes_, times) if s >= 2_000])
        for path, (sizes_, times) in measured.items()
    }
    return rows, {"all sizes": exponents, "2,000 students and more": exponents_large}


# --- 4. InstEval (crossed; --insteval) -----------------------------------------------------------

INSTEVAL_FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
INSTEVAL_STATSMODELS_FRACTIONS = (0.01, 0.02)  # of the students, for statsmodels' predicted time
INSTEVAL_FITS = 5  # the first in a fresh process, then the same fit again: best and median
LME4_REFERENCE = ROOT.parent / "shared" / "reference" / "lme4_extensions.json"


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
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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


def insteval_section(mirror: Path) -> dict:
    print("  InstEval: lmmflow ...", file=sys.stderr, flush=True)
    ours = child_result("--insteval-child", str(mirror))
    statsmodels_rows = []
    for fraction in INSTEVAL_STATSMODELS_FRACTIONS:
        print(f"  InstEval: statsmodels on {fraction:.0%} of the students ...", file=sys.stderr, flush=True)
        statsmodels_rows.append(child_result("--insteval-statsmodels-child", str(mirror), str(fraction)))
    measured = [r for r in statsmodels_rows if "fit_s" in r]
    full_rows = len(insteval_data(mirror))
    # A lower bound: linear in rows from the largest subset (its growth was steeper than linear).
    predicted = measured[-1]["fit_s"] * full_rows / measured[-1]["rows"] if measured else math.nan
    lme4 = json.loads(LME4_REFERENCE.read_text())["insteval_crossed"] if LME4_REFERENCE.exists() else {}
    return {"ours": ours, "statsmodels": statsmodels_rows, "predicted": predicted, "lme4": lme4}


# --- the report ----------------------------------------------------------------------------------


def fmt(value, digits=2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(fmt(v) if not isinstance(v, str) else v for v in row) + " |" for row in rows]


def optimum(row: dict) -> str:
    if "loglik" not in row:
        return "–"
    gap = row["best"] - row["loglik"]
    return "yes" if gap <= SAME_OPTIMUM else f"no (short by {gap:.3g})"


def insteval_lines(result: dict) -> list[str]:
    ours, lme4 = result["ours"], result["lme4"]
    lines = [
        f"## InstEval: `{INSTEVAL_FORMULA}` (73,421 ratings; students x lecturers x departments, crossed)",
        "",
        f"Ours in a fresh process (peak MB: its maximum RSS), the fit {INSTEVAL_FITS} times: the first, "
        "then best and median; the load average before and after says how busy the machine was. "
        "An evaluation of the scaled L-BFGS-B includes the gradient. statsmodels: `smf.mixedlm` with the three "
        "factors as variance components of one all-data group (it has no crossed random effects), "
        "fitted on the ratings of a share of the students; full size predicted (linear in rows from "
        "the largest share: a lower bound, as its time grew faster than that), not run. lme4: "
        "1.1-31 on R 4.2.2 took 34-45 s for `lmer` plus 11 s for `ranef(condVar = TRUE)` on a "
        "machine like this (shared/notes/crossed.md).",
        "",
    ]
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


def spread(seconds: list[float]) -> str:
    return f"{min(seconds):.1f}-{max(seconds):.1f} ({len(seconds)} runs)" if len(seconds) > 1 else "1 run"


def rule_profile_lines(rows: list[dict]) -> list[str]:
    lines = [
        "## Jobs: import vs work seconds per rule (a clean run, `--cores 1`, import-time profile)",
        "",
        "Per job of the rule (mean): its seconds (Snakemake's start-to-end record), its imports "
        "(every top-level import of its Python process: start-up, Snakemake's preamble, the script's "
        "imports and those during its work) and the rest (work: computing, reading and writing, "
        "Snakemake's job set-up). Largest imports: the seconds of each package's own modules "
        "(scipy's per subpackage; lmmflow's are compiled on every import where bytecode is not cached).",
        "",
    ]
    body = [
        [
            r["rule"],
            str(r["jobs"]),
            r["seconds"],
            r["imports"],
            r["seconds"] - r["imports"],
            ", ".join(f"{package} {seconds:.2f}" for package, seconds in r["largest"]) or "–",
        ]
        for r in rows
    ]
    jobs = sum(r["jobs"] for r in rows)
    total = sum(r["jobs"] * r["seconds"] for r in rows)
    imports = sum(r["jobs"] * r["imports"] for r in rows)
    body.append([f"all {jobs} jobs (total seconds)", str(jobs), total, imports, total - imports, "–"])
    return lines + table(["rule", "jobs", "s per job", "imports s", "work s", "largest imports (s)"], body) + [""]


def report(args, workflow_rows, floor_rows, model_rows, scaling_rows, exponents, rule_rows=(), insteval=None) -> str:
    import numpy
    import scipy
    import statsmodels

    lines = [
        "# lmmflow benchmarks" + (" (--quick)" if args.quick else ""),
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.node()} · {os.cpu_count()} CPUs · Python "
        f"{platform.python_version()} · numpy {numpy.__version__} · scipy {scipy.__version__} · "
        f"statsmodels {statsmodels.__version__}",
        "",
    ]
    if workflow_rows:
        lines += ["## Workflow (`snakemake --cores 2`, fresh scratch directory)", ""]
        lines += table(
            ["run", "seconds (best)", "spread", "jobs"],
            [[r["run"], min(r["seconds"]), spread(r["seconds"]), r["jobs"]] for r in workflow_rows],
        )
        lines += [""]
    if floor_rows:
        lines += [
            "## Snakemake's floor (a trivial workflow with as many jobs, `--cores 2`)",
            "",
            "The same Snakemake and Python on a Snakefile of one rule whose Python script jobs write a "
            "one-row table, importing nothing or only pandas: what no workflow of that many jobs "
            "can run below here, whatever its jobs compute.",
            "",
        ]
        lines += table(
            ["run", "seconds (best)", "spread", "jobs"],
            [[r["run"], min(r["seconds"]), spread(r["seconds"]), r["jobs"]] for r in floor_rows],
        )
        lines += [""]
    if rule_rows:
        lines += rule_profile_lines(rule_rows)
    if model_rows:
        lines += [
            "## Chapter models: fit seconds and REML logLik",
            "",
            "job s: the workflow's fit job (results/benchmarks/fit/<model>.tsv; Python start-up and "
            "I/O included). fit_model: the workflow's fit (engine + independent check); engine: "
            "the engine fit alone (groups-last or blocked). "
            "default: statsmodels' single `MixedLM.fit(reml=True)`; short by: its logLik below the best.",
            "",
        ]
        lines += table(
            [
                "model",
                "n",
                "job s",
                "job MB",
                "fit_model s",
                "engine",
                "engine s",
                "fit_statsmodels s",
                "default s",
                "logLik engine",
                "logLik robust",
                "logLik default",
                "default short by",
            ],
            [
                [
                    r["model"],
                    str(r["n_obs"]),
                    r["job_s"],
                    fmt(r["job_rss_mb"], 0),
                    r["fit_model_s"],
                    r["chosen"],
                    r["fit_reml_s"],
                    r["fit_statsmodels_s"],
                    r["default_s"],
                    fmt(r["loglik_fast"], 4),
                    fmt(r["loglik_robust"], 4),
                    fmt(r["loglik_default"], 4) + ("" if r["default_converged"] else " (not converged)"),
                    f"{r['default_short_by']:.2g}",
                ]
                for r in model_rows
            ],
        )
        lines += [""]
    if scaling_rows:
        lines += [
            f"## Scaling: `{GPA_FORMULA}`, simulated, 6 occasions per student",
            "",
            "Each fit in a fresh process; peak MB is that process's maximum RSS (Python, numpy, "
            "statsmodels and the data included). fast = lmmflow.engine.groups_last.fit_groups_last, robust = "
            "lmmflow.verify.statsmodels_fit.fit_statsmodels, default = statsmodels' single fit. optimum: logLik within "
            f"{SAME_OPTIMUM:g} of the best over the paths run at that size.",
            "",
        ]
        body = []
        for r in scaling_rows:
            if "fit_s" in r:
                body.append(
                    [
                        f"{r['students']:,}",
                        r["path"],
                        f"{6 * r['students']:,}",
                        r["build_s"],
                        r["fit_s"],
                        fmt(r["peak_mb"], 0),
                        fmt(r["loglik"], 4),
                        "yes" if r["converged"] else "no",
                        optimum(r),
                    ]
                )
            else:
                body.append(
                    [
                        f"{r['students']:,}",
                        r["path"],
                        f"{6 * r['students']:,}",
                        "–",
                        "–",
                        "–",
                        "–",
                        "–",
                        r.get("skipped", r.get("error", "?")),
                    ]
                )
        lines += table(
            ["students", "path", "rows", "design s", "fit s", "peak MB", "REML logLik", "converged", "optimum"], body
        )
        lines += ["", "Growth of fit seconds with the number of students (fitted exponent b in t ~ n^b):", ""]
        lines += table(
            ["path", *exponents],
            [[path, *(fmt(exponents[key][path]) for key in exponents)] for path in PATHS],
        )
        lines += [""]
    if insteval:
        lines += insteval_lines(insteval)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: sleepstudy models, 200 and 2,000 students")
    parser.add_argument(
        "--mirror",
        type=Path,
        default=DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None,
        help=f"data mirror (default {DEFAULT_MIRROR} if present, else download)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help=f"numbers of students (default {SIZES})")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="skip a statsmodels fit predicted to take longer (default 600)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="clean run, no-op rerun and user model this many times (default 1)"
    )
    parser.add_argument("--skip", nargs="+", default=[], choices=["workflow", "models", "scaling"])
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--insteval", action="store_true", help="also the crossed InstEval section (not by default)")
    parser.add_argument("--scaling-child", nargs=2, metavar=("N_GROUPS", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--insteval-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--insteval-statsmodels-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_child:
        scaling_child(int(args.scaling_child[0]), args.scaling_child[1])
        return
    if args.insteval_child:
        insteval_child(args.insteval_child)
        return
    if args.insteval_statsmodels_child:
        statsmodels_insteval_child(Path(args.insteval_statsmodels_child[0]), float(args.insteval_statsmodels_child[1]))
        return

    mirror = args.mirror.resolve() if args.mirror else None
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="lmmflow-bench-"))
    try:
        workflow_rows, floor_rows, workdir, rule_rows = [], [], None, []
        if "workflow" not in args.skip:
            print("workflow ...", file=sys.stderr, flush=True)
            targets = QUICK_TARGETS if args.quick else []
            students = QUICK_USER_MODEL_STUDENTS if args.quick else USER_MODEL_STUDENTS
            workflow_rows, workdir = workflow_section(scratch, mirror, targets, students, args.repeat)
            print("Snakemake's floor ...", file=sys.stderr, flush=True)
            floor_rows = floor_section(scratch, workflow_rows[0]["jobs"], args.repeat)
            print("per rule: import vs work ...", file=sys.stderr, flush=True)
            rule_rows = rule_profile_section(scratch, mirror, targets)
        model_rows = []
        if "models" not in args.skip:
            print("chapter models ...", file=sys.stderr, flush=True)
            models = [m for m in config["models"] if not args.quick or m in ("sleep_slopes", INCREMENTAL_MODEL)]
            model_rows = model_section(config, models, prepared_datasets(config, mirror, workdir), workdir)
        scaling_rows, exponents = [], {}
        if "scaling" not in args.skip:
            print("scaling ...", file=sys.stderr, flush=True)
            sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
            scaling_rows, exponents = scaling_section(sizes, args.max_seconds, 200 if args.quick else None)
        insteval = None
        if args.insteval:
            if mirror is None or not (mirror / "InstEval.csv").exists():
                parser.error("--insteval reads InstEval.csv from the data mirror: give --mirror")
            print("InstEval ...", file=sys.stderr, flush=True)
            insteval = insteval_section(mirror)
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    text = report(args, workflow_rows, floor_rows, model_rows, scaling_rows, exponents, rule_rows, insteval)
    print(text)
    from lmmflow.outputs.io import atomic_path

    with atomic_path(args.output) as temporary:
        temporary.write_text(text)


if __name__ == "__main__":
    main()
