"""Start-up checks of the configuration (lmmflow.pipeline.config), run without Snakemake; and config.yaml's
pinned sources against the shared mirror's records."""

import copy
import re
import shutil

import jsonschema
import pytest
import yaml
from conftest import CONFIG, CONFIG_SCHEMA, MIRROR, ROOT

from lmmflow.data.acquire import raw_file_name
from lmmflow.pipeline.config import (
    ConfigError,
    check_bootstrap,
    check_config,
    check_datasets,
    check_duplicate_keys,
    check_focus_groups,
    check_formulas,
    check_likelihood_ratio_tests,
    check_references,
    check_shared_datasets,
    check_shrinkage,
    duplicate_keys,
    raw_sources,
    redefined_entries,
    validate,
)

SCHEMA = yaml.safe_load(CONFIG_SCHEMA.read_text())


def valid(config):
    """`config` validated, with the schema's defaults filled in (as at start-up)."""
    validate(config, SCHEMA)
    return config


def refused(check, config, *args) -> str:
    with pytest.raises(ConfigError) as caught:
        check(config, *args)
    return str(caught.value)


def set_key(config, path, value):
    """`config` with the entry at `path` (keys) set to `value`."""
    *parents, last = path
    target = config
    for key in parents:
        target = target[key]
    target[last] = value
    return config


# --- the files ---------------------------------------------------------------------------------


def test_repeated_keys_are_named_with_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  a: {dataset: d}\n  b: {dataset: d}\n  a: {dataset: e}\nseeds: [1, {x: 1, x: 2}]\n")
    assert duplicate_keys(path) == [
        "config.yaml line 4: 'models.a' (first given at line 2)",
        "config.yaml line 5: 'seeds.1.x' (first given at line 5)",
    ]
    with pytest.raises(ConfigError, match="'models.a'"):
        check_duplicate_keys([path])


