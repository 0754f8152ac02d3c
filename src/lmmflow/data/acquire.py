"""Fetch raw data files once, from a local mirror or their pinned URL, and verify their SHA-256."""

import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from lmmflow.outputs.io import atomic_path

DOWNLOAD_TIMEOUT_SECONDS = 60


class AcquireError(RuntimeError):
    """A raw file could not be fetched or is not the pinned file."""


def raw_file_name(source: dict) -> str:
    """The file name a source is stored under: the basename of its URL or local path."""
    if "path" in source:
        return Path(source["path"]).name
    return Path(urllib.parse.unquote(urllib.parse.urlparse(source["url"]).path)).name


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_origin(source: dict, mirror: str | os.PathLike | None) -> Path | None:
    """Where a local copy of the source is: its `path`, else the mirror's file of that name."""
    if "path" in source:
        return Path(source["path"])
    if mirror is not None:
        candidate = Path(mirror) / raw_file_name(source)
        if candidate.is_file():
            return candidate
    return None


def fetch(destination: str | os.PathLike, source: dict, mirror: str | os.PathLike | None = None) -> str:
    """Copy or download `source` to `destination`, keeping it only if its SHA-256 matches.

    Returns a description of where the file came from (for the log).
    """
    destination = Path(destination)
    with atomic_path(destination) as partial:
        origin = local_origin(source, mirror)
        if origin is None:
            _download(source["url"], partial, mirror)
            origin = source["url"]
        else:
            _copy(origin, partial)
        verify(partial, source.get("sha256"), destination.name, origin)
    return str(origin)


def verify(path: Path, expected: str | None, name: str, origin: object) -> None:
    """Raise unless the file's SHA-256 is `expected` (no pin, as for some local files: accept)."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise AcquireError(
            f"{name}: SHA-256 mismatch for the copy from {origin}: expected {expected}, "
            f"actual {actual}. The file was not kept; fix the source or the sha256 in the config."
        )


def _copy(origin: Path, target: Path) -> None:
    if not origin.is_file():
        raise AcquireError(f"{origin.name}: local source file {origin} does not exist")
    # copyfile, not copy2: the mirror may be read-only and its permissions must not follow.
    shutil.copyfile(origin, target)


def _download(url: str, target: Path, mirror: str | os.PathLike | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            with open(target, "wb") as out:
                shutil.copyfileobj(response, out)
    except OSError as error:  # urllib.error.URLError is an OSError
        where = f"not in data_mirror {mirror}" if mirror is not None else "data_mirror is not set"
        raise AcquireError(
            f"cannot fetch {raw_file_name({'url': url})}: {where}, and downloading {url} "
            f"failed ({error}). Set data_mirror to a directory holding the file, or go online."
        ) from error
