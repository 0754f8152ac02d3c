"""The results handed to the report job, looked up by their path below ``results/``; the
report's errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd


class MissingResult(LookupError):
    """A placeholder needs a results file that is not among the job's inputs."""


class ReportError(RuntimeError):
    """The report cannot be built or rendered; the message says why."""


class Results:
    """The job's input files, looked up by their path below ``results/``."""

    def __init__(self, paths, config: dict | None = None, figures_dir: Path | None = None):
        self.paths: dict[str, Path] = {}
        for path in paths:
            posix = Path(path).as_posix()
            key = posix.split("results/", 1)[1] if "results/" in posix else posix
            self.paths[key] = Path(path)
        self.config = config or {}
        self.figures_dir = figures_dir  # where figures are copied for the renderer

    def path(self, key: str) -> Path:
        if key not in self.paths:
            raise MissingResult(f"results/{key}")
        return self.paths[key]

    def has(self, key: str) -> bool:
        return key in self.paths

    def keys(self, pattern: str) -> list[str]:
        """Keys matching a regular expression, in input order."""
        return [key for key in self.paths if re.fullmatch(pattern, key)]

    def names(self, pattern: str, name: str | None = None) -> list[str]:
        """The names captured by ``pattern``'s group in the keys it matches; only ``name`` if given
        (then its file must be there)."""
        found = [re.fullmatch(pattern, key).group(1) for key in self.keys(pattern)]
        if name is not None:
            if name not in found:
                raise MissingResult(pattern.replace("(\\w+)", name))
            return [name]
        return found

    def csv(self, key: str, **kwargs) -> pd.DataFrame:
        return pd.read_csv(self.path(key), **kwargs)

    def json(self, key: str) -> dict:
        return json.loads(self.path(key).read_text())

    def model_dir(self, model: str) -> str:
        folder = f"models/{model}"
        if not self.has(f"{folder}/fit.json"):
            raise MissingResult(f"results/{folder}/fit.json")
        return folder

    def fit(self, model: str) -> dict:
        return self.json(f"{self.model_dir(model)}/fit.json")
