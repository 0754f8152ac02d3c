"""Cluster execution without a cluster: the profiles, localrules, and the SLURM preflight check
run against fake sbatch/squeue/sinfo/sacctmgr executables on PATH."""

import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from conftest import ROOT

from lmmflow.pipeline import cluster

CLUSTER_RULES = ROOT / "workflow" / "rules" / "cluster.smk"
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
DEFAULT_PROFILE = ROOT / "workflow" / "profiles" / "default"


def local_rules():
    """The rule names of the workflow's `localrules:` directive (workflow/rules/cluster.smk)."""
    match = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", CLUSTER_RULES.read_text(), re.M)
    assert match, f"{CLUSTER_RULES}: no `localrules:` block"
    return [name.strip(" \t,") for name in match.group(1).splitlines()]


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rules")
    shutil.copyfile(ROOT / "config.yaml", workdir / "config.yaml")
    command = ["snakemake", "--snakefile", ROOT / "Snakefile", "--directory", workdir, "--list-rules"]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(result.stdout.split())


def test_localrules_and_cluster_resources_name_existing_rules(workflow_rules):
    assert set(local_rules()) <= workflow_rules
    heavy = set(yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())["set-resources"])
    assert heavy <= workflow_rules
    assert not heavy & set(local_rules()), "a rule with cluster resources is also a local rule"
    assert {"fit_model", "shrinkage_setting"} <= heavy


def test_slurm_profile_settings():
    settings = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert settings["executor"] == "slurm"
    assert settings["slurm-status-command"] == "squeue"
    assert {"slurm_partition", "mem_mb", "runtime", "cpus_per_task"} <= set(settings["default-resources"])
    # Every job fits the test cluster's node (tests/pipeline/slurm/start_slurm.sh: RealMemory=8000).
    memory = [settings["default-resources"]["mem_mb"]]
    memory += [values.get("mem_mb", 0) for values in settings["set-resources"].values()]
    assert max(memory) <= 8000


def test_default_profile_is_local():
    settings = yaml.safe_load((DEFAULT_PROFILE / "config.yaml").read_text())
    assert "executor" not in settings and settings["cores"] == 2


# --- preflight against fake SLURM commands ---


