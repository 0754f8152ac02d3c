"""The provenance appendix: raw data with their checksums, software versions, the run, the config."""

import json

from conftest import ROOT
from report_helpers import CONTEXT

from lmmflow.pipeline.environment import installed_versions
from lmmflow.report import Results
from lmmflow.report.provenance import git_state, lock_sentence, package_versions, provenance


def test_package_versions_name_python_and_the_key_packages():
    versions = package_versions()
    assert list(versions)[:2] == ["Python", "statsmodels"] and "snakemake" in versions
    assert versions["pandas"][0].isdigit()


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    assert len(git_state(ROOT)["commit"]) == 40


def test_the_appendix_has_the_raw_files_the_software_the_run_and_the_config(tmp_path):
    data = tmp_path / "results" / "data"
    data.mkdir(parents=True)
    raw = {"dataset": "gpa", "rows": 1200, "source": {"file": "gpa.RData", "sha256": "ab" * 32}}
    simulated = {"dataset": "sim", "rows": 10, "source": {"generator": "random_slopes", "seed": 1}}
    for schema in (raw, simulated):
        (data / f"{schema['dataset']}.schema.json").write_text(json.dumps(schema))
    config = {"datasets": {"gpa": {"source": {"url": "https://example.org/gpa.RData"}}}}
    results = Results([str(path) for path in data.iterdir()], config=config)
    text = provenance(results, CONTEXT)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Raw data", "## Software", "## Run", "## Configuration as used"]
    assert "- **gpa.RData** (data set `gpa`, 1200 rows prepared)\n  - source: <https://example.org/gpa.RData>" in text
    assert f"SHA-256 (verified): `{'ab' * 32}`" in text
    assert '- `sim`: `{"generator": "random_slopes", "seed": 1}`' in text
    assert "| Python | 3 |" in text and "- Workflow commit: not a git checkout\n" in text
    assert "https://example.org/gpa.RData" in text.split("## Configuration as used")[1]


def test_the_lock_sentence_says_match_or_names_each_changed_package_with_both_versions(tmp_path):
    installed = installed_versions()
    lock = tmp_path / "lock.txt"
    lock.write_text("".join(f"{name}=={version}\n" for name, version in installed.items()))
    assert lock_sentence(lock) == "environment matches the lock"
    lock.write_text(lock.read_text().replace(f"numpy=={installed['numpy']}", "numpy==0.0.1"))
    assert (
        lock_sentence(lock) == f"environment differs from the lock: numpy 0.0.1 locked, {installed['numpy']} installed"
    )
    assert "not compared" in lock_sentence(tmp_path / "absent.txt")


def test_the_software_section_shows_the_lock_sentence(tmp_path):
    results = Results([], config={})
    assert "Locked environment: **environment matches the lock**." in provenance(results, CONTEXT)
