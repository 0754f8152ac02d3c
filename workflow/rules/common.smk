# Start-up: validate the configuration, cross-check it, and provide the input helpers.

import os
import re

from snakemake.utils import validate

from lmmflow.acquire import find_verified, raw_file_name
from lmmflow.configfiles import check_duplicate_keys
from lmmflow.formula import FormulaError, parse_formula
from lmmflow.prepare import check_columns, check_spec, list_columns

RAW_DIR = "resources/raw"


class ConfigError(ValueError):
    """The configuration names something that does not exist."""


# YAML keeps only the last of two equal keys (e.g. two models of one name): refuse that.
check_duplicate_keys(workflow.configfiles)
validate(config, schema="../schemas/config.schema.yaml")

RAW_DATASETS = {
    name: spec for name, spec in config["datasets"].items() if "source" in spec
}
SIMULATED_DATASETS = {
    name: spec for name, spec in config["datasets"].items() if "simulate" in spec
}


def check_references():
    """Models name known data sets; comparisons name known models."""
    for model, spec in config["models"].items():
        if spec["dataset"] not in config["datasets"]:
            raise ConfigError(
                f"models.{model}.dataset: unknown data set '{spec['dataset']}'; "
                f"known: {', '.join(config['datasets'])}"
            )
    for comparison, models in config["comparisons"].items():
        for model in models:
            if model not in config["models"]:
                raise ConfigError(
                    f"comparisons.{comparison}: unknown model '{model}'; "
                    f"known: {', '.join(config['models'])}"
                )


def check_model_lists():
    """Focus groups and coefficient checks name known models; the models of a comparison or a
    focus group share their data set (their fixed effects are compared once fitted)."""
    named = {"coefficient_checks": config["coefficient_checks"]}
    named |= {
        f"focus_groups.{n}.models": f["models"]
        for n, f in config["focus_groups"].items()
    }
    for key, models in named.items():
        unknown = [model for model in models if model not in config["models"]]
        if unknown:
            raise ConfigError(
                f"{key}: unknown model(s) {unknown}; known: {', '.join(config['models'])}"
            )
    for name, plot in config["scatter_plots"].items():
        if plot["dataset"] not in config["datasets"]:
            raise ConfigError(
                f"scatter_plots.{name}.dataset: unknown data set '{plot['dataset']}'; "
                f"known: {', '.join(config['datasets'])}"
            )
    shared = {f"comparisons.{n}": models for n, models in config["comparisons"].items()}
    shared |= {
        f"focus_groups.{n}.models": f["models"]
        for n, f in config["focus_groups"].items()
    }
    for key, models in shared.items():
        datasets = {config["models"][model]["dataset"] for model in models}
        if len(datasets) > 1:
            raise ConfigError(
                f"{key}: models fitted to different data sets {sorted(datasets)}; "
                "REML criteria compare only models on the same data"
            )


def check_formulas():
    """Formula syntax is checked at start-up, before any job runs."""
    for model, spec in config["models"].items():
        try:
            parse_formula(spec["formula"])
        except FormulaError as error:
            raise ConfigError(f"models.{model}.formula: {error}") from None


def collect_raw_sources():
    """Raw file name -> source; data sets may share a file only if they share its source."""
    sources, users = {}, {}
    for dataset, spec in RAW_DATASETS.items():
        source = {key: spec["source"][key] for key in spec["source"] if key != "object"}
        name = raw_file_name(source)
        if sources.setdefault(name, source) != source:
            raise ConfigError(
                f"datasets.{dataset}.source: file name '{name}' is already used by data set "
                f"'{users[name]}' with a different source"
            )
        users.setdefault(name, dataset)
    return sources


def check_datasets():
    """Rename/recode/factors fit the raw data, checked now if it is at hand without downloading."""
    for dataset, spec in RAW_DATASETS.items():
        check_spec(dataset, spec, raw_file_name(spec["source"]))
        local = find_verified(spec["source"], config["data_mirror"], RAW_DIR)
        if local is not None:
            check_columns(
                dataset, spec, list_columns(local, spec["source"].get("object"))
            )


# --- shrinkage: observed or simulated settings, see config.yaml `shrinkage` ---

SHRINKAGE_SETTINGS = config.get("shrinkage", {}).get("settings", {})
OBSERVED_SETTINGS = [
    name for name, spec in SHRINKAGE_SETTINGS.items() if "dataset" in spec
]
FIGURE_FORMATS = ["png", "svg"]


