"""The workflow's configuration, checked at start-up: its files, its schema, its cross-references.

Snakemake merges ``config.yaml`` and every ``--configfile`` into one dict. ``check_config`` checks
that dict, and re-reads the files for what merging hides, before any job runs, so that a bad
configuration is refused in a line naming the key. workflow/rules/common.smk calls it once; every
check is plain Python, unit-tested without Snakemake (tests/pipeline/test_config.py).
"""

from __future__ import annotations

import copy
import os
import reprlib
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import yaml

from lmmflow.data.acquire import local_origin, raw_file_name
from lmmflow.data.prepare import PrepareError, check_columns, check_spec, list_columns
from lmmflow.model.formula import FormulaError, parse_formula
from lmmflow.pipeline.glmm_config import GLMMConfigError, check_glmm_models

# Sections whose entries are named definitions (a data set, a model, ...): one name given in two
# files is merged key by key, which `redefined_entries` reports.
NAMED_SECTIONS = (
    ("datasets",),
    ("models",),
    ("comparisons",),
    ("likelihood_ratio_tests",),
    ("focus_groups",),
    ("scatter_plots",),
    ("shrinkage", "settings"),
)


# libyaml's loader where PyYAML has it: the pure-Python one takes ~80 ms for the schema alone
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A configuration the workflow cannot run; the message names the key and what was expected."""


def check_config(
    config: dict, files: Iterable, schema_path: str | os.PathLike, raw_dir: str | os.PathLike
) -> list[str]:
    """Every start-up check, in order; fills in the schema's defaults. Returns notes for the user.

    ``files``: the configuration files in the order Snakemake merged them (later ones win).
    """
    files = distinct_files(files)
    check_duplicate_keys(files)
    notes = redefined_entries(files)
    validate(config, _read(schema_path)[1])
    check_references(config)
    check_shared_datasets(config)
    check_formulas(config)
    check_focus_groups(config)
    try:
        check_glmm_models(config)
    except GLMMConfigError as error:
        raise ConfigError(str(error)) from None
    check_likelihood_ratio_tests(config)
    raw_sources(config)
    check_datasets(config, raw_dir)
    check_shrinkage(config)
    check_bootstrap(config)
    return notes


# --- the files: what YAML parsing and Snakemake's merging hide ---


def _read(path: str | os.PathLike) -> tuple[yaml.Node | None, object]:
    """A YAML (or JSON) file's node tree, with line numbers, and its content."""
    with open(path, encoding="utf-8") as stream:
        loader = _LOADER(stream)
        try:
            node = loader.get_single_node()
            return node, loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()


def duplicate_keys(path: str | os.PathLike) -> list[str]:
    """One message per repeated key in the file: its dotted key and both lines.

    YAML keeps only the last of two equal keys in a mapping, so a second model of one name
    would silently replace the first.
    """
    found: list[str] = []
    _walk(_read(path)[0], [], Path(path).name, found)
    return found