def test_equal_keys_in_different_mappings_are_fine(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: {x: 1}\nb: {x: 2}\n")
    assert duplicate_keys(path) == []
    check_duplicate_keys([path])


def test_an_empty_file_has_no_duplicates_nor_entries(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert duplicate_keys(path) == [] and redefined_entries([path]) == []


def test_entries_given_in_two_files_are_reported_naming_both(tmp_path):
    base, extra = tmp_path / "config.yaml", tmp_path / "extra.yaml"
    base.write_text("models: {m: {dataset: d, formula: y ~ x}}\nshrinkage: {settings: {s: {seed: 1}}}\n")
    extra.write_text("models: {m: {formula: y ~ z}, n: {dataset: d}}\nshrinkage: {settings: {s: {seed: 2}}}\n")
    assert redefined_entries([base, extra]) == [
        "config key 'models.m' is given in config.yaml and extra.yaml; merged key by key, extra.yaml wins",
        "config key 'shrinkage.settings.s' is given in config.yaml and extra.yaml; merged key by key, extra.yaml wins",
    ]


def test_settings_given_in_two_files_are_plain_overrides(tmp_path):
    base, extra = tmp_path / "config.yaml", tmp_path / "extra.yaml"
    base.write_text("data_mirror: null\nintervals: {models: [a], method: profile}\n")
    extra.write_text("data_mirror: ../mirror\nintervals: {method: both}\n")
    assert redefined_entries([base, extra]) == []


# --- the schema --------------------------------------------------------------------------------


def test_config_yaml_is_valid_and_gets_the_defaults(config):
    valid(config)
    assert {model["engine"] for model in config["models"].values()} == {"fast"}
    assert config["report"] == CONFIG["report"]


def test_defaults_come_from_the_schema_only(config):
    for section in ("shrinkage", "intervals", "focus_groups", "scatter_plots", "coefficient_checks", "report"):
        del config[section]
    del config["data_mirror"]
    valid(config)
    assert config["shrinkage"] == {"settings": {}}
    assert config["intervals"] == {
        "models": [],
        "method": "profile",
        "bootstrap": {"replicates": 200, "chunks": 4, "seed": 20261126},
    }
    assert (config["focus_groups"], config["scatter_plots"], config["coefficient_checks"]) == ({}, {}, [])
    assert config["report"] == {"renderer": "auto"} and config["data_mirror"] is None


def test_defaults_are_copies_not_the_schema_s_own_objects():
    first, second = (valid({"datasets": copy.deepcopy(CONFIG["datasets"])}) for _ in range(2))
    first["intervals"]["bootstrap"]["chunks"] = 1
    assert second["intervals"]["bootstrap"]["chunks"] == 4


@pytest.mark.parametrize(
    "path, message",
    [
        (("bogus",), "config key 'bogus': unknown key; allowed: data_mirror, datasets, models, comparisons,"),
        (("datasets", "gpa", "bogus"), "config key 'datasets.gpa.bogus': unknown key; allowed: source, simulate,"),
        (
            ("datasets", "gpa", "source", "bogus"),
            "config key 'datasets.gpa.source.bogus': unknown key; allowed: url, path, sha256, object",
        ),
        (
            ("models", "gpa_mixed", "formla"),
            "config key 'models.gpa_mixed.formla': unknown key; allowed: dataset, formula, engine",
        ),
        (
            ("shrinkage", "settings", "gpa", "bogus"),
            "config key 'shrinkage.settings.gpa.bogus': unknown key; allowed: label, dataset, group,",
        ),
        (
            ("shrinkage", "settings", "imbalanced", "simulate", "dropout", "bogus"),
            "config key 'shrinkage.settings.imbalanced.simulate.dropout.bogus': unknown key; allowed: count_weights,",
        ),
        (("intervals", "bogus"), "config key 'intervals.bogus': unknown key; allowed: models, method, bootstrap"),
    ],
)
def test_an_unknown_key_is_named_with_the_allowed_ones_in_one_line(config, path, message):
    text = refused(validate, set_key(config, path, 1), SCHEMA)
    assert text.startswith(message) and "\n" not in text, text


def test_several_unknown_keys_are_named_together(config):
    config |= {"modles": {}, "bogus": 1}
    text = refused(validate, config, SCHEMA)
    assert text.startswith("config key 'modles': unknown key (also unknown: bogus); allowed: data_mirror,"), text


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("datasets", "gpa", "source"),
            {"url": "https://host/gpa.RData"},
            "'datasets.gpa.source': 'sha256' is a required property",
        ),
        (
            ("datasets", "gpa", "source"),
            {"url": "https://host/gpa.RData", "sha256": "abc"},
            "'datasets.gpa.source.sha256': 'abc' does not match '^[0-9a-f]{64}$'",
        ),
        (
            ("datasets", "gpa", "source"),
            {"url": "https://h/g.csv", "sha256": "0" * 64, "path": "g.csv"},
            "'datasets.gpa.source': give exactly one of: url + sha256 (no path) | path (no url)",
        ),
        (("datasets", "gpa", "factors"), "student", "'datasets.gpa.factors': 'student' is not of type 'array'"),
        (
            ("datasets", "pupils", "recode", "ses"),
            {"low": []},
            "'datasets.pupils.recode.ses.low': [] should be non-empty",
        ),
        (("models", "gpa_mixed"), {"dataset": "gpa"}, "'models.gpa_mixed': 'formula' is a required property"),
        (
            ("models", "gpa_mixed", "engine"),
            "fats",
            "'models.gpa_mixed.engine': 'fats' is not one of ['fast', 'statsmodels']",
        ),
        (("comparisons", "ach_cat_re"), ["ach_cat_re_1"], "'comparisons.ach_cat_re': ['ach_cat_re_1'] is too short"),
        (
            ("datasets", "bad name"),
            {"source": {"path": "x.csv"}},
            "'datasets.bad name': not a valid name (a letter, then letters, digits and underscores, at most 100 "
            "characters: it names files and Snakemake wildcards)",
        ),
        (
            ("shrinkage", "settings", "more_variance"),
            {"label": "x", "simulate": CONFIG["shrinkage"]["settings"]["more_variance"]["simulate"]},
            "'shrinkage.settings.more_variance': 'seed' is a required property",
        ),
        (("intervals", "method"), "wald", "'intervals.method': 'wald' is not one of ['profile', 'bootstrap', 'both']"),
    ],
    ids=[
        "no-sha256",
        "bad-sha256",
        "url-and-path",
        "factors-not-list",
        "empty-level",
        "no-formula",
        "unknown-engine",
        "one-model",
        "bad-name",
        "simulated-setting-without-seed",
        "unknown-interval-method",
    ],
)
def test_a_malformed_entry_is_named_in_one_line(config, path, value, message):
    text = refused(validate, set_key(config, path, value), SCHEMA)
    assert text == f"config key {message}", text


