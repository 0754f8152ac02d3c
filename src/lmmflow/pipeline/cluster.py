"""Cluster execution: a preflight check of a SLURM profile, before anything is submitted.

    python -m lmmflow.pipeline.cluster preflight --profile workflow/profiles/slurm [--partition P] [--account A]

checks that the SLURM commands the executor plugin calls are on PATH (sbatch, squeue, sinfo and
the profile's status command), that every partition the profile names (`slurm_partition` in
`default-resources` or `set-resources`) exists (`sinfo -h -o %P`), and that every account it
names (`slurm_account`) is one of the user's (`sacctmgr`). `--partition`/`--account` stand for
the same values given on the snakemake command line (`--default-resources slurm_partition=...`).
It prints what it found and exits 0, or prints each problem and exits 1 (2: unreadable profile).
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REQUIRED_COMMANDS = ("sbatch", "squeue", "sinfo")


class ProfileError(ValueError):
    """The profile cannot be read."""


@dataclass
class SlurmRequest:
    """What a profile asks of the cluster: partitions and accounts, and how job status is polled."""

    partitions: dict[str, list[str]] = field(default_factory=dict)  # name -> where it is set
    accounts: dict[str, list[str]] = field(default_factory=dict)
    status_command: str | None = None
    executor: str | None = None


def _strip(value) -> str:
    """A resource value as Snakemake reads it: `'debug'`, `"debug"` and `debug` are the same."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _resource_pairs(resources) -> dict[str, str]:
    """`default-resources` as a mapping, or as a list of `name=value` strings (as on the command line)."""
    if resources is None:
        return {}
    if isinstance(resources, dict):
        return {str(name): _strip(value) for name, value in resources.items()}
    if isinstance(resources, str):
        resources = resources.split()
    pairs = {}
    for item in resources:
        name, sep, value = str(item).partition("=")
        if not sep:
            raise ProfileError(f"default-resources: expected name=value, got {item!r}")
        pairs[name.strip()] = _strip(value)
    return pairs


def _rule_resource_pairs(resources) -> dict[str, dict[str, str]]:
    """`set-resources` as rule -> mapping, or as a list of `rule:name=value` strings."""
    if resources is None:
        return {}
    if isinstance(resources, dict):
        return {str(rule): _resource_pairs(values) for rule, values in resources.items()}
    pairs: dict[str, dict[str, str]] = {}
    for item in [resources] if isinstance(resources, str) else resources:
        rule, sep, assignment = str(item).partition(":")
        if not sep:
            raise ProfileError(f"set-resources: expected rule:name=value, got {item!r}")
        pairs.setdefault(rule.strip(), {}).update(_resource_pairs([assignment]))
    return pairs


def read_profile(profile: Path) -> dict:
    """The settings of a Snakemake profile folder (its config.yaml)."""
    path = Path(profile)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise ProfileError(f"no profile at {profile} (expected a folder with config.yaml)")
    try:
        settings = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not YAML: {error}") from None
    if not isinstance(settings, dict):
        raise ProfileError(f"{path}: expected a mapping of settings")
    return settings


def slurm_request(settings: dict, partition: str | None = None, account: str | None = None) -> SlurmRequest:
    """Partitions and accounts named in profile settings; `partition`/`account` override the defaults."""
    request = SlurmRequest(
        status_command=settings.get("slurm-status-command"),
        executor=settings.get("executor"),
    )
    default = _resource_pairs(settings.get("default-resources"))
    if partition is not None:
        default["slurm_partition"] = partition
    if account is not None:
        default["slurm_account"] = account
    scopes = [("default-resources", default)]
    scopes += [
        (f"set-resources.{rule}", values)
        for rule, values in _rule_resource_pairs(settings.get("set-resources")).items()
    ]
    for where, values in scopes:
        for key, found in (("slurm_partition", request.partitions), ("slurm_account", request.accounts)):
            if values.get(key):
                found.setdefault(values[key], []).append(where)
    return request


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _message(result: subprocess.CompletedProcess) -> str:
    """A failed command's message on one line."""
    return " ".join((result.stderr.strip() or result.stdout.strip()).split())


def cluster_partitions(run=_run) -> tuple[list[str], str | None]:
    """The partitions `sinfo` reports, and the default one (marked `*`), if any."""
    result = run(["sinfo", "-h", "-o", "%P"])
    if result.returncode != 0:
        raise RuntimeError(f"`sinfo -h -o %P` failed: {_message(result)}")
    names, default = [], None
    for line in result.stdout.split():
        name = line.strip().rstrip("*")
        if line.strip().endswith("*"):
            default = name
        if name and name not in names:
            names.append(name)
    return names, default


def user_accounts(user: str, run=_run) -> list[str]:
    """The accounts `sacctmgr` associates with `user`."""
    command = ["sacctmgr", "-n", "-P", "list", "associations", f"user={user}", "format=account"]
    result = run(command)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {_message(result)}")
    return sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})