def _walk(node, keys: list[str], name: str, found: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            if key == "<<":  # a merge key, not a configuration key
                continue
            line = key_node.start_mark.line + 1
            if key in first_line:
                dotted = ".".join([*keys, key])
                found.append(f"{name} line {line}: '{dotted}' (first given at line {first_line[key]})")
            else:
                first_line[key] = line
            _walk(value_node, [*keys, key], name, found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, [*keys, str(index)], name, found)


def check_duplicate_keys(paths: Iterable) -> None:
    """Raise ConfigError naming every repeated key in any of ``paths``."""
    found = [message for path in paths for message in duplicate_keys(path)]
    if found:
        raise ConfigError(
            "duplicate keys in the configuration (YAML would silently keep only the last of each): " + "; ".join(found)
        )


def distinct_files(paths: Iterable) -> list[str]:
    """Each file once, at its last place (the one that wins the merge): a configuration file
    given twice (``--configfile c.yaml c.yaml``, or config.yaml again) overrides nothing."""
    real = [os.path.realpath(path) for path in paths]
    return list(reversed(dict.fromkeys(reversed(real))))


def redefined_entries(paths: Iterable) -> list[str]:
    """A note per named entry (data set, model, comparison, ...) given in several of ``paths``.

    Snakemake merges the files key by key, later over earlier: what the later file gives wins and
    the rest of the earlier entry stays. That is how an extra ``--configfile`` changes a model,
    so it is reported, not refused.
    """
    defined_in: dict[str, list[str]] = {}
    values: dict[str, list] = {}
    for path in distinct_files(paths):
        content = _read(path)[1]
        for section in NAMED_SECTIONS:
            entries = _section(content, section)
            for name in entries if isinstance(entries, dict) else ():
                key = ".".join([*section, str(name)])
                defined_in.setdefault(key, []).append(Path(path).name)
                values.setdefault(key, []).append(entries[name])
    return [  # an entry given alike in several files changes nothing: no note
        f"config key '{key}' is given in {' and '.join(files)}; merged key by key, {files[-1]} wins"
        for key, files in defined_in.items()
        if len(files) > 1 and any(value != values[key][0] for value in values[key])
    ]


def _section(content, keys: tuple[str, ...]):
    for key in keys:
        content = content.get(key) if isinstance(content, dict) else None
    return content


# --- the schema: one line per problem, and the defaults filled in ---


def _fill_defaults(validator, properties, instance, schema):
    """JSON Schema's `properties`, first setting each absent property that has a default."""
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": _fill_defaults})

# A value quoted in a message: its start, not a page of it (keyword arguments need Python 3.12)
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring = 2, 2, 2, 40


def validate(config: dict, schema: dict) -> None:
    """Check ``config`` against ``schema``, filling in its defaults in place (the only place they
    are given); raise ConfigError with one line per problem, naming the key."""
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda error: list(map(str, error.absolute_path)))
    if errors:
        raise ConfigError("\n".join(map(_describe, errors)))


def _describe(error: jsonschema.ValidationError) -> str:
    """A schema violation in one line: the dotted key, then what is wrong and what is allowed."""
    key = ".".join(map(str, error.absolute_path))
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [str(name) for name in error.instance if name not in allowed]
        also = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
        return f"{_where(key, unknown[0])}: unknown key{also}; allowed: {', '.join(allowed)}"
    if "propertyNames" in error.schema_path:
        return (
            f"{_where(key, _SHORT.repr(str(error.instance))[1:-1])}: not a valid name (a letter, then letters, digits "
            f"and underscores, at most {error.schema['maxLength']} characters: it names files and Snakemake wildcards)"
        )
    if error.validator == "oneOf":
        closest = _closest_alternative(error)
        if closest is not None:
            return _describe(closest)
        alternatives = " | ".join(map(_alternative, error.validator_value))
        return f"{_where(key)}: give exactly one of: {alternatives}"
    return f"{_where(key)}: {error.message.replace(repr(error.instance), _SHORT.repr(error.instance))}"


def _where(key: str, name: object = None) -> str:
    dotted = ".".join(part for part in (key, None if name is None else str(name)) if part)
    return f"config key '{dotted}'" if dotted else "config"


