"""Diagnostics of every fit of the run (models and shrinkage settings), from their ``fit.json``."""

from __future__ import annotations

import pandas as pd

from lmmflow.report.formatting import code, listing, pipe_table
from lmmflow.report.results import MissingResult, Results

CAPTION = (
    "Fitting path (groups-last: batched profiled (RE)ML for models nested in one factor; blocked: "
    "blocked Cholesky factor, any design, crossed included; statsmodels: robust multi-optimizer "
    "fit), the optimizers tried (bold: the solution kept), the criterion (-2 log-likelihood, REML "
    "or ML as fitted), the independent re-evaluation of that criterion at the solution (verifier "
    "and difference), and the checks."
)


def diagnostics(results: Results) -> str:
    """Per fitted model: data, fitting path, optimizer attempts, convergence, singularity, warnings."""
    rows, warnings = [], []
    for key in results.keys(r"models/\w+/fit\.json") + results.keys(r"shrinkage/\w+/fit\.json"):
        folder = key.rsplit("/", 1)[0]
        fit = results.json(key)
        name = folder.split("/")[-1]
        if folder.startswith("shrinkage/"):
            name = f"shrinkage: {name}"
        rows.append(fit_row(name, fit, optimizers_tried(results, folder, fit)))
        warnings += [f"- {code(name)}: {w}" for w in fit["warnings"]]
    if not rows:
        raise MissingResult("results/models/<model>/fit.json")
    singular = [r["model"] for r in rows if r["singular"] != "no"]
    notes = [
        f"Singular fits: {listing([code(m) for m in singular])}." if singular else "No fit is singular.",
        "All fits converged." if all(r["converged"] == "yes" for r in rows) else "**Some fits did not converge.**",
        "Warnings:\n\n" + "\n".join(warnings) if warnings else "No fit reported a warning.",
    ]
    return pipe_table(pd.DataFrame(rows), CAPTION) + "\n\n" + "\n\n".join(notes)


def optimizers_tried(results: Results, folder: str, fit: dict) -> str:
    """The optimizers in attempt order, the one kept in bold; only the kept one without attempts.csv."""
    if not results.has(f"{folder}/attempts.csv"):
        return f"**{fit['optimizer']}**"
    return ", ".join(
        (f"**{row.optimizer}**" if row.optimizer == fit["optimizer"] else row.optimizer)
        + ("" if row.converged else " (failed)")
        for row in results.csv(f"{folder}/attempts.csv").itertuples()
    )


def verification(fit: dict) -> str:
    """The verifier and |difference| of a model fit's criterion (shrinkage fits record none)."""
    if fit.get("verification") is None:
        return "–"
    return f"{fit['verification']} ({fit['verification_difference']:.1e})"


def fit_row(name: str, fit: dict, optimizers: str) -> dict:
    return {
        "model": name,
        "data": fit["dataset"],
        "n": fit["n_obs"],
        "engine": fit["engine"],
        "optimizers tried (kept in bold)": optimizers,
        "criterion": f"{-2 * fit['logLik']:.3f} ({'REML' if fit.get('REML', True) else 'ML'})",
        "verified by": verification(fit),
        "converged": "yes" if fit["converged"] else "**no**",
        "singular": "**yes**" if fit["singular"] else "no",
        "warnings": str(len(fit["warnings"])),
    }
