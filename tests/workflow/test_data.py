"""The data stage run by Snakemake in a scratch working directory, offline from the mirror."""

import hashlib
import json
import shutil

import pytest
import yaml
from conftest import MIRROR
from workflow_helpers import output, snakemake

from lmmflow.data.prepare import read_prepared

pytestmark = pytest.mark.workflow

DATASETS = ["gpa", "pupils", "sleepstudy"]


def run_data_stage(workdir, mirror):
    targets = [f"results/data/{name}.{ext}" for name in DATASETS for ext in ("csv", "schema.json")]
    return snakemake(workdir, *targets, "--config", f"data_mirror={mirror}")


@pytest.fixture(scope="module")
def prepared(completed_workflow):
    return completed_workflow / "results" / "data"


def load(folder, name):
    return read_prepared(folder / f"{name}.csv", folder / f"{name}.schema.json")


def test_gpa(prepared):
    data = load(prepared, "gpa")
    assert len(data) == 1200 and data["student"].nunique() == 200


def test_sleepstudy(prepared):
    data = load(prepared, "sleepstudy")
    assert len(data) == 180 and data["Subject"].nunique() == 18


def test_pupils_ses(prepared):
    ses = load(prepared, "pupils")["ses"]
    assert list(ses.cat.categories) == ["low", "mid", "high"]
    assert ses.value_counts(sort=False).to_dict() == {"low": 303, "mid": 554, "high": 143}


def test_dictionary_records_the_verified_source(prepared):
    dictionary = json.loads((prepared / "pupils.schema.json").read_text())
    assert dictionary["source"] == {
        "file": "pupils.RData",
        "sha256": "74fa1cccf7cd1b655cacacb37b9d8dd724b516fa46b769aabe3745eddf94ce64",
    }


def test_rerun_gives_identical_bytes(prepared, tmp_path):
    result = run_data_stage(tmp_path, MIRROR)
    assert result.returncode == 0, output(result)
    for name in DATASETS:
        for path in prepared.glob(f"{name}.*"):
            assert (tmp_path / "results" / "data" / path.name).read_bytes() == path.read_bytes()


def test_corrupt_mirror_stops_before_preparing_and_keeps_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    corrupt = mirror / "gpa.RData"
    corrupt.chmod(0o644)
    content = bytearray(corrupt.read_bytes())
    content[100] ^= 0xFF
    corrupt.write_bytes(content)
    result = run_data_stage(tmp_path, mirror)
    assert result.returncode != 0
    expected = "2fe359f22de7ecb919ed7a848ca21b4c096baa322b94dc443bef98f7f54d2b18"
    actual = hashlib.sha256(content).hexdigest()
    assert all(text in output(result) for text in ("gpa.RData", expected, actual)), output(result)
    assert list((tmp_path / "resources" / "raw").glob("*gpa*")) == []
    assert list((tmp_path / "results").rglob("gpa*")) == []


@pytest.mark.parametrize(
    "extra, named",
    [
        ({"bogus": 1}, "config key 'bogus': unknown key; allowed: data_mirror, datasets,"),
        ({"models": {"m": {"dataset": "nope", "formula": "y ~ x"}}}, "models.m.dataset: unknown data set 'nope'"),
        ({"comparisons": {"c": ["gpa_mixed", "nope"]}}, "comparisons.c: unknown model 'nope'"),
        ({"datasets": {"pupils": {"recode": {"sesx": {"a": ["b"]}}}}}, "datasets.pupils.recode: column 'sesx'"),
    ],
    ids=["unknown-key", "unknown-dataset", "unknown-model", "recode-missing-column"],
)
def test_bad_config_is_refused_at_start_up(tmp_path, extra, named):
    extra_file = tmp_path / "extra.yaml"
    extra_file.write_text(yaml.safe_dump(extra))
    result = snakemake(tmp_path, "-n", "--configfile", extra_file, "--config", f"data_mirror={MIRROR}")
    assert result.returncode != 0
    assert named in output(result), output(result)
    assert len(output(result).splitlines()) <= 12, output(result)  # the problem, not the schema
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()