def fake_commands(folder, partitions="debug*\ngpu\n", accounts="lab\nother\n", sacctmgr_fails=False, missing=()):
    """sbatch, squeue, sinfo, sacctmgr stand-ins in `folder`: sinfo lists `partitions`,
    sacctmgr lists `accounts` (or fails as without slurmdbd); `missing` ones are left out."""
    folder.mkdir(exist_ok=True)
    scripts = {
        "sbatch": "echo 1",
        "squeue": "exit 0",
        "sinfo": f"printf '{partitions}'",
        "sacctmgr": (
            "echo 'You are not running a supported accounting_storage plugin' >&2; exit 1"
            if sacctmgr_fails
            else f"printf '{accounts}'"
        ),
    }
    for name, body in scripts.items():
        if name in missing:
            continue
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def write_profile(folder, **settings):
    folder.mkdir(exist_ok=True)
    profile = {"executor": "slurm", "slurm-status-command": "squeue"} | settings
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def preflight(bin_dir, profile, *args):
    """`python -m lmmflow.pipeline.cluster preflight`, with only `bin_dir` on PATH."""
    command = [sys.executable, "-m", "lmmflow.pipeline.cluster", "preflight", "--profile", str(profile), *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PATH": str(bin_dir)})
    return result.returncode, result.stdout + result.stderr


def test_preflight_passes_on_the_repository_profile(tmp_path):
    code, output = preflight(fake_commands(tmp_path / "bin"), SLURM_PROFILE)
    assert code == 0, output
    assert "partition(s) 'debug' exist" in output and output.rstrip().endswith("OK")


@pytest.mark.parametrize("missing", [("sbatch",), ("squeue",), ("sbatch", "squeue", "sinfo")])
def test_preflight_refuses_missing_commands(tmp_path, missing):
    code, output = preflight(fake_commands(tmp_path / "bin", missing=missing), SLURM_PROFILE)
    assert code == 1
    assert f"not on PATH: {', '.join(missing)}" in output
    assert "nothing was submitted" in output


def test_preflight_refuses_unknown_partition(tmp_path):
    profile = write_profile(
        tmp_path / "profile",
        **{
            "default-resources": {"slurm_partition": "debug"},
            "set-resources": {"fit_model": {"slurm_partition": "bigmem"}},
        },
    )
    code, output = preflight(fake_commands(tmp_path / "bin"), profile)
    assert code == 1
    assert "partition 'bigmem' (set-resources.fit_model) does not exist; partitions: debug*, gpu" in output


def test_preflight_partition_from_the_command_line_and_list_form(tmp_path):
    profile = write_profile(tmp_path / "profile", **{"default-resources": ["slurm_partition='debug'", "mem_mb=100"]})
    bin_dir = fake_commands(tmp_path / "bin")
    assert preflight(bin_dir, profile)[0] == 0
    code, output = preflight(bin_dir, profile, "--partition", "long")
    assert code == 1 and "partition 'long' (default-resources) does not exist" in output


def test_preflight_without_partition_uses_the_default_one(tmp_path):
    profile = write_profile(tmp_path / "profile")
    code, output = preflight(fake_commands(tmp_path / "bin"), profile)
    assert code == 0 and "default partition 'debug'" in output
    code, output = preflight(fake_commands(tmp_path / "bin2", partitions="a\nb\n"), profile)
    assert code == 1 and "no default partition" in output


def test_preflight_checks_accounts(tmp_path):
    profile = write_profile(
        tmp_path / "profile", **{"default-resources": {"slurm_partition": "gpu", "slurm_account": "lab"}}
    )
    assert preflight(fake_commands(tmp_path / "bin"), profile)[0] == 0
    code, output = preflight(fake_commands(tmp_path / "bin2", accounts="other\n"), profile)
    assert code == 1 and "account 'lab' (default-resources) is not one of user" in output
    code, output = preflight(fake_commands(tmp_path / "bin3", sacctmgr_fails=True), profile)
    assert code == 1 and "cannot check account(s) 'lab'" in output and "accounting_storage" in output
    code, output = preflight(fake_commands(tmp_path / "bin4", missing=("sacctmgr",)), profile)
    assert code == 1 and "`sacctmgr` is not on PATH" in output


def test_preflight_reports_an_unreadable_profile(tmp_path):
    code, output = preflight(fake_commands(tmp_path / "bin"), tmp_path / "nowhere")
    assert code == 2 and "no profile at" in output


def test_slurm_request_reads_both_set_resources_forms():
    settings = {
        "default-resources": "slurm_partition=debug mem_mb=10",
        "set-resources": ["fit_model:slurm_partition=gpu", "fit_model:slurm_account=lab"],
    }
    request = cluster.slurm_request(settings)
    assert request.partitions == {"debug": ["default-resources"], "gpu": ["set-resources.fit_model"]}
    assert request.accounts == {"lab": ["set-resources.fit_model"]}


def fake_job(rule, local=False, **resources):
    return SimpleNamespace(rule=SimpleNamespace(name=rule), is_local=local, resources=resources)


def test_check_jobs_of_a_run(tmp_path, monkeypatch):
    """The workflow's onstart check: partitions/accounts the submitted (non-local) jobs ask for."""
    monkeypatch.setenv("PATH", str(fake_commands(tmp_path / "bin")))
    jobs = [
        fake_job("fit_model", slurm_partition="debug"),
        fake_job("fit_model", slurm_partition="debug"),
        fake_job("compare_models", local=True, slurm_partition="nosuch"),
    ]
    assert any("'debug' exist" in note for note in cluster.check_jobs(jobs, "squeue"))
    jobs.append(fake_job("shrinkage_setting", slurm_partition="bigmem", slurm_account="nolab"))
    with pytest.raises(cluster.PreflightError) as error:
        cluster.check_jobs(jobs, "squeue")
    message = str(error.value)
    assert "nothing was submitted" in message
    assert "partition 'bigmem' (rule shrinkage_setting) does not exist" in message
    assert "account 'nolab' (rule shrinkage_setting) is not one of user" in message
    assert "nosuch" not in message
