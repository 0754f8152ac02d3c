"""Shared by the report tests: small results trees for the blocks."""

import json
from pathlib import Path

import pandas as pd

from lmmflow.report import Results

CONTEXT = {
    "git": {"commit": None, "dirty": None},
    "versions": {"Python": "3"},
    "lock": "environment matches the lock",
    "date": "today",
    "renderer_label": "x",
}


def write_fit(results_dir: Path, model: str, **changes) -> Path:
    """``models/<model>/fit.json`` of a singular random-slope fit, with ``changes``."""
    folder = results_dir / "models" / model
    folder.mkdir(parents=True, exist_ok=True)
    fit = {
        "dataset": "d",
        "formula": "y ~ x + (1 + x | g)",
        "n_obs": 10,
        "n_groups": {"g": 5},
        "logLik": -1.0,
        "K": 6,
        "singular": True,
        "converged": True,
        "engine": "groups-last",
        "optimizer": "L-BFGS-B",
        "warnings": [],
        "fixed_effects": ["Intercept", "x"],
    }
    (folder / "fit.json").write_text(json.dumps(fit | changes))
    return folder


def model_results(tmp_path: Path) -> Results:
    """A minimal results tree: one model's (``m1``) fit and tables."""
    folder = write_fit(tmp_path / "results", "m1")
    pd.DataFrame(
        {
            "term": ["Intercept", "x"],
            "value": [2.0, 0.1],
            "se": [0.1, 0.01],
            "t": [20.0, 10.0],
            "df": [30.0, 30.0],
            "p_value": [0.0, 0.0],
            "p_value_z": [0.0, 0.0],
            "lower_2.5": [1.8, 0.08],
            "upper_97.5": [2.2, 0.12],
        }
    ).to_csv(folder / "fixed_effects.csv", index=False)
    pd.DataFrame(
        {
            "group": ["g", "g", "Residual"],
            "effect": ["Intercept", "x", ""],
            "variance": [0.04, 0.0025, 0.01],
            "sd": [0.2, 0.05, 0.1],
            "var_prop": [0.76, 0.05, 0.19],
        }
    ).to_csv(folder / "variance_components.csv", index=False)
    pd.DataFrame({"group": ["g"], "effect_1": ["Intercept"], "effect_2": ["x"], "correlation": [-0.25]}).to_csv(
        folder / "re_correlations.csv", index=False
    )
    paths = [str(p) for p in folder.iterdir()]
    return Results(paths, config={}, figures_dir=tmp_path / "build" / "figures")
