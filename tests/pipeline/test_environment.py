"""The lock (requirements/lock.txt): it satisfies pyproject.toml, covers every import, is what is
installed here, and the report's sentence names each package that differs from it."""

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from lmmflow.pipeline import environment

LOCK = ROOT / environment.LOCK_FILE
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVS = ROOT / "workflow" / "envs"
# The code whose imports must be installable from the lock.
IMPORTING = [*sorted((ROOT / "src" / "lmmflow").rglob("*.py")), *sorted((ROOT / "scripts").glob("*.py"))]


def lock_python() -> str:
    """The Python the lock was resolved for, from the command in its header."""
    return re.search(r"--python-version (\d+\.\d+)", LOCK.read_text())[1]


def declared_requirements() -> list[tuple[str, Requirement]]:
    """pyproject.toml's requirements with the extra that asks for them ("" for the base ones)."""
    project = PYPROJECT["project"]
    base = [("", Requirement(text)) for text in project["dependencies"]]
    extras = [(extra, Requirement(text)) for extra, texts in project["optional-dependencies"].items() for text in texts]
    return base + extras


def test_lock_satisfies_every_requirement_of_pyproject_and_its_extras():
    locked = environment.read_lock(LOCK)
    unmet = []
    if not SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(lock_python()):
        unmet.append(f"requires-python {PYPROJECT['project']['requires-python']}: locked for Python {lock_python()}")
    for extra, requirement in declared_requirements():
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        version = locked.get(environment.canonical_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} ({extra or 'dependencies'}): locked {version or 'nowhere'}")
    assert not unmet, (
        "the lock no longer satisfies pyproject.toml; update it (README, 'Updating the lock'):\n" + "\n".join(unmet)
    )


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a Python file, lazy ones inside functions too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_of_the_package_and_scripts_is_locked():
    locked = environment.read_lock(LOCK)
    providers = metadata.packages_distributions()  # module -> distributions that install it
    missing = []
    for path in IMPORTING:
        for module in sorted(imported_modules(path) - set(sys.stdlib_module_names) - {"lmmflow", "__future__"}):
            distributions = {environment.canonical_name(name) for name in providers.get(module, [])}
            if not distributions & locked.keys():
                found = ", ".join(sorted(distributions)) or "no installed distribution"
                missing.append(f"{path.relative_to(ROOT)}: import {module} ({found}) is not in the lock")
    assert not missing, "\n".join(missing)


def frozen_versions() -> dict[str, str]:
    """`pip freeze` of this Python, canonical name -> version; the checkout itself left out."""
    command = [sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    pins = [re.fullmatch(r"(\S+)==(\S+)", line) for line in result.stdout.splitlines()]
    assert all(pins), f"pip freeze lists a package without a version:\n{result.stdout}"
    return {environment.canonical_name(pin[1]): pin[2] for pin in pins}


def test_pip_freeze_is_exactly_the_lock():
    found = environment.differences(environment.read_lock(LOCK), frozen_versions())
    assert environment.describe(found) == "environment matches the lock"


def test_report_sentence_for_this_environment_is_a_match():
    matches, found = environment.lock_status(LOCK)
    assert (matches, environment.describe(found)) == (True, "environment matches the lock")


def test_a_changed_package_is_named_with_both_versions(tmp_path):
    # A lock of whatever is installed here, but for numpy's version: as if numpy were changed by hand.
    installed = environment.installed_versions()
    pins = {**installed, "numpy": "1.0.0"}
    lock = tmp_path / "lock.txt"
    lines = [f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n    # via lmmflow" for name, version in pins.items()]
    lock.write_text("# a fabricated lock\n" + "\n".join(lines) + "\n")

    matches, found = environment.lock_status(lock)

    assert not matches
    assert found == [("numpy", "1.0.0", installed["numpy"])]
    assert (
        environment.describe(found)
        == f"environment differs from the lock: numpy 1.0.0 locked, {installed['numpy']} installed"
    )


def test_missing_and_unlocked_packages_are_differences_but_the_installer_is_not():
    locked = {"numpy": "2.1.0", "pandas": "2.2.3", "scipy": "1.14.1"}
    installed = {"numpy": "2.2.0", "scipy": "1.14.1", "six": "1.16.0", "pip": "24.0", "lmmflow": "0.1.0"}

    found = environment.differences(locked, installed)

    assert environment.describe(found) == (
        "environment differs from the lock: numpy 2.1.0 locked, 2.2.0 installed; "
        "pandas 2.2.3 locked, not installed; six not locked, 1.16.0 installed"
    )


def test_lock_reads_names_as_pip_compares_them(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\nPyYAML==6.0.2\n    # via lmmflow\nsnakemake_executor.plugin-slurm==2.8.0 \\\n    --hash=sha256:ab\n"
        "dask[dataframe]==2024.1.0\n"
    )
    locked = environment.read_lock(lock)
    assert locked == {"pyyaml": "6.0.2", "snakemake-executor-plugin-slurm": "2.8.0", "dask": "2024.1.0"}


def test_command_line_exits_nonzero_and_names_the_package_when_the_environment_differs(tmp_path, capsys):
    lock = tmp_path / "lock.txt"
    lock.write_text("numpy==1.0.0\n")
    assert environment.main([str(lock)]) == 1
    assert "numpy 1.0.0 locked" in capsys.readouterr().out


def test_conda_environment_is_the_locks_python_with_a_pin_file_in_conda_explicit_format():
    pin_lines = (ENVS / "lmmflow.linux-64.pin.txt").read_text().splitlines()
    packages = [line for line in pin_lines if line and not line.startswith("#")]
    assert packages[0] == "@EXPLICIT"
    url = re.compile(
        r"https://conda\.anaconda\.org/conda-forge/(linux-64|noarch)/([a-z0-9_.-]+)-([^-]+)-([^-]+)\.(conda|tar\.bz2)#[0-9a-f]{32}"
    )
    assert all(url.fullmatch(line) for line in packages[1:]), "pin lines must be conda package URLs with their MD5"
    versions = {match[2]: match[3] for match in map(url.fullmatch, packages[1:])}
    assert versions["python"].startswith(lock_python() + ".")
    assert "pip" in versions
    assert f"python ={lock_python()}" in (ENVS / "lmmflow.yaml").read_text()
