"""A fit job's command line: fit one or several models of one data set, each exactly as alone.

    python -m lmmflow.pipeline.fit_job DATA SCHEMA MODELS_JSON

``MODELS_JSON``: model name -> {dataset, formula, engine, reml, weights, family, link, nAGQ}
(the configuration's entries).
The data set is read once; each model is fitted on its own copy of it and writes its outputs
(``model_outputs``: results/models/<model>/) and its log (``model_log``: logs/fit/<model>.log,
everything the model's fit prints). workflow/rules/fit.smk runs this as a `shell:` command: no
Snakemake script preamble, and one process's imports for a whole batch. A model that fails is
named in one line (its traceback in its log), the others are still tried; then the job fails
and Snakemake removes all its outputs, those of the models that fitted included.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import warnings
from contextlib import redirect_stderr

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
    """Fit every model in turn (module docstring); raises ``ModelFailed`` naming each that failed,
    one line each, after trying every model (all of a batch's faults are reported at once)."""
    from lmmflow.data.prepare import read_prepared
    from lmmflow.fit import fit_and_write

    try:
        data = read_prepared(data_path, schema_path)
    except Exception as error:
        raise ModelFailed(f"models {', '.join(models)}: {type(error).__name__}: {error}") from None
    failed = []
    for model, spec in models.items():
        # catch_warnings: a warning shown for an earlier model of the job is shown again (Python
        # shows a warning once per place in the code), so each log is what the model alone prints
        with open(model_log(model), "w", buffering=1) as log, redirect_stderr(log), warnings.catch_warnings():
            started = time.perf_counter()
            try:
                fit_and_write(
                    data.copy(),
                    dataset=spec["dataset"],
                    formula=spec["formula"],
                    engine=spec["engine"],
                    reml=spec["reml"],
                    weights=spec.get("weights"),
                    model=model,
                    outputs=model_outputs(model),
                    family=spec.get("family", "gaussian"),  # binomial, poisson: glmer, with link and nAGQ
                    link=spec.get("link"),
                    nAGQ=spec.get("nAGQ", 1),
                )
            except Exception as error:
                traceback.print_exc()
                named = str(error).startswith(f"model {model!r}")  # refusals of bad data name it already
                failed.append(str(error) if named else f"model {model!r}: {type(error).__name__}: {error}")
                continue
            seconds = time.perf_counter() - started
            print(f"{model}: fitted in {seconds:.2f} s, one of {len(models)} in this job", file=log)
    if failed:
        raise ModelFailed("\n".join(failed))


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
