"""Section 2: the configured models' fit seconds (the workflow's fit job, lmmflow in process,
statsmodels robust and default) and each one's REML logLik."""

from __future__ import annotations

import math
from pathlib import Path

from common import QUICK_MODELS, fmt, heading, progress, statsmodels_default, table, timed

READING = (  # the report's paragraph on the columns
    "job s: the workflow's fit job (results/benchmarks/fit/<model>.tsv; Python start-up and "
    "I/O included). fit_model: the workflow's fit (engine + independent check); engine: "
    "the engine fit alone (groups-last or blocked). "
    "default: statsmodels' single `MixedLM.fit(reml=True)`; short by: its logLik below the best."
)


def section(config: dict, mirror: Path | None, workdir: Path | None, quick: bool) -> list[str]:
    """The report's lines on the configured models (only QUICK_MODELS with ``quick``), fitted on the
    workflow's prepared tables in ``workdir`` if it ran, else on tables prepared from ``mirror``."""
    progress("chapter models ...")
    # linear mixed models only: the configured GLMMs are timed by the GLMM section (glmm.py)
    models = [
        model
        for model, spec in config["models"].items()
        if spec.get("family", "gaussian") == "gaussian" and (not quick or model in QUICK_MODELS)
    ]
    return model_lines(model_rows(config, models, prepared_datasets(config, mirror, workdir), workdir))


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


def model_rows(config: dict, models: list[str], data: dict, workdir: Path | None) -> list[dict]:
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


def model_lines(rows: list[dict]) -> list[str]:
    lines = heading("Chapter models: fit seconds and REML logLik", READING)
    header = [
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
    ]
    body = [
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
        for r in rows
    ]
    return lines + table(header, body) + [""]
