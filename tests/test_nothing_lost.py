"""Nothing lost (#40): offline-cache never trusts a damaged shared copy, and the workshop kit
never writes over files it did not create."""

import hashlib
import shutil
from pathlib import Path

import pytest

from tlutils.course import assets, offline

USPS = assets.FILES["usps.h5"]


def _shared(tmp_path: Path, payload: bytes, sums: bool = True) -> Path:
    """A shared folder holding usps.h5 (payload) and, optionally, a SHA256SUMS of the good
    file."""
    shared = tmp_path / "shared"
    (shared / USPS.shared_copy).parent.mkdir(parents=True)
    (shared / "MANIFEST.md").write_text("test")
    (shared / USPS.shared_copy).write_bytes(payload)
    if sums:
        good = hashlib.sha256(b"good").hexdigest()
        (shared / "SHA256SUMS").write_text(f"{good}  {USPS.shared_copy}\n")
    return shared


@pytest.fixture
def good_registry(monkeypatch):
    """The registry's checksum for usps.h5 is that of the bytes b"good"."""
    import dataclasses

    spec = dataclasses.replace(USPS, sha256=hashlib.sha256(b"good").hexdigest())
    monkeypatch.setitem(assets.FILES, "usps.h5", spec)


@pytest.mark.parametrize("sums", [True, False], ids=["SHA256SUMS", "registry only"])
def test_a_damaged_shared_copy_never_replaces_a_good_cached_one(tmp_path, monkeypatch,
                                                                good_registry, sums):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    root, repaired, skipped = offline.build_offline_cache(_shared(tmp_path, b"good"))
    cached = root / "datasets" / USPS.folder / USPS.name
    assert cached.read_bytes() == b"good" and skipped == []
    shutil.rmtree(tmp_path / "shared")
    damaged = _shared(tmp_path, b"gooe", sums)  # one bit flipped
    root, repaired, skipped = offline.build_offline_cache(damaged)
    assert cached.read_bytes() == b"good", "the good cached copy is kept"
    assert repaired == [] and len(skipped) == 1
    assert str(damaged / USPS.shared_copy) in skipped[0] and "cached copy is kept" in skipped[0]


def test_a_damaged_shared_copy_is_not_copied_into_an_empty_cache(tmp_path, monkeypatch,
                                                                 good_registry):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    root, _, skipped = offline.build_offline_cache(_shared(tmp_path, b"bad"))
    assert not (root / "datasets" / USPS.folder / USPS.name).exists()
    assert "does not match SHA256SUMS" in skipped[0]


def test_a_folder_with_none_of_the_course_files_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    (tmp_path / "MANIFEST.md").write_text("not ours")
    with pytest.raises(assets.DataError, match="holds none of the course's files"):
        offline.build_offline_cache(tmp_path)
