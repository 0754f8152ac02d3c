"""The provenance appendix: where the raw data came from, the software, the run, the configuration.

The facts about the run (git state, package versions, date, renderer) are collected once, by
``run_context``, when the report job starts; ``provenance`` lays them out, one section each.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from lmmflow.pipeline import environment
from lmmflow.report.formatting import code, number, pipe_table
from lmmflow.report.results import Results

PACKAGES = ("statsmodels", "numpy", "scipy", "pandas", "matplotlib", "snakemake")


def run_context(repo: str | Path, renderer_label: str) -> dict:
    """The run's facts for the appendix: git state, package versions and whether they are the
    lock's (``repo``'s requirements/lock.txt), date, renderer."""
    return {
        "git": git_state(repo),
        "versions": package_versions(),
        "lock": lock_sentence(Path(repo) / environment.LOCK_FILE),
        "date": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "renderer_label": renderer_label,
    }


def git_state(repo: str | Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str]:
    """Python's and the key packages' versions installed where the report is rendered (read from
    their metadata: nothing is imported)."""
    versions = {"Python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def lock_sentence(lock_path: Path) -> str:
    """ "environment matches the lock", or each package whose installed version differs."""
    if not lock_path.is_file():
        return f"no lock file at {lock_path}: the environment was not compared with a lock"
    return environment.describe(environment.lock_status(lock_path)[1])


def provenance(results: Results, context: dict) -> str:
    """The appendix, from the results (data schemas, configuration) and ``run_context``."""
    sections = [
        raw_data_section(results),
        software_section(context),
        run_section(context),
        configuration_section(results),
    ]
    return "\n\n".join(sections)


def raw_data_section(results: Results) -> str:
    """Each raw file's pinned source and verified SHA-256; simulated data sets by their recipe."""
    rows, simulated = [], []
    for key in results.keys(r"data/(\w+)\.schema\.json"):
        schema = results.json(key)
        source = results.config.get("datasets", {}).get(schema["dataset"], {}).get("source", {})
        recorded = schema["source"]
        if "sha256" not in recorded:  # simulated: generator, seed and parameters
            simulated.append(f"- {code(schema['dataset'])}: {code(json.dumps(recorded))}")
            continue
        where = f"<{source['url']}>" if "url" in source else code(source.get("path", "–"))
        rows.append(
            f"- **{recorded['file']}** (data set {code(schema['dataset'])}, {number(schema['rows'])} rows "
            f"prepared)\n  - source: {where}\n  - SHA-256 (verified): {code(recorded['sha256'])}"
        )
    return (
        "## Raw data\n\nEach raw file's pinned source and the SHA-256 verified when it was fetched:\n\n"
        + "\n".join(rows)
        + ("\n\nSimulated data sets (no raw file):\n\n" + "\n".join(simulated) if simulated else "")
    )


def software_section(context: dict) -> str:
    """The versions in the environment that rendered the report (``package_versions``), and how
    that environment compares with the lock (requirements/lock.txt)."""
    versions = pd.DataFrame(list(context["versions"].items()), columns=["software", "version"])
    lock = f"Locked environment: **{context['lock']}**.\n\n"
    return "## Software\n\n" + lock + pipe_table(versions, "Versions in the environment that rendered this report.")


def run_section(context: dict) -> str:
    git = context["git"]
    commit = "not a git checkout" if git["commit"] is None else code(git["commit"])
    tree = (
        ""
        if git["dirty"] is None
        else (" (working tree **dirty**: uncommitted changes)" if git["dirty"] else " (clean working tree)")
    )
    return (
        f"## Run\n\n- Workflow commit: {commit}{tree}\n"
        f"- Rendered: {context['date']}\n"
        f"- Renderer: {context['renderer_label']}"
    )


def configuration_section(results: Results) -> str:
    config = yaml.safe_dump(results.config, sort_keys=False, width=100, default_flow_style=None).rstrip()
    return f"## Configuration as used\n\n```yaml\n{config}\n```"
