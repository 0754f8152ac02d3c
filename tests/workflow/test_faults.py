"""Fault matrix: the workflow run on bad inputs stops with a message naming the culprit (file, key,
column or term) and leaves no partial output; a killed run resumes; clean runs are reproducible.

Runs are shared where they can be: one `--keep-going` run holds every fault that only fails its
own jobs (`faulty` fixture); faults refused at start-up get a run each (they stop before any job).
The digest mismatch of a corrupted mirror file is in test_workflow_data.py.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import MIRROR
from workflow_helpers import ROOT, checkout_env, json_outputs, output, snakemake

pytestmark = pytest.mark.workflow

FORMULA = "Reaction ~ Days + (Days | Subject)"
NOWHERE = "http://127.0.0.1:9/nowhere.csv"  # port 9 (discard): refused at once, no network needed
MODEL_FILES = ["fit.json", "attempts.csv", "fixed_effects.csv", "variance_components.csv", "random_effects.csv"]


def run(workdir: Path, *targets: str, extra: dict | str | None = None, mirror=MIRROR, args=()):
    """The workflow on `targets`, with `extra` merged over config.yaml (--configfile), offline."""
    command = [*targets, *args]
    if extra is not None:
        path = workdir / "extra.yaml"
        path.write_text(extra if isinstance(extra, str) else yaml.safe_dump(extra, sort_keys=False))
        command += ["--configfile", str(path)]
    return snakemake(workdir, *command, "--config", f"data_mirror={mirror}")


def path_source(path: Path) -> dict:
    return {"source": {"path": str(path)}, "factors": ["Subject"]}


def leftovers(workdir: Path, name: str) -> list[str]:
    """Files under results/ and resources/ whose path mentions `name` (a data set, model, file);
    Snakemake's timings under results/benchmarks/ are not outputs."""
    return sorted(
        str(p.relative_to(workdir))
        for folder in ("results", "resources")
        if (workdir / folder).exists()
        for p in (workdir / folder).rglob("*")
        if p.is_file() and name in str(p.relative_to(workdir)) and "benchmarks" not in p.relative_to(workdir).parts
    )


def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(MIRROR / "sleepstudy.csv")


# --- faults that fail only their own jobs: one shared run -------------------------------------

MISSING_ROWS = {"Reaction": [0, 5], "Days": [7], "Subject": [12]}
INFINITE_ROWS = [3, 16]  # data rows 4 and 17


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """One --keep-going run over data sets and models with faults, beside good ones."""
    workdir = tmp_path_factory.mktemp("faulty")
    files = workdir / "inputs"
    files.mkdir()
    data = sleepstudy()
    with_missing = data.astype({"Days": float, "Subject": float})
    for column, rows in MISSING_ROWS.items():
        with_missing.loc[rows, column] = float("nan")
    with_missing.to_csv(files / "sleep_missing.csv", index=False)
    with_missing.dropna().to_csv(files / "sleep_complete.csv", index=False)
    data[data["Subject"] == 308].to_csv(files / "sleep_one_subject.csv", index=False)
    text = data.astype({"Reaction": object})
    text.loc[3, "Reaction"] = "fast"
    text.to_csv(files / "sleep_text.csv", index=False)
    data.head(0).to_csv(files / "sleep_header_only.csv", index=False)
    infinite = data.copy()
    infinite.loc[INFINITE_ROWS, "Reaction"] = [float("inf"), -float("inf")]
    infinite.to_csv(files / "sleep_inf.csv", index=False)
    (files / "sleep_ragged.csv").write_text(data.head(5).to_csv(index=False) + "6,300.1,5,308,extra\n")
    extra = {
        "datasets": {
            "sleep_missing": path_source(files / "sleep_missing.csv"),
            "sleep_complete": path_source(files / "sleep_complete.csv"),
            "sleep_one_subject": path_source(files / "sleep_one_subject.csv"),
            "sleep_text": path_source(files / "sleep_text.csv"),
            "sleep_header_only": path_source(files / "sleep_header_only.csv"),
            "sleep_ragged": path_source(files / "sleep_ragged.csv"),
            "sleep_inf": path_source(files / "sleep_inf.csv"),
            "sleep_offline": {"source": {"url": NOWHERE, "sha256": "0" * 64}},
        },
        "models": {
            "m_missing": {"dataset": "sleep_missing", "formula": FORMULA},
            "m_complete": {"dataset": "sleep_complete", "formula": FORMULA},
            "m_one_subject": {"dataset": "sleep_one_subject", "formula": FORMULA},
            "m_text": {"dataset": "sleep_text", "formula": FORMULA},
            "m_inf": {"dataset": "sleep_inf", "formula": FORMULA},
            "m_unknown_column": {"dataset": "sleepstudy", "formula": "Reaction ~ Dayz + (Days | Subject)"},
        },
    }
    targets = [
        f"results/models/{model}/fit.json"
        for model in ("m_missing", "m_complete", "m_one_subject", "m_text", "m_inf", "m_unknown_column")
    ]
    targets += [f"results/data/{name}.csv" for name in ("sleep_header_only", "sleep_ragged", "sleep_offline")]
    result = run(workdir, *targets, extra=extra, args=["--keep-going"])
    assert result.returncode != 0, output(result)
    return workdir, output(result)