def test_a_large_value_is_abbreviated(config):
    config["models"] = [config["models"]] * 10
    text = refused(validate, config, SCHEMA)
    assert text.startswith("config key 'models': [{") and text.endswith("is not of type 'object'") and len(text) < 200


def test_a_missing_section_is_named():
    assert refused(validate, {}, SCHEMA) == "config: 'datasets' is a required property"


def test_a_local_path_source_needs_no_digest(config):
    valid(set_key(config, ("datasets", "gpa", "source"), {"path": "data/gpa.RData"}))


def test_a_data_set_has_a_source_or_a_simulation_not_both(config):
    simulate = {"generator": "exercise", "seed": 1}
    both = refused(validate, set_key(config, ("datasets", "gpa", "simulate"), simulate), SCHEMA)
    neither = refused(validate, set_key(config, ("datasets", "gpa"), {"factors": ["student"]}), SCHEMA)
    assert both == neither == "config key 'datasets.gpa': give exactly one of: source | simulate"
    valid(set_key(config, ("datasets", "gpa"), {"simulate": simulate}))


# --- cross-references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("models", "m"), {"dataset": "nope", "formula": "y ~ x"}, "models.m.dataset: unknown data set 'nope'"),
        (
            ("scatter_plots", "p"),
            {"dataset": "nope", "x": "a", "y": "b"},
            "scatter_plots.p.dataset: unknown data set 'nope'",
        ),
        (
            ("shrinkage", "settings", "s"),
            {"dataset": "nope", "group": "g", "predictor": "x", "response": "y"},
            "shrinkage.settings.s.dataset: unknown data set 'nope'",
        ),
        (("comparisons", "c"), ["gpa_mixed", "nope"], "comparisons.c: unknown model 'nope'"),
        (
            ("likelihood_ratio_tests", "t"),
            ["gpa_mixed", "nope"],
            "likelihood_ratio_tests.t: unknown model 'nope'",
        ),
        (
            ("focus_groups", "f"),
            {"models": ["nope"], "group": "1", "by": "x"},
            "focus_groups.f.models: unknown model 'nope'",
        ),
        (("coefficient_checks",), ["sleep_slopes", "nope"], "coefficient_checks: unknown model 'nope'"),
        (("intervals", "models"), ["nope"], "intervals.models: unknown model 'nope'"),
    ],
)
def test_an_unknown_data_set_or_model_is_named_with_the_known_ones(config, path, value, message):
    text = refused(check_references, valid(set_key(config, path, value)))
    known = "gpa, pupils, sleepstudy, sim_exercise" if "data set" in message else "gpa_mixed, gpa_null, ach_cat_re_1,"
    assert text.startswith(f"{message}; known: {known}"), text


@pytest.mark.parametrize("section", ["comparisons", "focus_groups"])
def test_models_compared_side_by_side_share_their_data_set(config, section):
    models = ["sleep_slopes", "gpa_mixed"]
    value = models if section == "comparisons" else {"models": models, "group": "1", "by": "x"}
    text = refused(check_shared_datasets, valid(set_key(config, (section, "mixed"), value)))
    assert "models fitted to different data sets ['gpa', 'sleepstudy']" in text


def test_a_likelihood_ratio_test_compares_models_on_one_data_set(config):
    set_key(config, ("likelihood_ratio_tests", "mixed"), ["sleep_slopes", "gpa_mixed"])
    text = refused(check_likelihood_ratio_tests, valid(config))
    assert text.startswith("likelihood_ratio_tests.mixed: models with different data sets"), text
    assert "sleep_slopes: sleepstudy, gpa_mixed: gpa" in text