def _closest_alternative(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """The most relevant problem of the one alternative the entry comes closest to, if one does.

    Closest: the fewest problems with the entry's own keys (missing, unknown or excluded ones).
    """
    problems: dict[int, list] = {}
    for sub in error.context:
        problems.setdefault(sub.relative_schema_path[0], []).append(sub)
    own = {branch: sum(not sub.relative_path for sub in subs) for branch, subs in problems.items()}
    fewest = min(own.values(), default=None)
    closest = [branch for branch, count in own.items() if count == fewest]
    if len(closest) != 1:
        return None
    return jsonschema.exceptions.best_match(problems[closest[0]])


def _alternative(schema: dict) -> str:
    """An alternative of a oneOf by its required keys, e.g. "url + sha256 (no path)"."""
    text = " + ".join(schema.get("required", [])) or schema.get("description", "another form")
    excluded = schema.get("not", {}).get("required", [])
    return f"{text} (no {', '.join(excluded)})" if excluded else text


# --- cross-references: what the schema cannot check ---


def check_references(config: dict) -> None:
    """Every data set and model named anywhere is configured."""
    datasets, models = config["datasets"], config["models"]
    named = [(f"models.{n}.dataset", [m["dataset"]], "data set", datasets) for n, m in models.items()]
    named += [
        (f"scatter_plots.{n}.dataset", [p["dataset"]], "data set", datasets) for n, p in config["scatter_plots"].items()
    ]
    named += [
        (f"shrinkage.settings.{n}.dataset", [s["dataset"]], "data set", datasets)
        for n, s in config["shrinkage"]["settings"].items()
        if "dataset" in s
    ]
    named += [(f"comparisons.{n}", listed, "model", models) for n, listed in config["comparisons"].items()]
    named += [
        (f"likelihood_ratio_tests.{n}", listed, "model", models)
        for n, listed in config["likelihood_ratio_tests"].items()
    ]
    named += [(f"focus_groups.{n}.models", f["models"], "model", models) for n, f in config["focus_groups"].items()]
    named += [("coefficient_checks", config["coefficient_checks"], "model", models)]
    named += [("intervals.models", config["intervals"]["models"], "model", models)]
    for key, names, kind, known in named:
        for name in names:
            if name not in known:
                raise ConfigError(f"{key}: unknown {kind} '{name}'; known: {', '.join(known)}")


def check_shared_datasets(config: dict) -> None:
    """The models of a comparison or a focus group are fitted to one data set: REML criteria and
    fixed effects compare only models on the same data."""
    groups = {f"comparisons.{n}": models for n, models in config["comparisons"].items()}
    groups |= {f"focus_groups.{n}.models": f["models"] for n, f in config["focus_groups"].items()}
    for key, models in groups.items():
        datasets = {config["models"][model]["dataset"] for model in models}
        if len(datasets) > 1:
            raise ConfigError(
                f"{key}: models fitted to different data sets {sorted(datasets)}; "
                "REML criteria compare only models on the same data"
            )


def check_formulas(config: dict) -> None:
    """Every formula parses (its columns are checked against the data before fitting); prior
    weights are fitted by the fast engines only."""
    for model, spec in config["models"].items():
        try:
            parse_formula(spec["formula"])
        except FormulaError as error:
            raise ConfigError(f"models.{model}.formula: {error}") from None
        if "weights" in spec and spec["engine"] == "statsmodels":
            raise ConfigError(
                f"models.{model}.weights: engine statsmodels cannot fit prior weights (MixedLM has none); "
                "use engine: fast"
            )


def grouping_factors(formula: str) -> list[str]:
    """The columns ``formula``'s random terms group by, in order of first use."""
    return list(dict.fromkeys(factor for term in parse_formula(formula).random for factor in term.group_factors))


def check_focus_groups(config: dict) -> None:
    """The models of a focus group share a grouping factor, the one its group is a level of.
    Which factor that is (the one every term nests in) is a property of the data: the focus
    group's job refuses models that nest in none or in different ones
    (``lmmflow.outputs.predictions.focus_grouping_factor``)."""
    for name, focus in config["focus_groups"].items():
        first, *others = focus["models"]
        shared = grouping_factors(config["models"][first]["formula"])
        for model in others:
            factors = grouping_factors(config["models"][model]["formula"])
            if not set(shared) & set(factors):
                raise ConfigError(
                    f"focus_groups.{name}: model '{model}' has no grouping factor of model '{first}' "
                    f"({', '.join(shared)}); its grouping factors: {', '.join(factors)}"
                )
            shared = [factor for factor in shared if factor in factors]


def check_likelihood_ratio_tests(config: dict) -> None:
    """The models of a likelihood-ratio test share their data set and their response, as lme4's
    anova() requires (it refuses models fitted to different data)."""
    for name, listed in config["likelihood_ratio_tests"].items():
        key = f"likelihood_ratio_tests.{name}"
        specs = {model: config["models"][model] for model in listed}
        for what, value_of in (
            ("data sets", lambda spec: spec["dataset"]),
            ("responses", lambda spec: parse_formula(spec["formula"]).response),
        ):
            values = {model: value_of(spec) for model, spec in specs.items()}
            if len(set(values.values())) > 1:
                described = ", ".join(f"{model}: {value}" for model, value in values.items())
                raise ConfigError(
                    f"{key}: models with different {what} ({described}); a likelihood-ratio test "
                    "compares models of one response on the same data"
                )


def raw_datasets(config: dict) -> dict:
    """The data sets read from a raw file (the others are simulated)."""
    return {name: spec for name, spec in config["datasets"].items() if "source" in spec}


def raw_sources(config: dict) -> dict[str, dict]:
    """Raw file name -> its source; data sets may share a file only if they share its source."""
    sources: dict[str, dict] = {}
    users: dict[str, str] = {}
    for dataset, spec in raw_datasets(config).items():
        # `object` picks an R object inside the file and `read` says how to parse it; neither
        # changes the file
        source = {key: value for key, value in spec["source"].items() if key not in ("object", "read")}
        name = raw_file_name(source)
        if sources.setdefault(name, source) != source:
            raise ConfigError(
                f"datasets.{dataset}.source: file name '{name}' is already used by data set "
                f"'{users[name]}' with a different source"
            )
        users.setdefault(name, dataset)
    return sources


def check_datasets(config: dict, raw_dir: str | os.PathLike) -> None:
    """Rename, recode and factors fit the raw data, checked now if a copy of it is at hand."""
    for dataset, spec in raw_datasets(config).items():
        try:
            check_spec(dataset, spec, raw_file_name(spec["source"]))
            columns = _columns_at_hand(spec["source"], config["data_mirror"], raw_dir)
            if columns is not None:
                check_columns(dataset, spec, columns)
        except PrepareError as error:
            raise ConfigError(str(error)) from None


def _columns_at_hand(source: dict, mirror: str | None, raw_dir: str | os.PathLike) -> list[str] | None:
    """The raw file's columns if a copy is at hand: fetched into ``raw_dir``, the ``path:`` or
    the copy in ``mirror``. Nothing is downloaded, nor hashed: the fetch rule verifies files."""
    fetched = Path(raw_dir) / raw_file_name(source)
    at_hand = fetched if fetched.is_file() else local_origin(source, mirror)
    if at_hand is None or not at_hand.is_file():
        return None
    try:
        return list_columns(at_hand, source.get("object"), source.get("read"))
    except PrepareError:
        if at_hand == fetched or "sha256" not in source:
            raise
        return None  # a pinned copy not yet verified: fetching it names a digest mismatch


def check_shrinkage(config: dict) -> None:
    """Dropout weights fit the simulated occasions of each shrinkage setting."""
    for name, spec in config["shrinkage"]["settings"].items():
        dropout = spec.get("simulate", {}).get("dropout")
        if not dropout:
            continue
        key = f"shrinkage.settings.{name}.simulate.dropout"
        later = spec["simulate"]["n_per_group"] - 1
        if len(dropout["occasion_weights"]) != later:
            raise ConfigError(
                f"{key}.occasion_weights: one weight per later occasion expected ({later}), "
                f"got {len(dropout['occasion_weights'])}"
            )
        if len(dropout["count_weights"]) > later:
            raise ConfigError(
                f"{key}.count_weights: at most {later} later occasions can be kept, "
                f"got {len(dropout['count_weights'])} weights"
            )


def check_bootstrap(config: dict) -> None:
    """Bootstrap chunks do not outnumber the replicates they split."""
    bootstrap = config["intervals"]["bootstrap"]
    if bootstrap["chunks"] > bootstrap["replicates"]:
        raise ConfigError(
            f"intervals.bootstrap: {bootstrap['chunks']} chunks for only {bootstrap['replicates']} replicates"
        )