def check(request: SlurmRequest, which=shutil.which, run=_run, user: str | None = None):
    """(problems, notes) of this request on the cluster the SLURM commands on PATH talk to."""
    problems, notes = [], []
    if request.executor not in (None, "slurm"):
        notes.append(f"the profile's executor is {request.executor!r}, not 'slurm'")
    commands = list(REQUIRED_COMMANDS)
    if request.status_command and request.status_command not in commands:
        commands.append(request.status_command)
    missing = [command for command in commands if which(command) is None]
    if missing:
        problems.append(
            f"not on PATH: {', '.join(missing)}. Run on a SLURM submit (login) node, or use the local "
            "profile (--workflow-profile workflow/profiles/default)"
        )
    else:
        notes.append(f"found {', '.join(commands)}")

    if "sinfo" not in missing:
        try:
            partitions, default = cluster_partitions(run)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            problems.append(f"cannot list partitions: {error}")
        else:
            known = ", ".join(f"{p}*" if p == default else p for p in partitions) or "none"
            for name, where in request.partitions.items():
                if name not in partitions:
                    problems.append(
                        f"partition {name!r} ({', '.join(where)}) does not exist; partitions: {known}. "
                        "Set slurm_partition in the profile's default-resources"
                    )
            present = [name for name in request.partitions if name in partitions]
            if present:
                notes.append(f"partition(s) {', '.join(map(repr, present))} exist (of: {known})")
            elif request.partitions:
                pass  # each missing one is a problem above
            elif default:
                notes.append(f"no slurm_partition set: jobs go to the default partition {default!r}")
            else:
                problems.append(f"no slurm_partition set and the cluster has no default partition; partitions: {known}")

    if request.accounts:
        user = user or getpass.getuser()
        if which("sacctmgr") is None:
            problems.append(
                f"account(s) {', '.join(map(repr, request.accounts))} set, but `sacctmgr` is not on PATH to check them"
            )
        else:
            try:
                accounts = user_accounts(user, run)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                problems.append(f"cannot check account(s) {', '.join(map(repr, request.accounts))}: {error}")
            else:
                lowered = {account.lower() for account in accounts}
                for name, where in request.accounts.items():
                    if name.lower() not in lowered:
                        problems.append(
                            f"account {name!r} ({', '.join(where)}) is not one of user {user!r}'s "
                            f"accounts: {', '.join(accounts) or 'none'}"
                        )
                if not problems:
                    notes.append(f"account(s) {', '.join(map(repr, request.accounts))} are {user!r}'s")
    else:
        notes.append("no slurm_account set (fine where the cluster needs none)")
    return problems, notes


class PreflightError(RuntimeError):
    """The cluster cannot take the jobs as they are configured."""


def jobs_request(jobs, status_command: str | None = None) -> SlurmRequest:
    """Partitions and accounts that Snakemake jobs will be submitted with (local jobs left out)."""
    request = SlurmRequest(status_command=status_command, executor="slurm")
    for job in jobs:
        if job.is_local:
            continue
        for key, found in (("slurm_partition", request.partitions), ("slurm_account", request.accounts)):
            value = job.resources.get(key)
            if value:
                rules = found.setdefault(_strip(value), [])
                if f"rule {job.rule.name}" not in rules:
                    rules.append(f"rule {job.rule.name}")
    return request


def check_jobs(jobs, status_command: str | None = None, which=shutil.which, run=_run) -> list[str]:
    """The preflight of a run's jobs, from the workflow's `onstart`: raises PreflightError."""
    request = jobs_request(jobs, status_command)
    problems, notes = check(request, which=which, run=run)
    if problems:
        raise PreflightError(
            "SLURM preflight failed, nothing was submitted:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\n(set slurm_partition/slurm_account in workflow/profiles/slurm/config.yaml or with "
            '--default-resources; README, "Cluster execution")'
        )
    return notes


def preflight(profile, partition=None, account=None, which=shutil.which, run=_run, out=sys.stdout) -> int:
    """Check a profile against the cluster; print the findings; 0 if it can submit, else 1 (2: bad profile)."""
    try:
        request = slurm_request(read_profile(profile), partition, account)
    except ProfileError as error:
        print(f"preflight: {error}", file=out)
        return 2
    problems, notes = check(request, which=which, run=run)
    for note in notes:
        print(f"preflight: {note}", file=out)
    if problems:
        for problem in problems:
            print(f"preflight: ERROR: {problem}", file=out)
        print(f"preflight: {profile}: FAILED; nothing was submitted", file=out)
        return 1
    print(f"preflight: {profile}: OK", file=out)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmmflow.pipeline.cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("preflight", help="check a SLURM profile against the cluster")
    check_parser.add_argument("--profile", default="workflow/profiles/slurm", help="profile folder")
    check_parser.add_argument("--partition", help="as --default-resources slurm_partition=...")
    check_parser.add_argument("--account", help="as --default-resources slurm_account=...")
    args = parser.parse_args(argv)
    return preflight(args.profile, args.partition, args.account)


if __name__ == "__main__":
    sys.exit(main())
