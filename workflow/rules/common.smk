# Start-up: the configuration checked once (lmmflow.pipeline.config), and the rules' input helpers.

import json
import os
import re
import shlex
import sys

from snakemake.logging import logger

from lmmflow.data.acquire import raw_file_name
from lmmflow.pipeline.batches import plan_from_config
from lmmflow.pipeline.config import check_config, raw_datasets, raw_sources
from lmmflow.pipeline.glmm_config import binomial_models
from lmmflow.pipeline.fit_job import model_log, model_outputs

RAW_DIR = "resources/raw"
FIGURE_FORMATS = ["png", "svg"]

# Snakemake lists the --configfile files first but merges them over `configfile:` ones.
_cli_files = len(workflow.overwrite_configfiles)
for note in check_config(
    config,
    workflow.configfiles[_cli_files:] + workflow.configfiles[:_cli_files],
    schema_path=os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"),
    raw_dir=RAW_DIR,
):
    logger.warning(f"Note: {note}")

# The schema's defaults are filled in: every section below exists.
RAW_DATASETS = raw_datasets(config)
SIMULATED_DATASETS = {name: spec for name, spec in config["datasets"].items() if "simulate" in spec}
RAW_SOURCES = raw_sources(config)
SHRINKAGE_SETTINGS = config["shrinkage"]["settings"]
OBSERVED_SETTINGS = [name for name, spec in SHRINKAGE_SETTINGS.items() if "dataset" in spec]
BOOTSTRAP = config["intervals"]["bootstrap"]
BINOMIAL_MODELS = binomial_models(config)


def name_pattern(names):
    """A wildcard constraint matching exactly these names (nothing if there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    raw_file=name_pattern(RAW_SOURCES),
    setting=name_pattern(SHRINKAGE_SETTINGS),
    model=name_pattern(config["models"]),
    comparison=name_pattern(config["comparisons"]),
    test=name_pattern(config["likelihood_ratio_tests"]),
    focus=name_pattern(config["focus_groups"]),
    plot=name_pattern(config["scatter_plots"]),


def model_weights(wildcards):
    """The model's prior-weights column (models.<model>.weights), None without one."""
    return config["models"][wildcards.model].get("weights")


def get_final_outputs():
    """Everything `snakemake` builds by default."""
    return get_result_outputs() + ["results/report/report.html"]


REPORT_DIR = os.path.join(workflow.basedir, "reports")


def get_report_inputs(wildcards):
    """The template, its stylesheet, and every result: the report's sections follow the config."""
    tables = ["attempts.csv", "fixed_effects.csv", "variance_components.csv"]
    results = (
        get_result_outputs()
        + expand("results/models/{model}/{table}", model=config["models"], table=[*tables, "re_correlations.csv"])
        + expand("results/shrinkage/{setting}/fit.json", setting=SHRINKAGE_SETTINGS)
        + get_report_profiles()
    )
    return {
        "template": os.path.join(REPORT_DIR, "report.qmd"),
        "css": os.path.join(REPORT_DIR, "report.css"),
        "results": list(dict.fromkeys(results)),
    }


def get_report_profiles():
    """The profile intervals of the binomial GLMMs in intervals.models: their odds ratios in the
    report show them (lme4's default intervals), a binomial GLMM not listed its Wald intervals.
    Only listed models: an input is a job to run, and the report reads a profile.csv only if it
    is an input, never one left on disk. (A listed GLMM needs intervals.method: profile, so these
    are among get_interval_outputs() too; declared here as what the report itself reads.)"""
    profiled = [model for model in config["intervals"]["models"] if model in BINOMIAL_MODELS]
    return expand("results/intervals/{model}/profile.csv", model=profiled)


def get_result_outputs():
    """Every result but the report (the report's inputs)."""
    return (
        expand("results/data/{dataset}.{ext}", dataset=config["datasets"], ext=["csv", "schema.json"])
        + get_model_outputs()
        + expand("results/lrt/{test}.csv", test=config["likelihood_ratio_tests"])
        + get_shrinkage_outputs()
        + get_interval_outputs()
        + get_glmm_outputs()
    )


def get_model_outputs():
    """Per-model fits and tables, comparisons, focus-group tables and coefficient checks."""
    return (
        expand("results/models/{model}/fit.json", model=config["models"])
        + expand(
            "results/comparisons/{comparison}{suffix}.csv", comparison=config["comparisons"], suffix=["", ".verdict"]
        )
        + expand(
            "results/tables/{focus}_{table}.csv", focus=config["focus_groups"], table=["random_effects", "predictions"]
        )
        + expand("results/tables/{model}_coefficient_check.csv", model=config["coefficient_checks"])
        + expand("results/figures/{plot}_scatter.{ext}", plot=config["scatter_plots"], ext=FIGURE_FORMATS)
    )


def prepared_data(dataset):
    """A prepared data set's table and data dictionary, as named inputs."""
    return {
        "data": f"results/data/{dataset}.csv",
        "schema": f"results/data/{dataset}.schema.json",
    }


def get_model_data(wildcards):
    return prepared_data(config["models"][wildcards.model]["dataset"])


