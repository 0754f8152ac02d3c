"""Fetching raw files: from a mirror, a local path or a URL, kept only when the SHA-256 matches."""

import hashlib

import pytest
from conftest import MIRROR

from lmmflow.data.acquire import AcquireError, fetch, raw_file_name, sha256_of

GPA_SHA256 = "2fe359f22de7ecb919ed7a848ca21b4c096baa322b94dc443bef98f7f54d2b18"
# Nothing listens on the discard port of localhost: a download that fails at once, offline.
UNREACHABLE = "http://127.0.0.1:9/data/gpa.RData"


@pytest.fixture
def raw_dir(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    return folder


@pytest.fixture
def corrupt_mirror(tmp_path):
    """A mirror whose gpa.RData has one byte changed."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    content = bytearray((MIRROR / "gpa.RData").read_bytes())
    content[100] ^= 0xFF
    (mirror / "gpa.RData").write_bytes(content)
    return mirror


def url_source(sha256=GPA_SHA256):
    return {"url": UNREACHABLE, "sha256": sha256}


def test_file_name_is_the_basename_of_url_or_path():
    assert raw_file_name({"url": "https://host/a/b/gpa%20x.RData"}) == "gpa x.RData"
    assert raw_file_name({"path": "some/dir/sleep.csv"}) == "sleep.csv"


def test_fetch_copies_a_verified_file_from_the_mirror(raw_dir):
    origin = fetch(raw_dir / "gpa.RData", url_source(), MIRROR)
    assert origin == str(MIRROR / "gpa.RData")
    assert (raw_dir / "gpa.RData").read_bytes() == (MIRROR / "gpa.RData").read_bytes()
    assert [p.name for p in raw_dir.iterdir()] == ["gpa.RData"]


def test_digest_mismatch_names_file_and_both_digests_and_keeps_nothing(raw_dir, corrupt_mirror):
    actual = sha256_of(corrupt_mirror / "gpa.RData")
    with pytest.raises(AcquireError) as error:
        fetch(raw_dir / "gpa.RData", url_source(), corrupt_mirror)
    message = str(error.value)
    assert "gpa.RData" in message and GPA_SHA256 in message and actual in message
    assert list(raw_dir.iterdir()) == []


def test_missing_mirror_file_offline_names_file_and_url(raw_dir, tmp_path):
    with pytest.raises(AcquireError) as error:
        fetch(raw_dir / "gpa.RData", url_source(), tmp_path)
    assert "gpa.RData" in str(error.value) and UNREACHABLE in str(error.value)
    assert list(raw_dir.iterdir()) == []


def test_no_mirror_offline_says_so(raw_dir):
    with pytest.raises(AcquireError, match="data_mirror is not set"):
        fetch(raw_dir / "gpa.RData", url_source(), None)


def test_local_path_source_is_copied_and_verified(raw_dir):
    source = {"path": str(MIRROR / "sleepstudy.csv")}
    fetch(raw_dir / "sleepstudy.csv", source)
    assert sha256_of(raw_dir / "sleepstudy.csv") == sha256_of(MIRROR / "sleepstudy.csv")
    with pytest.raises(AcquireError, match="mismatch"):
        fetch(raw_dir / "other.csv", {**source, "sha256": "0" * 64})
    assert not (raw_dir / "other.csv").exists()


def test_missing_local_path_is_named(raw_dir, tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(AcquireError, match="nowhere.csv"):
        fetch(raw_dir / "nowhere.csv", {"path": str(missing)})
    assert list(raw_dir.iterdir()) == []


def test_sha256_of_matches_hashlib(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"lmmflow")
    assert sha256_of(path) == hashlib.sha256(b"lmmflow").hexdigest()
