"""The conda environment under `snakemake --sdm conda`: Snakemake accepts lmmflow.yaml with its pin
file, the pin file is part of the environment's identity, and conda reads every line of it.

These need conda 24.7.1 or later (Snakemake's minimum) on PATH and are skipped without it; the CI
machine has none and cannot install one (conda-forge and Anaconda's installers are unreachable,
PyPI's conda stops at 4.3.16). Conda is not asked to create the environment: that downloads from
conda-forge."""

import re
import shutil
import subprocess

import pytest
from conftest import ROOT
from packaging.version import Version
from workflow_helpers import offline, output, snakemake

ENV_FILE = "workflow/envs/lmmflow.yaml"
PIN_FILE = "workflow/envs/lmmflow.linux-64.pin.txt"
SNAKEMAKE_MINIMUM_CONDA = Version("24.7.1")


def conda_version() -> Version | None:
    if shutil.which("conda") is None:
        return None
    printed = subprocess.run(["conda", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"\d+\.\d+\.\d+", printed)
    return Version(found[0]) if found else None


pytestmark = pytest.mark.skipif(
    (conda_version() or Version("0")) < SNAKEMAKE_MINIMUM_CONDA,
    reason=f"needs conda {SNAKEMAKE_MINIMUM_CONDA} or later on PATH",
)


def conda_environments(workdir, snakefile=ROOT / "Snakefile") -> dict[str, str]:
    """Environment file -> the folder Snakemake would create it in (named by its hash)."""
    command = ["snakemake", "--snakefile", snakefile, "--directory", workdir, "--sdm", "conda", "--list-conda-envs"]
    result = subprocess.run([*map(str, command), *offline()], capture_output=True, text=True, cwd=workdir)
    assert result.returncode == 0, output(result)
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.endswith("_") and "\t" in line]
    return {re.sub(r".*/envs/", "envs/", row[0]): row[-1] for row in rows}


def test_dry_run_under_sdm_conda_accepts_the_environment(tmp_path):
    result = snakemake(tmp_path, "--sdm", "conda", "-n", *offline())
    assert result.returncode == 0, output(result)
    assert re.search(r"Conda environment \S*envs/lmmflow\.yaml will be created", output(result)), output(result)


def test_pin_file_is_part_of_the_environment_identity(tmp_path):
    """Snakemake builds from the pin file when there is one: the environment's hash covers it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for part in ["Snakefile", "config.yaml", "workflow", "scripts", "reports"]:
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copyfile
        copy(ROOT / part, checkout / part)
    (tmp_path / "run").mkdir()
    shutil.copyfile(ROOT / "config.yaml", tmp_path / "run" / "config.yaml")
    pinned = conda_environments(tmp_path / "run", checkout / "Snakefile")
    (checkout / PIN_FILE).unlink()
    unpinned = conda_environments(tmp_path / "run", checkout / "Snakefile")
    assert list(pinned) == list(unpinned) == ["envs/lmmflow.yaml"]
    assert pinned != unpinned
    assert conda_environments(tmp_path / "run") == pinned  # the repository's own files: the same hash


def test_conda_reads_every_package_of_the_pin_file(tmp_path):
    """`conda create --file` with the pin file, dry and offline: conda parses each explicit URL
    (a malformed one stops it with a ParseError) and stops before downloading."""
    command = ["conda", "create", "--dry-run", "--offline", "--prefix", tmp_path / "env", "--file", ROOT / PIN_FILE]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True)
    assert result.returncode == 0, output(result)
    assert "DryRunExit" in output(result) and "Error" not in output(result), output(result)


def test_conda_reads_every_dependency_of_the_environment_file(tmp_path):
    """`conda env create --dry-run` with lmmflow.yaml: online conda solves it; offline (as here) it
    can only name each dependency it parsed as not found. A malformed spec stops it earlier."""
    command = ["conda", "env", "create", "--solver", "classic", "--dry-run", "--offline"]
    command += ["--prefix", tmp_path / "env", "--file", ROOT / ENV_FILE]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True)
    if result.returncode != 0:
        assert "PackagesNotFound" in output(result), output(result)
        missing = set(re.findall(r"^\s+- (\S+)$", output(result), flags=re.M))
        assert missing == {"python=3.11", "pip", "setuptools[version='>=68']"}, output(result)
