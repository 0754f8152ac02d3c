"""Run the repository's workflow from tests, in a scratch working directory, offline."""

import shutil
import subprocess
from pathlib import Path

from conftest import MIRROR

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the workflow with `workdir` as working directory (config.yaml copied in, unless present)."""
    if not (workdir / "config.yaml").exists():
        shutil.copyfile(ROOT / "config.yaml", workdir / "config.yaml")
    command = ["snakemake", "--snakefile", ROOT / "Snakefile", "--directory", workdir, "--cores", "2"]
    return subprocess.run([*map(str, command), *args], capture_output=True, text=True)


def offline(*targets: str) -> list[str]:
    """Targets, then the mirror setting (--config swallows every word after it)."""
    return [*targets, "--config", f"data_mirror={MIRROR}"]


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr
