"""Smoke test of the benchmarks: `python benchmarks/run.py --quick` runs and writes its table.

Timings are not checked: a benchmark is not a timed test.
"""

import subprocess
import sys

import pytest
from conftest import MIRROR, ROOT
from workflow_helpers import checkout_env

pytestmark = pytest.mark.workflow


def test_quick_benchmark_writes_the_markdown_tables(tmp_path):
    target = tmp_path / "latest.md"
    command = [sys.executable, ROOT / "benchmarks" / "run.py", "--quick", "--mirror", MIRROR, "--output", target]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=600, env=checkout_env())
    assert result.returncode == 0, result.stdout + result.stderr
    text = target.read_text()
    assert text.strip() == result.stdout.strip()
    for heading in ("## Workflow", "## Snakemake's floor", "## Chapter models", "## Scaling"):
        assert heading in text
    # sleepstudy's two models (from the mirror) share a fit job: the changed one reruns that batch
    assert "| no-op rerun |" in text and "reran: fit_batch_sleepstudy_0" in text
    assert "| clean, jobs importing pandas |" in text
    assert "| sleep_slopes | 180 |" in text
    assert "| 2,000 | fast | 12,000 |" in text and "not run in --quick" in text