RAW = "resources/raw/"


@pytest.mark.parametrize(
    "message, culprit, kept",
    [
        ("response 'Reaction' must be numeric, found column 'Reaction' of category", "m_text", []),
        (
            "datasets.sleep_inf (sleep_inf.csv): column 'Reaction' has 2 infinite values (data rows 4, 17",
            "_inf",  # the data set sleep_inf and the model m_inf
            [RAW + "sleep_inf.csv"],
        ),
        ("grouping factor 'Subject' has only one level ('308')", "m_one_subject", []),
        ("fixed part 'Dayz' names column(s) ['Dayz'] not found in data", "m_unknown_column", []),
        ("sleep_header_only.csv gives a table with no rows", "sleep_header_only", [RAW + "sleep_header_only.csv"]),
        ("sleep_ragged.csv: cannot read this .csv file (ParserError", "sleep_ragged", [RAW + "sleep_ragged.csv"]),
        (f"cannot fetch nowhere.csv: not in data_mirror {MIRROR}, and downloading {NOWHERE} failed", "nowhere", []),
    ],
    ids=[
        "non-numeric-response",
        "infinite-response",
        "one-level-group",
        "unknown-column",
        "empty-table",
        "corrupted-csv",
        "missing-raw-offline",
    ],
)
def test_fault_is_named_and_leaves_no_output(faulty, message, culprit, kept):
    """`kept`: the verified raw copy of a local file that fetched fine and then failed to prepare."""
    workdir, printed = faulty
    assert message in printed, printed
    assert leftovers(workdir, culprit) == kept


def test_no_temporary_files_survive_the_failed_jobs(faulty):
    workdir, _ = faulty
    assert [p for p in workdir.rglob("*.tmp")] == []


def test_json_of_the_faulty_run_is_strict(faulty):
    workdir, _ = faulty
    assert "models/m_missing/fit.json" in json_outputs(workdir / "results")


def test_rows_with_missing_values_are_dropped_counted_and_fit_like_complete_cases(faulty):
    workdir, printed = faulty
    models = workdir / "results" / "models"
    fit = json.loads((models / "m_missing" / "fit.json").read_text())
    complete = json.loads((models / "m_complete" / "fit.json").read_text())
    n_missing = sum(map(len, MISSING_ROWS.values()))
    assert (fit["n_obs"], fit["n_dropped"]) == (180 - n_missing, n_missing)
    assert f"{n_missing} rows with missing values in model columns were dropped" in fit["warnings"]
    assert complete["n_dropped"] == 0 and complete["warnings"] == []
    for key in ("n_obs", "n_groups", "logLik", "AIC", "AICc", "converged", "singular"):
        assert fit[key] == pytest.approx(complete[key], rel=1e-9), key
    for table in MODEL_FILES[2:]:
        pd.testing.assert_frame_equal(
            pd.read_csv(models / "m_missing" / table), pd.read_csv(models / "m_complete" / table), rtol=1e-8
        )


