"""Does the running Python environment match the lock (`requirements/lock.txt`)?

    python -m lmmflow.pipeline.environment [LOCK]

prints "environment matches the lock", or every package whose installed version differs, and
exits 0 or 1. The report's provenance shows the same sentence (`describe(lock_status(lock)[1])`).
Installed versions are read with importlib.metadata (what `pip freeze` reads), without starting pip.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

# Where the lock lies in a checkout, relative to the repository root.
LOCK_FILE = Path("requirements") / "lock.txt"

# What a new virtual or conda environment brings before the lock is installed into it (the
# installer itself), and the project, installed from the checkout with --no-deps. Neither comes
# from the lock, so neither makes an environment differ from it.
NOT_LOCKED = frozenset({"pip", "setuptools", "wheel", "lmmflow"})

# `name==version` (extras allowed) at the start of a lock line; hashes, `# via` comments and
# options are not pins.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class Difference(NamedTuple):
    """A package whose installed version is not the locked one (None: not locked / not installed)."""

    package: str
    locked: str | None
    installed: str | None


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: `PyYAML`, `pyyaml` and `py_yaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock_path: str | Path) -> dict[str, str]:
    """The lock's pins, canonical name -> version.

    The lock is resolved for one Python and platform, so its lines carry no environment markers.
    """
    pins = {}
    for line in Path(lock_path).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical_name(match[1])] = match[2]
    return pins


def installed_versions() -> dict[str, str]:
    """Installed distributions, canonical name -> version, as Python imports them.

    A distribution found twice on sys.path (a package also installed outside the environment
    that Snakemake appends for a script) counts where it is found first, as for an import.
    """
    versions: dict[str, str] = {}
    for distribution in metadata.distributions():
        fields = distribution.metadata  # parsed once: `.version` would parse the file again
        if fields["Name"]:
            versions.setdefault(canonical_name(fields["Name"]), fields["Version"])
    return versions


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[Difference]:
    """Locked packages missing or at another version, then installed packages the lock lacks."""
    changed = [
        Difference(name, version, installed.get(name))
        for name, version in sorted(locked.items())
        if installed.get(name) != version
    ]
    unlocked = [
        Difference(name, None, version)
        for name, version in sorted(installed.items())
        if name not in locked and name not in NOT_LOCKED
    ]
    return changed + unlocked


def lock_status(lock_path: str | Path) -> tuple[bool, list[Difference]]:
    """Whether the running environment has exactly the lock's packages, and where it differs."""
    found = differences(read_lock(lock_path), installed_versions())
    return not found, found


def _describe_one(difference: Difference) -> str:
    locked = f"{difference.locked} locked" if difference.locked else "not locked"
    installed = f"{difference.installed} installed" if difference.installed else "not installed"
    return f"{difference.package} {locked}, {installed}"


def describe(found: list[Difference]) -> str:
    """The sentence for the report: a match, or each difference with both versions."""
    if not found:
        return "environment matches the lock"
    return "environment differs from the lock: " + "; ".join(map(_describe_one, found))


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    lock_path = Path(arguments[0]) if arguments else LOCK_FILE
    matches, found = lock_status(lock_path)
    print(f"{lock_path}: {describe(found)}")
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
