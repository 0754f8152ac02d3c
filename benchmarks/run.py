"""lmmflow benchmarks: the workflow's run times, per-model fit times, and REML scaling with groups.

    python benchmarks/run.py            # everything (~5-10 min on 2 cores)
    python benchmarks/run.py --quick    # smoke run: the two sleepstudy models, 200 and 2,000 students

Prints one markdown report and writes it to benchmarks/results/latest.md. Sections, each measured
and reported by its module of this folder:

1. Workflow (workflow_runs.py): a clean run of the default target (the report included when
   `rule all` asks for it) with --cores 2 in a fresh scratch directory (config.yaml copied, raw
   files from the data mirror), a no-op rerun, and an incremental rerun after one model's formula changed
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
2. Configured models (chapter_models.py): the fit job's wall time (the workflow's
   results/benchmarks/fit/<model>.tsv, Python start-up included) and in-process seconds of
   lmmflow.fit.fit_model (engine fit plus the independent check),
   lmmflow.engine.choice.fit_profiled (the engine alone),
   lmmflow.verify.statsmodels_fit.fit_statsmodels (robust: several optimizers) and statsmodels'
   default single fit, each with its REML logLik (statsmodels: "–" for crossed models, which it
   cannot express).
3. Scaling (gpa_scaling.py): the GPA random-slope model on data simulated with the chapter's
   estimates, 6 occasions per student; each fit in a fresh subprocess (its own peak RSS). A path
   is skipped at a size where the growth of its time over the smaller sizes predicts more than
   --max-seconds. "optimum" compares each logLik with the best over every path run at that size.
4. InstEval (insteval.py; only with --insteval): `y ~ service + (1 | s) + (1 | d) + (1 | dept)` on
   lme4's InstEval (73,421 ratings, 2,972 students x 1,128 lecturers x 14 departments, crossed)
   from the data mirror, in a fresh process: design seconds, blocked-engine fit seconds
   (conditional SDs included; the first fit, then best and median of 5, with the load average),
   the sparse-LU verification, peak MB and logLik against lme4's. statsmodels can express crossed
   factors only as variance components of one all-data group: it is fitted on 1% and 2% of the
   students and its full-size time predicted (a lower bound: linear in rows).
5. GLMMs (glmm.py; only with --glmm): every model of ../shared/reference/glmm fitted in-process,
   best of 3, with its independent verification, beside lme4's and mixedlm's times and lme4's
   optimum.
Timings are of one run each (but InstEval's and the GLMMs' fits), on whatever machine runs this: read them as
orders of magnitude.
common.py holds what the sections share (paths, timing, child processes, tables); report_text.py
assembles the report.
No test fails on a timing; tests/workflow/test_benchmarks.py only runs --quick as a smoke test.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import chapter_models
import glmm
import gpa_scaling
import insteval
import report_text
import workflow_runs
import yaml
from common import DEFAULT_MIRROR, RESULTS, ROOT, progress


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: sleepstudy models, 200 and 2,000 students")
    parser.add_argument(
        "--mirror",
        type=Path,
        default=DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None,
        help=f"data mirror (default {DEFAULT_MIRROR} if present, else download)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help=f"numbers of students (default {gpa_scaling.SIZES})")
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
    parser.add_argument("--glmm", action="store_true", help="also the GLMM section: lme4's reference glmer models")
    return parser


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    mirror = args.mirror.resolve() if args.mirror else None
    if args.insteval and (mirror is None or not (mirror / "InstEval.csv").exists()):
        parser.error("--insteval reads InstEval.csv from the data mirror: give --mirror")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="lmmflow-bench-"))
    sections, workdir = [], None
    try:
        if "workflow" not in args.skip:
            workdir, lines = workflow_runs.section(scratch, mirror, args.quick, args.repeat)
            sections.append(lines)
        if "models" not in args.skip:
            sections.append(chapter_models.section(config, mirror, workdir, args.quick))
        if "scaling" not in args.skip:
            sections.append(gpa_scaling.section(args.sizes, args.max_seconds, args.quick))
        if args.insteval:
            sections.append(insteval.section(mirror))
        if args.glmm:
            sections.append(glmm.section())
    finally:
        if args.keep:
            progress(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    text = report_text.report(args.quick, sections)
    print(text)
    from lmmflow.outputs.io import atomic_path

    with atomic_path(args.output) as temporary:
        temporary.write_text(text)


if __name__ == "__main__":
    main()