# --- faults refused at start-up: nothing runs -------------------------------------------------

DUPLICATE_MODEL = """\
models:
  sleep_slopes: {dataset: sleepstudy, formula: "Reaction ~ Days + (Days | Subject)"}
  sleep_slopes: {dataset: sleepstudy, formula: "Reaction ~ Days + (1 | Subject)"}
"""


def test_comparison_of_models_on_different_data_is_refused_at_start_up(tmp_path):
    extra = {"comparisons": {"different_data": ["sleep_slopes", "gpa_mixed"]}}
    result = run(tmp_path, "results/comparisons/different_data.csv", extra=extra)
    assert result.returncode != 0
    assert "comparisons.different_data: models fitted to different data sets ['gpa', 'sleepstudy']" in output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_duplicate_model_name_in_an_extra_configfile_is_refused(tmp_path):
    result = run(tmp_path, "results/models/sleep_slopes/fit.json", extra=DUPLICATE_MODEL)
    assert result.returncode != 0
    assert "extra.yaml line 3: 'models.sleep_slopes' (first given at line 2)" in output(result), output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_duplicate_model_name_in_config_yaml_is_refused(tmp_path):
    config = (ROOT / "config.yaml").read_text()
    first = next(line for line in config.splitlines() if line.startswith("  sleep_slopes:"))
    (tmp_path / "config.yaml").write_text(config.replace(first, f"{first}\n{first}", 1))
    line = config.splitlines().index(first) + 2
    result = run(tmp_path, "results/models/sleep_slopes/fit.json")
    assert result.returncode != 0
    assert f"config.yaml line {line}: 'models.sleep_slopes'" in output(result), output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("sleep_empty.csv", b"", "EmptyDataError"),
        ("gpa_truncated.RData", (MIRROR / "gpa.RData").read_bytes()[:300], "LibrdataError"),
    ],
    ids=["empty-csv", "truncated-rdata"],
)
def test_unreadable_local_raw_file_is_refused_at_start_up(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    extra = {"datasets": {"broken": {"source": {"path": str(tmp_path / name)}}}}
    result = run(tmp_path, "results/data/broken.csv", extra=extra)
    assert result.returncode != 0
    assert f"{name}: cannot read this {Path(name).suffix} file ({reason}" in output(result), output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def write_csv2(path: Path) -> None:
    """The sleep study as R's write.csv2 writes it: ';' between fields, ',' as decimal mark."""
    sleepstudy().to_csv(path, sep=";", decimal=",", index=False)


def test_semicolon_csv_is_refused_at_start_up_naming_its_columns_and_the_fix(tmp_path):
    write_csv2(tmp_path / "sleep2.csv")
    extra = {"datasets": {"sleep2": {"source": {"path": str(tmp_path / "sleep2.csv")}}}}
    result = run(tmp_path, "results/data/sleep2.csv", extra=extra)
    assert result.returncode != 0
    named = "sleep2.csv: read with separator \",\", its header is the one column 'rownames;Reaction;Days;Subject'"
    assert named in output(result) and 'set source.read: {sep: ";"}' in output(result), output(result)
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_semicolon_csv_with_read_options_prepares_as_the_comma_file(tmp_path):
    write_csv2(tmp_path / "sleep2.csv")
    read = {"sep": ";", "decimal": ","}
    source = {"path": str(tmp_path / "sleep2.csv"), "read": read}
    extra = {"datasets": {"sleep2": {"source": source, "factors": ["Subject"]}}}
    result = run(tmp_path, "results/data/sleep2.csv", "results/data/sleepstudy.csv", extra=extra)
    assert result.returncode == 0, output(result)
    data = tmp_path / "results" / "data"
    assert (data / "sleep2.csv").read_bytes() == (data / "sleepstudy.csv").read_bytes()


# --- a run killed mid-job resumes; no truncated file survives ---------------------------------

KILL_TARGETS = ["results/models/gpa_mixed/fit.json", "results/models/sleep_slopes/fit.json"]


def _first_output_of_a_fit(workdir: Path) -> bool:
    """A fit job has renamed its first table into place (it is still writing the others)."""
    models = workdir / "results" / "models"
    return models.exists() and any(not p.name.startswith(".") for p in models.glob("*/*"))


def _parse_all(workdir: Path) -> None:
    json_outputs(workdir / "results")
    for path in (workdir / "results").rglob("*.csv"):
        pd.read_csv(path)


def test_killed_run_resumes_and_leaves_no_truncated_file(tmp_path):
    command = ["snakemake", "--snakefile", ROOT / "Snakefile", "--directory", tmp_path, "--cores", "2"]
    command += [*KILL_TARGETS, "--config", f"data_mirror={MIRROR}"]
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    with open(tmp_path / "killed.out", "w") as log:
        process = subprocess.Popen(
            list(map(str, command)), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=checkout_env()
        )
    deadline = time.monotonic() + 120
    while not _first_output_of_a_fit(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    # kill -9 Snakemake and its jobs (one process group) while a fit job writes its outputs
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.out").read_text()
    _parse_all(tmp_path)
    print("outputs at the kill:", sorted(p.name for p in (tmp_path / "results" / "models").rglob("*")))

    # Resume as a user would: rerun, and apply the remedy Snakemake names, each at most once:
    # --rerun-incomplete for outputs of the killed job, --unlock for the killed run's lock.
    remedies, args = [], []
    for _ in range(3):
        rerun = run(tmp_path, *KILL_TARGETS, args=args)
        if rerun.returncode == 0:
            break
        named = [r for r in ("--rerun-incomplete", "--unlock") if r in output(rerun) and r not in remedies]
        assert named, output(rerun)
        remedies.append(named[0])
        if named[0] == "--unlock":
            assert run(tmp_path, args=["--unlock"]).returncode == 0
        else:
            args = ["--rerun-incomplete"]
    print("remedies applied:", remedies)
    assert "--unlock" in remedies  # kill -9 leaves the lock; Snakemake must say so
    assert rerun.returncode == 0, output(rerun)
    _parse_all(tmp_path)
    assert list(tmp_path.rglob("*.tmp")) == []
    for model in ("gpa_mixed", "sleep_slopes"):
        assert json.loads((tmp_path / "results" / "models" / model / "fit.json").read_text())["converged"]


# --- determinism: two clean runs give the same bytes ------------------------------------------


def _compared_files(workdir: Path) -> dict[str, bytes]:
    """Tables and JSON under results/, except benchmarks (timings) and provenance (dates, hosts)."""
    results = workdir / "results"
    return {
        str(path.relative_to(results)): path.read_bytes()
        for path in sorted(results.rglob("*"))
        if path.suffix in (".csv", ".json")
        and "benchmarks" not in path.relative_to(results).parts
        and "provenance" not in path.name
    }


def test_two_clean_runs_give_identical_tables_and_json(completed_workflow, tmp_path):
    """A second complete run (default target) against the session's shared one."""
    second = run(tmp_path)
    assert second.returncode == 0, output(second)
    first, again = (_compared_files(workdir) for workdir in (completed_workflow, tmp_path))
    assert len(first) > 20 and list(first) == list(again)
    differing = [name for name in first if first[name] != again[name]]
    assert differing == []