def check_shrinkage():
    """Observed settings name known data sets; dropout weights fit the simulated occasions."""
    for name, spec in SHRINKAGE_SETTINGS.items():
        if "dataset" in spec and spec["dataset"] not in config["datasets"]:
            raise ConfigError(
                f"shrinkage.settings.{name}.dataset: unknown data set '{spec['dataset']}'; "
                f"known: {', '.join(config['datasets'])}"
            )
        dropout = spec.get("simulate", {}).get("dropout")
        later = spec.get("simulate", {}).get("n_per_group", 0) - 1
        if dropout and len(dropout["occasion_weights"]) != later:
            raise ConfigError(
                f"shrinkage.settings.{name}.simulate.dropout.occasion_weights: one weight per "
                f"later occasion expected ({later}), got {len(dropout['occasion_weights'])}"
            )
        if dropout and len(dropout["count_weights"]) > later:
            raise ConfigError(
                f"shrinkage.settings.{name}.simulate.dropout.count_weights: at most {later} "
                f"later occasions can be kept, got {len(dropout['count_weights'])} weights"
            )


def name_pattern(names):
    """A wildcard constraint matching exactly these names (nothing if there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


check_references()
check_formulas()
check_model_lists()
RAW_SOURCES = collect_raw_sources()
check_datasets()
check_shrinkage()


wildcard_constraints:
    raw_file=name_pattern(RAW_SOURCES),
    setting=name_pattern(SHRINKAGE_SETTINGS),
    model=name_pattern(config["models"]),
    comparison=name_pattern(config["comparisons"]),
    focus=name_pattern(config["focus_groups"]),
    plot=name_pattern(config["scatter_plots"]),


def get_final_outputs():
    """Everything `snakemake` builds by default."""
    return get_result_outputs() + get_report_outputs()


def get_report_outputs():
    """The HTML report (workflow/rules/report.smk)."""
    return ["results/report/report.html"]


REPORT_DIR = os.path.join(workflow.basedir, "reports")


def get_report_inputs(wildcards):
    """The template, its stylesheet, and every result: the report's sections follow the config."""
    tables = ["attempts.csv", "fixed_effects.csv", "variance_components.csv"]
    return {
        "template": os.path.join(REPORT_DIR, "report.qmd"),
        "css": os.path.join(REPORT_DIR, "report.css"),
        "results": get_result_outputs()
        + expand(
            "results/models/{model}/{table}",
            model=config["models"],
            table=[*tables, "re_correlations.csv"],
        )
        + expand("results/shrinkage/{setting}/fit.json", setting=SHRINKAGE_SETTINGS),
    }


def get_report_renderer():
    return config["report"]["renderer"]  # the schema's default fills it in


def get_result_outputs():
    """Every result but the report (the report's inputs)."""
    return (
        expand(
            "results/data/{dataset}.{ext}",
            dataset=config["datasets"],
            ext=["csv", "schema.json"],
        )
        + get_model_outputs()
        + get_shrinkage_outputs()
        + get_interval_outputs()
    )


def get_model_outputs():
    """Per-model fits and tables, comparisons, focus-group tables and coefficient checks."""
    return (
        expand("results/models/{model}/fit.json", model=config["models"])
        + expand(
            "results/comparisons/{comparison}{suffix}.csv",
            comparison=config["comparisons"],
            suffix=["", ".verdict"],
        )
        + expand(
            "results/tables/{focus}_{table}.csv",
            focus=config["focus_groups"],
            table=["random_effects", "predictions"],
        )
        + expand(
            "results/tables/{model}_coefficient_check.csv",
            model=config["coefficient_checks"],
        )
        + expand(
            "results/figures/{plot}_scatter.{ext}",
            plot=config["scatter_plots"],
            ext=FIGURE_FORMATS,
        )
    )


def get_model_data(wildcards):
    dataset = config["models"][wildcards.model]["dataset"]
    return {
        "data": f"results/data/{dataset}.csv",
        "schema": f"results/data/{dataset}.schema.json",
    }


def get_model_dataset(wildcards):
    return config["models"][wildcards.model]["dataset"]


def get_model_formula(wildcards):
    return config["models"][wildcards.model]["formula"]


def get_model_engine(wildcards):
    return config["models"][wildcards.model].get("engine", "fast")


