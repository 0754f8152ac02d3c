"""The whole workflow run once per test session (report included), shared by the report tests."""

from pathlib import Path

from workflow_helpers import offline, output, snakemake

_RUN: dict[str, Path] = {}


def completed_workflow(tmp_path_factory) -> Path:
    """The working directory of one full offline run of the default target, made on first use."""
    if "workdir" not in _RUN:
        workdir = tmp_path_factory.mktemp("report_workflow")
        result = snakemake(workdir, *offline())
        assert result.returncode == 0, output(result)
        _RUN["workdir"] = workdir
    return _RUN["workdir"]