def test_a_likelihood_ratio_test_compares_models_of_one_response(config):
    set_key(config, ("models", "log_gpa"), {"dataset": "gpa", "formula": "occasion ~ 1 + (1 | student)"})
    set_key(config, ("likelihood_ratio_tests", "mixed"), ["gpa_mixed", "log_gpa"])
    text = refused(check_likelihood_ratio_tests, valid(config))
    assert "models with different responses (gpa_mixed: gpa, log_gpa: occasion)" in text, text


def test_the_configured_likelihood_ratio_tests_and_ml_flag_are_accepted(config):
    config = valid(config)
    check_likelihood_ratio_tests(config)
    assert config["likelihood_ratio_tests"]["gpa_occasion"] == ["gpa_null", "gpa_mixed"]
    assert all(spec["reml"] is True for spec in config["models"].values())
    set_key(config, ("models", "gpa_null", "reml"), "no")
    with pytest.raises(ConfigError, match="models.gpa_null.reml"):
        validate(config, SCHEMA)


def test_a_formula_syntax_error_is_named_by_model(config):
    set_key(config, ("models", "sleep_slopes", "formula"), "Reaction ~ Days + (Days | Subject")
    assert refused(check_formulas, valid(config)).startswith("models.sleep_slopes.formula: ")


def test_data_sets_share_a_file_name_only_with_its_source(config):
    assert set(raw_sources(valid(config))) == {"gpa.RData", "pupils.RData", "sleepstudy.csv", "speed_dating.RData"}
    same_file = {**CONFIG["datasets"]["gpa"], "source": {**CONFIG["datasets"]["gpa"]["source"], "object": "other"}}
    set_key(config, ("datasets", "gpa_again"), same_file)
    assert set(raw_sources(valid(config))) == {"gpa.RData", "pupils.RData", "sleepstudy.csv", "speed_dating.RData"}
    set_key(config, ("datasets", "gpa_local"), {"source": {"path": "elsewhere/gpa.RData"}})
    text = refused(raw_sources, valid(config))
    assert (
        text
        == "datasets.gpa_local.source: file name 'gpa.RData' is already used by data set 'gpa' with a different source"
    )


def test_the_shrinkage_section_matches_the_schema():
    config = CONFIG
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert list(validator.iter_errors(config)) == []
    for path in (
        ("shrinkage",),
        ("shrinkage", "settings", "gpa"),
        ("shrinkage", "settings", "imbalanced", "simulate"),
        ("shrinkage", "settings", "imbalanced", "simulate", "dropout"),
    ):
        bad = copy.deepcopy(config)
        target = bad
        for key in path:
            target = target[key]
        target["bogus"] = 1
        assert list(validator.iter_errors(bad)), f"unknown key accepted under {path}"
    bad = copy.deepcopy(config)
    del bad["shrinkage"]["settings"]["more_variance"]["seed"]
    assert list(validator.iter_errors(bad)), "a simulated setting without a seed was accepted"


@pytest.mark.parametrize(
    "key, weights, message",
    [
        ("occasion_weights", [1.0] * 8, "occasion_weights: one weight per later occasion expected (9), got 8"),
        ("count_weights", [1.0] * 10, "count_weights: at most 9 later occasions can be kept, got 10 weights"),
    ],
)
def test_dropout_weights_fit_the_simulated_occasions(config, key, weights, message):
    set_key(config, ("shrinkage", "settings", "imbalanced", "simulate", "dropout", key), weights)
    assert refused(check_shrinkage, valid(config)) == f"shrinkage.settings.imbalanced.simulate.dropout.{message}"


def test_bootstrap_chunks_do_not_outnumber_replicates(config):
    check_bootstrap(valid(config))
    set_key(config, ("intervals", "bootstrap"), {"replicates": 2, "chunks": 4, "seed": 1})
    assert refused(check_bootstrap, valid(config)) == "intervals.bootstrap: 4 chunks for only 2 replicates"


# --- data sets against the raw files at hand ---------------------------------------------------


def with_mirror(config, mirror):
    config["data_mirror"] = str(mirror) if mirror is not None else None
    return valid(config)


def test_columns_are_checked_against_the_mirror_copy(config, tmp_path):
    set_key(config, ("datasets", "pupils", "recode"), {"sesx": {"a": ["b"]}})
    text = refused(check_datasets, with_mirror(config, MIRROR), tmp_path)
    assert text.startswith("datasets.pupils.recode: column 'sesx' is not in the data after rename; its columns are ")


