"""A GLMM's outputs (lmmflow.outputs.glmm_tables) written in-process as the fit job writes them
and checked against lme4 1.1-31 at its optimum (../shared/reference/glmm; R calls in tests/engine/test_glmm_reference.py)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engine.glmm_reference import assert_tables_match, model_call, model_data

from lmmflow.engine.families import GLMMError
from lmmflow.fit import fit_and_write, prepare_model

FILES = [
    "fit",
    "solution",
    "attempts",
    "fixed_effects",
    "variance_components",
    "re_correlations",
    "random_effects",
    "random_coefficients",
    "fitted",
]


def outputs_in(folder):
    return {name: str(folder / (f"{name}.json" if name in ("fit", "solution") else f"{name}.csv")) for name in FILES}


def write(key, folder, data=None, dataset=None, **changes):
    """The fit job's two steps (lmmflow.fit): the model's data read and checked, then its fit written."""
    call = model_call(key) | changes
    model = {"dataset": dataset or key, "formula": call["formula"]}
    data = model_data(key) if data is None else data
    prepared = prepare_model(data, model=folder.name, family=call["family"], link=call["link"], **model)
    fit_and_write(prepared, engine="fast", nAGQ=call["nAGQ"], outputs=outputs_in(folder), **model)
    return {name: Path(path).read_bytes() for name, path in outputs_in(folder).items()}


@pytest.mark.parametrize("key", ["speed_dating", "cbpp_herd", "cbpp_pois_offset"])
def test_written_tables_agree_with_lme4(tmp_path, key):
    write(key, tmp_path)
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert_tables_match(
        key,
        pd.read_csv(tmp_path / "fixed_effects.csv"),
        pd.read_csv(tmp_path / "variance_components.csv"),
        pd.read_csv(tmp_path / "random_effects.csv"),
        fit["logLik"],
    )
    assert fit["engine"] == "glmm" and fit["converged"] and fit["verification_details"]["agrees"]
    assert fit["verification_difference"] < 1e-8 * abs(fit["deviance"])
    assert fit["REML"] is False and fit["K"] == len(fit["fixed_effects"]) + 1
    fitted = pd.read_csv(tmp_path / "fitted.csv")
    assert fitted.columns.tolist() == ["row", "fitted", "link", "residual"]
    assert "seconds" not in json.dumps(fit)


def test_reruns_are_byte_identical(tmp_path):
    first = write("cbpp_herd", tmp_path / "a")
    assert write("cbpp_herd", tmp_path / "b") == first


def test_a_bad_response_names_the_column_and_leaves_nothing(tmp_path):
    data = model_data("speed_dating").assign(attractive=lambda d: d["attractive"] * 3)
    with pytest.raises(GLMMError, match="model 'test_a_bad_response.*0' .*'attractive' has values outside"):
        write("speed_dating", tmp_path, data=data, formula="attractive ~ sex + (1 | iid)")
    assert list(tmp_path.iterdir()) == []


def test_warnings_reach_fit_json(tmp_path):
    """Non-integer Poisson counts warn (R's dpois: non-integer x), as does complete separation
    (lme4: 'pwrssUpdate did not converge'), naming the term: never silent."""
    counts = model_data("cbpp_pois_offset").assign(inc=lambda d: d["incidence"] + 0.5)
    with pytest.warns(UserWarning, match="non-integer"):
        write("cbpp_pois_offset", tmp_path / "p", data=counts, formula="inc ~ period + offset(log(size)) + (1 | herd)")
    assert any("non-integer" in w for w in json.loads((tmp_path / "p" / "fit.json").read_text())["warnings"])
    rng = np.random.default_rng(1)
    separated = pd.DataFrame({"x": rng.normal(size=200), "g": np.repeat(np.arange(20), 10).astype(str)})
    separated["y"] = (separated["x"] > 0).astype(float)
    with pytest.warns(UserWarning, match="separation"):
        write("speed_dating", tmp_path / "s", data=separated, formula="y ~ x + (1 | g)")
    warnings = json.loads((tmp_path / "s" / "fit.json").read_text())["warnings"]
    assert any("separation" in w and "'x'" in w for w in warnings)