def get_focus_inputs(wildcards):
    models = config["focus_groups"][wildcards.focus]["models"]
    dataset = config["models"][models[0]]["dataset"]
    return {
        "data": f"results/data/{dataset}.csv",
        "schema": f"results/data/{dataset}.schema.json",
        "fitted": expand("results/models/{model}/fitted.csv", model=models),
        "random_effects": expand(
            "results/models/{model}/random_effects.csv", model=models
        ),
        "fits": expand("results/models/{model}/fit.json", model=models),
    }


def get_scatter_data(wildcards):
    dataset = config["scatter_plots"][wildcards.plot]["dataset"]
    return {
        "data": f"results/data/{dataset}.csv",
        "schema": f"results/data/{dataset}.schema.json",
    }


def get_scatter_plot(wildcards):
    return config["scatter_plots"][wildcards.plot]


def get_focus_group(wildcards):
    return config["focus_groups"][wildcards.focus]


def get_comparison_fits(wildcards):
    return expand(
        "results/models/{model}/fit.json",
        model=config["comparisons"][wildcards.comparison],
    )


def get_raw_source(wildcards):
    return RAW_SOURCES[wildcards.raw_file]


def get_local_source(wildcards):
    """A local `path:` source is an input, so editing that file re-runs what depends on it."""
    return RAW_SOURCES[wildcards.raw_file].get("path", [])


def get_dataset_raw_file(wildcards):
    return f"{RAW_DIR}/{raw_file_name(config['datasets'][wildcards.dataset]['source'])}"


def get_dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def get_shrinkage_outputs():
    """Shrinkage tables per setting and their summary; tables and figures of observed settings."""
    if not SHRINKAGE_SETTINGS:
        return []
    outputs = expand(
        "results/shrinkage/{setting}/{table}.csv",
        setting=SHRINKAGE_SETTINGS,
        table=["coefficients", "sd_summary"],
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
        figure=["trajectories", "coefficient_densities", "effects"],
        ext=FIGURE_FORMATS,
    )
    outputs += expand("results/figures/shrinkage_settings.{ext}", ext=FIGURE_FORMATS)
    return outputs


def get_shrinkage_setting(wildcards):
    return SHRINKAGE_SETTINGS[wildcards.setting]


def get_shrinkage_setting_data(wildcards):
    """The prepared data set of an observed setting; nothing for a simulated one."""
    dataset = SHRINKAGE_SETTINGS[wildcards.setting].get("dataset")
    if dataset is None:
        return {}
    return {
        "data": f"results/data/{dataset}.csv",
        "schema": f"results/data/{dataset}.schema.json",
    }


def get_shrinkage_labels():
    """Setting name -> its title in the figures."""
    return {name: spec.get("label", name) for name, spec in SHRINKAGE_SETTINGS.items()}


# --- intervals, see config.yaml `intervals` ---

INTERVALS = config.get("intervals", {})
INTERVAL_MODELS = INTERVALS.get("models", [])
BOOTSTRAP = INTERVALS.get(
    "bootstrap", {"replicates": 200, "chunks": 4, "seed": 20261126}
)


def check_intervals():
    """Interval models are configured models; chunks do not outnumber replicates."""
    for model in INTERVAL_MODELS:
        if model not in config["models"]:
            raise ConfigError(
                f"intervals.models: unknown model '{model}'; known: {', '.join(config['models'])}"
            )
    if BOOTSTRAP["chunks"] > BOOTSTRAP["replicates"]:
        raise ConfigError(
            f"intervals.bootstrap: {BOOTSTRAP['chunks']} chunks for only "
            f"{BOOTSTRAP['replicates']} replicates"
        )


check_intervals()


def get_interval_outputs():
    """Profile and/or bootstrap intervals per `intervals.models`."""
    method = INTERVALS.get("method", "profile")
    outputs = []
    if method in ("profile", "both"):
        outputs += expand(
            "results/intervals/{model}/profile.csv", model=INTERVAL_MODELS
        )
    if method in ("bootstrap", "both"):
        outputs += expand(
            "results/intervals/{model}/bootstrap.csv", model=INTERVAL_MODELS
        )
    return outputs


def get_bootstrap_chunks(wildcards):
    return expand(
        "results/intervals/{model}/bootstrap_chunk_{chunk}.csv",
        model=wildcards.model,
        chunk=range(BOOTSTRAP["chunks"]),
    )