def get_focus_inputs(wildcards):
    models = config["focus_groups"][wildcards.focus]["models"]
    return prepared_data(config["models"][models[0]]["dataset"]) | {
        "fitted": expand("results/models/{model}/fitted.csv", model=models),
        "random_effects": expand("results/models/{model}/random_effects.csv", model=models),
        "fits": expand("results/models/{model}/fit.json", model=models),
    }


def get_scatter_data(wildcards):
    return prepared_data(config["scatter_plots"][wildcards.plot]["dataset"])


def compared(wildcards):
    """The models of a comparison or of a likelihood-ratio test (the rule's wildcard says which)."""
    if hasattr(wildcards, "comparison"):
        return config["comparisons"][wildcards.comparison]
    return config["likelihood_ratio_tests"][wildcards.test]


def get_compared_inputs(wildcards):
    """The shared data set, each model's fit.json and solution.json: ML fits start from them
    (a model fitted by ML is read back, a REML one refitted)."""
    models = compared(wildcards)
    return prepared_data(config["models"][models[0]]["dataset"]) | {
        "fits": expand("results/models/{model}/fit.json", model=models),
        "solutions": expand("results/models/{model}/solution.json", model=models),
    }


def get_compared_models(wildcards):
    return {model: config["models"][model] for model in compared(wildcards)}


# Raw file names come from URLs and paths: plain keys, not dpath globs for lookup().
def get_raw_source(wildcards):
    return RAW_SOURCES[wildcards.raw_file]


def get_local_source(wildcards):
    """A local `path:` source is an input, so editing that file re-runs what depends on it."""
    return RAW_SOURCES[wildcards.raw_file].get("path", [])


def get_dataset_raw_file(wildcards):
    return f"{RAW_DIR}/{raw_file_name(config['datasets'][wildcards.dataset]['source'])}"


def get_shrinkage_outputs():
    """Shrinkage tables per setting and their summary; tables and figures of observed settings."""
    if not SHRINKAGE_SETTINGS:
        return []
    outputs = expand(
        "results/shrinkage/{setting}/{table}.csv", setting=SHRINKAGE_SETTINGS, table=["coefficients", "sd_summary"]
    )
    outputs += [
        "results/shrinkage/sd_summary.csv",
        "results/shrinkage/negative_slopes.csv",
    ]
    outputs += expand(
        "results/tables/{setting}_{table}.csv",
        setting=OBSERVED_SETTINGS,
        table=["coefficients", "coefficient_statistics", "negative_slopes"],
    )
    outputs += expand(
        "results/figures/{setting}_{figure}.{ext}",
        setting=OBSERVED_SETTINGS,
        figure=["trajectories", "coefficient_densities", "coefficient_scatter", "effects"],
        ext=FIGURE_FORMATS,
    )
    outputs += expand("results/figures/shrinkage_settings.{ext}", ext=FIGURE_FORMATS)
    return outputs


def get_shrinkage_setting_data(wildcards):
    """The prepared data set of an observed setting; nothing for a simulated one."""
    dataset = SHRINKAGE_SETTINGS[wildcards.setting].get("dataset")
    return {} if dataset is None else prepared_data(dataset)


def get_shrinkage_labels():
    """Setting name -> its title in the figures."""
    return {name: spec.get("label", name) for name, spec in SHRINKAGE_SETTINGS.items()}


def get_interval_outputs():
    """Profile and/or bootstrap intervals per `intervals.models`."""
    method = config["intervals"]["method"]
    methods = ["profile", "bootstrap"] if method == "both" else [method]
    return expand("results/intervals/{model}/{method}.csv", method=methods, model=config["intervals"]["models"])


def get_bootstrap_chunks(wildcards):
    return expand(
        "results/intervals/{model}/bootstrap_chunk_{chunk}.csv", model=wildcards.model, chunk=range(BOOTSTRAP["chunks"])
    )


def get_glmm_outputs():
    """A binomial GLMM's figure of predicted probabilities."""
    return expand("results/figures/{model}_probabilities.{ext}", model=BINOMIAL_MODELS, ext=FIGURE_FORMATS)


# --- model fits: who shares a job (lmmflow.pipeline.batches), the command of every fit job ---

FIT_PLAN = plan_from_config(config)
# A conda (or container) environment's own Python, else Snakemake's, as for `script:` jobs.
PYTHON = "python" if workflow.deployment_settings.deployment_method else sys.executable
FIT_COMMAND = (
    f"{shlex.quote(PYTHON)} -m lmmflow.pipeline.fit_job {{input.data:q}} {{input.schema:q}} {{params.models:q}}"
)


def fit_outputs(model):
    """A model's outputs (its name or `{model}`); fixed effects and variance components in the report."""
    outputs = model_outputs(model)
    for table in ("fixed_effects", "variance_components"):
        outputs[table] = report(outputs[table], caption=f"../report/{table}.rst", category="Models", subcategory=model)
    return outputs


def fitted_models(models):
    """The command's MODELS_JSON: each model's entry in the configuration."""
    return json.dumps({model: config["models"][model] for model in models}, sort_keys=True)
