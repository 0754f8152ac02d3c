"""What the benchmark sections share: paths, the GPA model, timing, child processes, markdown tables."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_MIRROR = ROOT.parent / "shared" / "data"
# The GPA random-slope model: the user's model of the workflow runs and the model of the scaling.
GPA_FORMULA = "y ~ occasion + (1 + occasion | student)"
# The chapter's GPA estimates, the truth of the simulation.
GPA_TRUTH = dict(
    intercept=2.599, slope=0.1063, sd_intercept=0.2126, sd_slope=0.0671, correlation=-0.098, sd_residual=0.2059
)
QUICK_MODELS = ("sleep_slopes", "sleep_uncorrelated")  # the configured models a --quick run fits


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(function, *args):
    """Wall seconds of ``function(*args)`` and its value."""
    clock = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - clock, value


def peak_mb() -> float:
    """This process's peak resident memory so far (its maximum RSS), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_run(command: list[str]) -> tuple[float, str]:
    """Wall seconds and printed output of ``command``, which must succeed."""
    clock = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - clock
    printed = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{printed[-3000:]}")
    return seconds, printed


def child_result(script: str, *arguments: str) -> dict:
    """Run ``script`` (a file of this folder) with ``arguments`` in a fresh process, for its own
    imports and peak RSS; its last printed line, as JSON, or its error."""
    command = [sys.executable, str(Path(__file__).with_name(script)), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def statsmodels_default(design):
    """statsmodels' own single fit (its default optimizer chain), REML: logLik and converged."""
    from lmmflow.verify.statsmodels_fit import to_mixedlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = to_mixedlm(design).fit(reml=True)
    return float(result.llf), bool(result.converged)


def fmt(value, digits=2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def heading(title: str, *paragraphs: str) -> list[str]:
    """A section's first lines: its title and the paragraphs that say how to read its tables."""
    lines = [f"## {title}", ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    return lines


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(fmt(v) if not isinstance(v, str) else v for v in row) + " |" for row in rows]
