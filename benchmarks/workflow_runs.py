"""Section 1: the workflow's runs, Snakemake's floor beside them, and per rule a job's imports vs its work.

The run.py docstring says what each run measures.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from common import GPA_FORMULA, GPA_TRUTH, QUICK_MODELS, ROOT, heading, progress, table, timed_run

USER_MODEL_STUDENTS = 20_000
QUICK_USER_MODEL_STUDENTS = 2_000
USER_MODEL_TARGET = "results/models/students_slopes/fit.json"
INCREMENTAL_MODEL = "sleep_uncorrelated"  # one of QUICK_MODELS: --quick runs it too
INCREMENTAL_FORMULA = "Reaction ~ Days + (1 | Subject)"
QUICK_TARGETS = [f"results/models/{model}/fit.json" for model in QUICK_MODELS]


def section(scratch: Path, mirror: Path | None, quick: bool, repeats: int) -> tuple[Path, list[str]]:
    """Sections 1, 1b and 1c: the working directory of the last clean run (its prepared tables and
    fit jobs' records serve the chapter models) and the report's lines."""
    progress("workflow ...")
    targets = QUICK_TARGETS if quick else []
    students = QUICK_USER_MODEL_STUDENTS if quick else USER_MODEL_STUDENTS
    workflow_rows, workdir = headline_runs(scratch, mirror, targets, students, repeats)
    progress("Snakemake's floor ...")
    floor_rows = floor_runs(scratch, workflow_rows[0]["jobs"], repeats)
    progress("per rule: import vs work ...")
    rule_rows = rule_profile(scratch, mirror, targets)
    return workdir, workflow_lines(workflow_rows) + floor_lines(floor_rows) + rule_profile_lines(rule_rows)


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


def fresh_workdir(path: Path) -> Path:
    """A new working directory with the repository's config.yaml."""
    path.mkdir()
    shutil.copyfile(ROOT / "config.yaml", path / "config.yaml")
    return path


def headline_runs(
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


def floor_runs(scratch: Path, jobs: int, repeats: int) -> list[dict]:
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


def rule_profile(scratch: Path, mirror: Path | None, targets: list[str]) -> list[dict]:
    """Per rule: jobs, and per job its seconds, its imports' seconds and its largest imports
    (a clean run, one job at a time, under Python's import-time profile: run.py's docstring)."""
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


# --- the report's lines --------------------------------------------------------------------------


def spread(seconds: list[float]) -> str:
    return f"{min(seconds):.1f}-{max(seconds):.1f} ({len(seconds)} runs)" if len(seconds) > 1 else "1 run"


def runs_table(rows: list[dict]) -> list[str]:
    body = [[r["run"], min(r["seconds"]), spread(r["seconds"]), r["jobs"]] for r in rows]
    return table(["run", "seconds (best)", "spread", "jobs"], body) + [""]


def workflow_lines(rows: list[dict]) -> list[str]:
    return heading("Workflow (`snakemake --cores 2`, fresh scratch directory)") + runs_table(rows)


def floor_lines(rows: list[dict]) -> list[str]:
    lines = heading(
        "Snakemake's floor (a trivial workflow with as many jobs, `--cores 2`)",
        "The same Snakemake and Python on a Snakefile of one rule whose Python script jobs write a "
        "one-row table, importing nothing or only pandas: what no workflow of that many jobs "
        "can run below here, whatever its jobs compute.",
    )
    return lines + runs_table(rows)


def rule_profile_lines(rows: list[dict]) -> list[str]:
    lines = heading(
        "Jobs: import vs work seconds per rule (a clean run, `--cores 1`, import-time profile)",
        "Per job of the rule (mean): its seconds (Snakemake's start-to-end record), its imports "
        "(every top-level import of its Python process: start-up, Snakemake's preamble, the script's "
        "imports and those during its work) and the rest (work: computing, reading and writing, "
        "Snakemake's job set-up). Largest imports: the seconds of each package's own modules "
        "(scipy's per subpackage; lmmflow's are compiled on every import where bytecode is not cached).",
    )
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