def test_without_a_copy_at_hand_the_columns_wait_for_preparation(config, tmp_path):
    set_key(config, ("datasets", "pupils", "recode"), {"sesx": {"a": ["b"]}})
    check_datasets(with_mirror(config, None), tmp_path)
    check_datasets(with_mirror(config, tmp_path / "empty_mirror"), tmp_path)


def test_a_fetched_copy_is_preferred_to_the_mirror(config, tmp_path):
    """The fetched file was verified; a mirror copy, maybe corrupt, is not read then."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "gpa.RData").write_bytes(b"corrupt")
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copyfile(MIRROR / "gpa.RData", raw / "gpa.RData")
    set_key(config, ("datasets", "gpa", "factors"), ["studnet"])
    assert "datasets.gpa.factors: column 'studnet'" in refused(check_datasets, with_mirror(config, mirror), raw)


def test_an_unreadable_pinned_copy_waits_for_the_fetch_to_verify_it(config, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    content = bytearray((MIRROR / "gpa.RData").read_bytes())
    content[100] ^= 0xFF
    (mirror / "gpa.RData").write_bytes(content)
    check_datasets(with_mirror(config, mirror), tmp_path / "raw")


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("sleep_empty.csv", b"", "EmptyDataError"),
        ("gpa_truncated.RData", (MIRROR / "gpa.RData").read_bytes()[:300], "LibrdataError"),
    ],
)
def test_an_unreadable_local_file_without_digest_is_refused(config, tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    set_key(config, ("datasets", "broken"), {"source": {"path": str(tmp_path / name)}})
    text = refused(check_datasets, with_mirror(config, None), tmp_path / "raw")
    assert text.startswith(f"{name}: cannot read this {(tmp_path / name).suffix} file ({reason}"), text


def test_an_unsupported_file_type_is_named(config, tmp_path):
    set_key(config, ("datasets", "odd"), {"source": {"path": "data/odd.xlsx"}})
    assert refused(check_datasets, with_mirror(config, None), tmp_path).startswith(
        "datasets.odd.source: cannot read 'odd.xlsx'"
    )


# --- all of it, as Snakemake runs it -----------------------------------------------------------


def test_check_config_accepts_config_yaml_and_reports_overrides(config, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  sleep_slopes: {formula: 'Reaction ~ Days + (1 | Subject)'}\n")
    files = [ROOT / "config.yaml", extra]
    notes = check_config(with_mirror(config, MIRROR), files, CONFIG_SCHEMA, tmp_path / "raw")
    assert notes == [
        "config key 'models.sleep_slopes' is given in config.yaml and extra.yaml; merged key by key, extra.yaml wins"
    ]
    assert config["models"]["gpa_mixed"]["engine"] == "fast"


def test_check_config_refuses_duplicate_keys_before_anything_else(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  m: {dataset: d}\n  m: {dataset: e}\n")
    text = refused(check_config, {}, [extra], CONFIG_SCHEMA, tmp_path)
    assert "extra.yaml line 3: 'models.m' (first given at line 2)" in text


@pytest.mark.workflow
def test_snakemake_reports_an_entry_an_extra_configfile_overrides(tmp_path):
    """Snakemake lists --configfile files before config.yaml but merges them over it."""
    from workflow_helpers import offline, output, snakemake

    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  sleep_slopes: {formula: 'Reaction ~ Days + (1 | Subject)'}\n")
    result = snakemake(tmp_path, "-n", "results/models/sleep_slopes/fit.json", "--configfile", str(extra), *offline())
    assert result.returncode == 0, output(result)
    note = "Note: config key 'models.sleep_slopes' is given in config.yaml and extra.yaml; merged key by key, extra.yaml wins"
    assert note in output(result), output(result)


# --- config.yaml's pinned sources --------------------------------------------------------------


def test_pinned_sources_match_the_mirror_records():
    digests = dict(reversed(line.split()) for line in (MIRROR / "SHA256SUMS").read_text().splitlines() if line)
    documented = set(re.findall(r"https://\S+?(?= \|)", (MIRROR / "SOURCES.md").read_text()))
    raw = {name: dataset["source"] for name, dataset in CONFIG["datasets"].items() if "source" in dataset}
    assert set(raw) == {"gpa", "pupils", "sleepstudy", "speed_dating"}
    for name, source in raw.items():
        assert source["sha256"] == digests[raw_file_name(source)], name
        assert source["url"] in documented, name


# --- issue 22: names, functions, focus groups, weights, files given twice ------------------------


def test_a_file_given_twice_overrides_nothing(tmp_path):
    base, extra = tmp_path / "config.yaml", tmp_path / "extra.yaml"
    base.write_text("models: {m: {dataset: d, formula: y ~ x}}\n")
    extra.write_text("models: {m: {formula: y ~ z}}\n")
    assert redefined_entries([base, base]) == []
    assert redefined_entries([base, extra, extra]) == [
        "config key 'models.m' is given in config.yaml and extra.yaml; merged key by key, extra.yaml wins"
    ]
    copy_ = tmp_path / "copy.yaml"
    copy_.write_text(base.read_text())
    assert redefined_entries([base, copy_]) == []  # the same entry in two files changes nothing


@pytest.mark.parametrize("section", ["models", "datasets"])
@pytest.mark.parametrize("name, ok", [("m" * 100, True), ("m" * 101, False), ("a-b", False), ("a.b", False)])
def test_names_are_limited_in_length_and_characters(config, section, name, ok):
    entry = config[section][next(iter(config[section]))]
    config[section][name] = entry
    if ok:
        valid(config)
    else:
        message = refused(validate, config, SCHEMA)
        assert f"config key '{section}." in message and "at most 100 characters" in message
        assert "\n" not in message


def test_a_test_name_is_limited_too(config):
    config["likelihood_ratio_tests"]["t" * 101] = ["gpa_null", "gpa_mixed"]
    assert "at most 100 characters" in refused(validate, config, SCHEMA)


@pytest.mark.parametrize("function", ["foo", "factor", "ns"])
def test_an_unknown_function_is_refused_naming_it_and_the_supported_ones(config, function):
    config["models"]["gpa_mixed"]["formula"] = f"gpa ~ {function}(occasion) + (1 | student)"
    message = refused(check_formulas, config)
    assert message.startswith(f"models.gpa_mixed.formula: formula 'gpa ~ {function}(occasion) + (1 | student)'")
    assert f"function '{function}' is not one lmmflow evaluates; supported: C, I, abs, cbind, center" in message


@pytest.mark.parametrize(
    "formula",
    ["größe ~ älter + (1 | schüle)", "y.1 ~ x_2 + .z + `a b` + (1 | `my group`)", "ŷ ~ log(x) + offset(z) + (1 | g)"],
)
def test_column_names_as_r_allows_them(config, formula):
    config["models"]["gpa_mixed"]["formula"] = formula
    check_formulas(config)


def test_weights_are_accepted(config):
    config["models"]["gpa_mixed"]["weights"] = "w"
    valid(config)
    assert config["models"]["gpa_mixed"]["weights"] == "w"
    check_formulas(config)
    config["models"]["gpa_mixed"]["engine"] = "statsmodels"
    assert refused(check_formulas, config).startswith(
        "models.gpa_mixed.weights: engine statsmodels cannot fit prior weights"
    )


def test_a_focus_group_model_without_the_grouping_factor_is_refused_naming_both(config):
    config["models"]["crossed"] = {"dataset": "pupils", "formula": "achievement ~ ses + (1 | secondary_school_id)"}
    config["focus_groups"]["school10"]["models"].append("crossed")
    assert refused(check_focus_groups, valid(config)) == (
        "focus_groups.school10: model 'crossed' has no grouping factor of model 'ach_cat_re_1' "
        "(primary_school_id); its grouping factors: secondary_school_id"
    )


def test_focus_group_models_sharing_a_grouping_factor_pass(config):
    config["models"]["nested"] = {
        "dataset": "pupils",
        "formula": "achievement ~ ses + (1 | secondary_school_id) + (1 | primary_school_id)",
    }
    config["focus_groups"]["school10"]["models"].append("nested")
    check_focus_groups(valid(config))
