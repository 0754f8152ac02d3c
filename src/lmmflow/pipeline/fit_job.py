"""A fit job's command line: fit one or several models of one data set, each exactly as alone.

    python -m lmmflow.pipeline.fit_job DATA SCHEMA MODELS_JSON

``MODELS_JSON``: model name -> {dataset, formula, engine, reml, weights, family, link, nAGQ}
(the configuration's entries).
The data set is read once; every model's design is built on its own copy of it and its data
checked first (a missing column, a response its family cannot take), so a refusal comes before
any fit: then each refused model is named in one line and none is fitted. Each model then
writes its outputs (``model_outputs``: results/models/<model>/) and its log (``model_log``:
logs/fit/<model>.log, everything the model prints). workflow/rules/fit.smk runs this as a
`shell:` command: no Snakemake script preamble, and one process's imports for a whole batch. A
model whose fit fails is named in one line (its traceback in its log), the others are still
tried; then the job fails and Snakemake removes all its outputs, those of the models that
fitted included.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import warnings
from contextlib import contextmanager, redirect_stderr

# fit.py's outputs of a model (MODEL_TABLES, attempts, solution, fit), each file's name
OUTPUT_FILES = {
    "fit": "fit.json",
    "solution": "solution.json",
    "attempts": "attempts.csv",
    "fixed_effects": "fixed_effects.csv",
    "variance_components": "variance_components.csv",
    "re_correlations": "re_correlations.csv",
    "random_effects": "random_effects.csv",
    "random_coefficients": "random_coefficients.csv",
    "fitted": "fitted.csv",
}


def model_outputs(model: str) -> dict[str, str]:
    """The output name -> path of one model's fit (``model`` may be a wildcard, ``{model}``)."""
    return {name: f"results/models/{model}/{file}" for name, file in OUTPUT_FILES.items()}


def model_log(model: str) -> str:
    return f"logs/fit/{model}.log"


def fit_models(data_path: str, schema_path: str, models: dict[str, dict]) -> None:
    """Check every model's data, then fit each in turn (module docstring); raises ``ModelFailed``
    naming each model that failed, one line each: all the refusals of the data before any fit,
    else every fit's failure after trying every model."""
    from lmmflow.data.prepare import read_prepared

    try:
        data = read_prepared(data_path, schema_path)
    except Exception as error:
        raise ModelFailed(f"models {', '.join(models)}: {type(error).__name__}: {error}") from None
    prepared = _prepare_models(data, models)
    failed = [message for message in prepared.values() if isinstance(message, str)]
    if failed:
        for model in models:
            if not isinstance(prepared[model], str):
                with open(model_log(model), "a") as log:
                    print(f"{model}: not fitted: another model of this job was refused", file=log)
        raise ModelFailed("\n".join(failed))
    for model, spec in models.items():
        with _model_output(model) as log:
            started = time.perf_counter()
            try:
                _fit_and_write(model, spec, prepared.pop(model))
            except Exception as error:
                failed.append(_failure(model, error))
                continue
            seconds = time.perf_counter() - started
            print(f"{model}: fitted in {seconds:.2f} s, one of {len(models)} in this job", file=log)
    if failed:
        raise ModelFailed("\n".join(failed))


def _prepare_models(data, models: dict[str, dict]) -> dict:
    """Each model's design on its own copy of ``data`` (``lmmflow.fit.prepare_model``), or the
    one line refusing it; its log starts here."""
    from lmmflow.fit import prepare_model

    prepared = {}
    for model, spec in models.items():
        with _model_output(model, mode="w"):
            try:
                prepared[model] = prepare_model(
                    data.copy(),
                    formula=spec["formula"],
                    dataset=spec["dataset"],
                    model=model,
                    weights=spec.get("weights"),
                    family=spec.get("family", "gaussian"),  # binomial, poisson: glmer, with link and nAGQ
                    link=spec.get("link"),
                )
            except Exception as error:
                prepared[model] = _failure(model, error)
    return prepared


def _fit_and_write(model: str, spec: dict, prepared) -> None:
    from lmmflow.fit import fit_and_write

    fit_and_write(
        prepared,
        dataset=spec["dataset"],
        formula=spec["formula"],
        engine=spec["engine"],
        reml=spec["reml"],
        weights=spec.get("weights"),
        outputs=model_outputs(model),
        nAGQ=spec.get("nAGQ", 1),
    )


@contextmanager
def _model_output(model: str, mode: str = "a"):
    """The model's log as stderr; a warning shown for an earlier model of the job is shown again
    (Python shows a warning once per place in the code), so each log is what the model alone prints."""
    with open(model_log(model), mode, buffering=1) as log, redirect_stderr(log), warnings.catch_warnings():
        yield log


def _failure(model: str, error: Exception) -> str:
    """The one line naming the model that failed (its traceback goes to its log, stderr here)."""
    traceback.print_exc()
    named = str(error).startswith(f"model {model!r}")  # refusals of bad data name it already
    return str(error) if named else f"model {model!r}: {type(error).__name__}: {error}"


class ModelFailed(RuntimeError):
    """A model of the job failed; the message names it."""


def main(argv: list[str] | None = None) -> int:
    data_path, schema_path, models = argv if argv is not None else sys.argv[1:]
    try:
        fit_models(data_path, schema_path, json.loads(models))
    except ModelFailed as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
