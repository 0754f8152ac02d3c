"""config.yaml against its schema, and its pinned sources against the shared mirror's records."""

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import MIRROR

from lmmflow.acquire import raw_file_name

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def errors(config):
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [error.message for error in validator.iter_errors(config)]


def changed(path, value):
    """A copy of the config with the entry at `path` (keys) set to `value`."""
    config = copy.deepcopy(CONFIG)
    *parents, last = path
    target = config
    for key in parents:
        target = target[key]
    target[last] = value
    return config


def test_config_is_valid():
    assert errors(CONFIG) == []


@pytest.mark.parametrize(
    "path",
    [
        ("bogus",),
        ("datasets", "gpa", "bogus"),
        ("datasets", "gpa", "source", "bogus"),
        ("models", "gpa_mixed", "bogus"),
    ],
)
def test_unknown_keys_are_refused_by_name(path):
    assert any("'bogus' was unexpected" in message for message in errors(changed(path, 1)))


@pytest.mark.parametrize(
    "path, value",
    [
        (("datasets", "gpa", "source"), {"url": "https://host/gpa.RData"}),
        (("datasets", "gpa", "source"), {"url": "https://host/gpa.RData", "sha256": "abc"}),
        (("datasets", "gpa", "source"), {"url": "https://h/g.csv", "sha256": "0" * 64, "path": "g.csv"}),
        (("datasets", "gpa", "factors"), "student"),
        (("datasets", "pupils", "recode", "ses"), {"low": []}),
        (("models", "gpa_mixed"), {"dataset": "gpa"}),
        (("comparisons", "ach_cat_re"), ["ach_cat_re_1"]),
        (("datasets", "bad name"), {"source": {"path": "x.csv"}}),
    ],
    ids=[
        "no-sha256",
        "bad-sha256",
        "url-and-path",
        "factors-not-list",
        "empty-level",
        "no-formula",
        "one-model",
        "bad-name",
    ],
)
def test_malformed_entries_are_refused(path, value):
    assert errors(changed(path, value))


def test_local_path_source_needs_no_digest():
    assert errors(changed(("datasets", "gpa", "source"), {"path": "data/gpa.RData"})) == []


def test_a_data_set_has_a_source_or_a_simulation_not_both():
    simulate = {"generator": "exercise", "seed": 1}
    assert errors(changed(("datasets", "gpa", "simulate"), simulate))
    assert errors(changed(("datasets", "gpa"), {"simulate": simulate})) == []
    assert errors(changed(("datasets", "gpa"), {"factors": ["student"]}))


def test_pinned_sources_match_the_mirror_records():
    digests = dict(reversed(line.split()) for line in (MIRROR / "SHA256SUMS").read_text().splitlines() if line)
    documented = set(re.findall(r"https://\S+?(?= \|)", (MIRROR / "SOURCES.md").read_text()))
    raw = {name: dataset["source"] for name, dataset in CONFIG["datasets"].items() if "source" in dataset}
    assert set(raw) == {"gpa", "pupils", "sleepstudy"}
    for name, source in raw.items():
        assert source["sha256"] == digests[raw_file_name(source)], name
        assert source["url"] in documented, name
