"""Run the repository's workflow from tests, in a scratch working directory, offline."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import MIRROR, ROOT


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the workflow with `workdir` as working directory (config.yaml copied in, unless present)."""
    if not (workdir / "config.yaml").exists():
        shutil.copyfile(ROOT / "config.yaml", workdir / "config.yaml")
    command = ["snakemake", "--snakefile", ROOT / "Snakefile", "--directory", workdir, "--cores", "2"]
    return subprocess.run([*map(str, command), *args], capture_output=True, text=True, env=checkout_env())


def checkout_env() -> dict[str, str]:
    """The environment with this checkout's package first on the path, for Snakemake and its jobs."""
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def offline(*targets: str) -> list[str]:
    """Targets, then the mirror setting (--config swallows every word after it)."""
    return [*targets, "--config", f"data_mirror={MIRROR}"]


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def strict_json(text: str):
    """``json.loads`` refusing NaN, Infinity and -Infinity: Python accepts them, but they are not
    JSON (RFC 8259) and R's jsonlite and JavaScript reject them."""

    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def json_outputs(results: Path) -> dict[str, object]:
    """Every JSON file under ``results``, parsed strictly, by its path relative to ``results``."""
    return {str(path.relative_to(results)): strict_json(path.read_text()) for path in sorted(results.rglob("*.json"))}
