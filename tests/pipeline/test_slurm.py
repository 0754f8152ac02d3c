"""The whole workflow on a real (single-node, throw-away) SLURM cluster, through
snakemake-executor-plugin-slurm and workflow/profiles/slurm, gives byte-identical results tables
to a local run.

Needs root and Debian's slurm-wlm and munge (.ci/run installs them); the fixture starts the
cluster with tests/pipeline/slurm/start_slurm.sh and always stops it with tests/pipeline/slurm/stop_slurm.sh.
`pytest -s -m slurm` prints the jobs submitted and the wall times of both runs.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import MIRROR, ROOT
from test_cluster import local_rules
from workflow_helpers import checkout_env

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

SCRIPTS = ROOT / "tests" / "pipeline" / "slurm"
# The test lowers the plugin's status polling (40 s before the first check, then growing) so
# that a finished job is noticed within seconds.
FAST_POLLING = ["--seconds-between-status-checks", "2", "--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")


def why_not_runnable():
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        return "SLURM is not installed (no sbatch/slurmctld on PATH): apt-get install slurm-wlm munge, as .ci/run does"
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged for the test cluster needs root"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def slurm_env():
    """A running single-node cluster; the environment that points the SLURM commands at it."""
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    started = subprocess.run([SCRIPTS / "start_slurm.sh"], capture_output=True, text=True)
    lines = started.stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines else None
    try:
        assert started.returncode == 0, f"start_slurm.sh failed:\n{started.stdout}\n{started.stderr}"
        print(f"\nSLURM test cluster in {folder}:\n{started.stdout}")
        yield {**checkout_env(), "SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        if folder is not None and (folder / "started").exists():
            stopped = subprocess.run([SCRIPTS / "stop_slurm.sh", folder], capture_output=True, text=True)
            print(f"stop_slurm.sh:\n{stopped.stdout}{stopped.stderr}")


def run_snakemake(workdir, env, *args):
    """The repository's workflow run in `workdir` (config.yaml copied in), offline from the mirror."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "config.yaml", workdir / "config.yaml")
    command = ["snakemake", "--snakefile", ROOT / "Snakefile", "--directory", workdir, *args]
    command += ["--config", f"data_mirror={MIRROR}"]
    return subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env)


def snakemake(workdir, env, *args):
    """A successful run (as run_snakemake): its output and wall time."""
    start = time.monotonic()
    result = run_snakemake(workdir, env, *args)
    elapsed = time.monotonic() - start
    (workdir.parent / f"{workdir.name}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"snakemake in {workdir} failed:\n{result.stdout}\n{result.stderr[-20000:]}"
    return result.stdout + result.stderr, elapsed


class SqueuePoller(threading.Thread):
    """Writes `squeue` (all states, so just-finished jobs show too) to a log every few seconds."""

    def __init__(self, log, env, every=3.0):
        super().__init__(daemon=True)
        self.log, self.env, self.every, self.stop = log, env, every, threading.Event()

    def run(self):
        command = ["squeue", "-a", "-t", "all", "-o", "%.6i %.10T %.9M %.8m %.4C %k"]
        with self.log.open("w") as log:
            while not self.stop.is_set():
                result = subprocess.run(command, capture_output=True, text=True, env=self.env)
                log.write(f"--- {time.strftime('%H:%M:%S')}\n{result.stdout}{result.stderr}")
                log.flush()
                self.stop.wait(self.every)


def job_stats(output):
    """rule -> job count from the first 'Job stats:' table of a snakemake run."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or fields[0] == "total":
            break
        counts[fields[0]] = int(fields[1])
    return counts


def results_tables(workdir):
    """Relative paths of the results tables; benchmarks and the report (timestamps) left out."""
    results = workdir / "results"
    return sorted(
        path.relative_to(workdir)
        for path in results.rglob("*")
        if path.suffix in (".csv", ".json") and path.relative_to(results).parts[0] not in ("benchmarks", "report")
    )


def test_preflight_on_the_running_cluster(slurm_env):
    command = [
        sys.executable,
        "-m",
        "lmmflow.pipeline.cluster",
        "preflight",
        "--profile",
        ROOT / "workflow/profiles/slurm",
    ]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=slurm_env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        list(map(str, [*command, "--partition", "nosuch"])), capture_output=True, text=True, env=slurm_env
    )
    assert result.returncode == 1 and "partition 'nosuch' (default-resources) does not exist" in result.stdout


def test_workflow_checks_partitions_before_submitting(slurm_env, tmp_path):
    """The Snakefile's onstart preflight stops a run whose jobs name a partition SLURM lacks."""
    result = run_snakemake(
        tmp_path,
        slurm_env,
        "--profile",
        ROOT / "workflow/profiles/slurm",
        "--set-resources",
        "shrinkage_setting:slurm_partition=nosuch",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SLURM preflight failed, nothing was submitted" in output, output
    assert "partition 'nosuch' (rule shrinkage_setting) does not exist; partitions: debug*" in output
    assert not SUBMITTED.search(output) and not (tmp_path / "results").exists()


def test_whole_workflow_on_slurm_matches_local_run(slurm_env, tmp_path):
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_output, local_time = snakemake(local_dir, slurm_env, "--workflow-profile", ROOT / "workflow/profiles/default")

    poller = SqueuePoller(tmp_path / "squeue.log", slurm_env)
    poller.start()
    try:
        slurm_output, slurm_time = snakemake(
            slurm_dir, slurm_env, "--profile", ROOT / "workflow/profiles/slurm", *FAST_POLLING
        )
    finally:
        poller.stop.set()
        poller.join()
    squeue_log = (tmp_path / "squeue.log").read_text()

    stats = job_stats(slurm_output)
    local = set(local_rules())
    cluster_jobs = {rule: count for rule, count in stats.items() if rule not in local}
    submitted = SUBMITTED.findall(slurm_output)
    print(
        f"\nlocal run:  {sum(stats.values())} jobs in {local_time:.1f} s"
        f"\nSLURM run:  {len(submitted)} jobs submitted with sbatch ({cluster_jobs}), "
        f"{sum(stats.values()) - len(submitted)} local rule jobs, in {slurm_time:.1f} s"
        f"\nsqueue log: {tmp_path / 'squeue.log'}; its polls that saw jobs:\n"
        + "\n".join(block for block in squeue_log.split("--- ") if "rule_" in block)[:4000]
    )

    # Every job of a non-local rule went through sbatch, and nothing else did.
    assert len(submitted) == sum(cluster_jobs.values()) > 0, slurm_output
    assert {"fit_model", "shrinkage_setting"} <= set(cluster_jobs)
    assert "localrule fetch_raw:" in slurm_output and "rule fit_model:" in slurm_output
    # squeue saw the workflow's jobs (the plugin puts the rule in the job comment).
    assert "rule_fit_model" in squeue_log and "rule_shrinkage_setting" in squeue_log, squeue_log
    for jobid in submitted[:3]:
        assert re.search(rf"^\s*{jobid}\s", squeue_log, re.M), f"job {jobid} not seen by squeue"

    tables = results_tables(local_dir)
    assert len(tables) > 20 and tables == results_tables(slurm_dir)
    differ = [str(path) for path in tables if (local_dir / path).read_bytes() != (slurm_dir / path).read_bytes()]
    assert not differ, f"differ between the local and the SLURM run: {differ}"
