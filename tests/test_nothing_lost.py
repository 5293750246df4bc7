"""Nothing lost (#40): offline-cache never trusts a damaged shared copy, and the workshop kit
never writes over files it did not create."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
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


# The workshop kit (tlutils.course.kit)


def _fake_parts(kit_dir, *args):
    """Stands in for the slow part of a build (pip, the cache): two files and a README."""
    (kit_dir / "wheels").mkdir()
    (kit_dir / "wheels" / "a.whl").write_text("wheel")
    (kit_dir / "README.md").write_text("room")
    return []


def test_the_kit_refuses_a_folder_with_files_it_did_not_write(tmp_path, monkeypatch):
    from tlutils.course import kit

    monkeypatch.setattr(kit, "_write_kit", _fake_parts)
    dest = tmp_path / "kit"
    dest.mkdir()
    (dest / "README.md").write_text("my notes")
    with pytest.raises(assets.DataError, match=r"holds files the kit did not write \(README.md\)"):
        kit.build_kit(dest, ["smoke"])
    assert (dest / "README.md").read_text() == "my notes"
    assert [p.name for p in tmp_path.iterdir()] == ["kit"], "no temporary folder left"


def test_a_kit_is_rebuilt_in_place_but_a_file_added_to_it_stops_the_rebuild(tmp_path,
                                                                             monkeypatch):
    from tlutils.course import kit

    monkeypatch.setattr(kit, "_write_kit", _fake_parts)
    dest = tmp_path / "kit"
    kit.build_kit(dest, ["smoke"])
    (dest / "wheels" / "a.whl").write_text("damaged")
    kit.build_kit(dest, ["smoke"])  # a rerun replaces what it wrote, damaged files included
    assert (dest / "wheels" / "a.whl").read_text() == "wheel"
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(assets.DataError, match=r"notes.txt"):
        kit.build_kit(dest, ["smoke"])
    assert (dest / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["checkout", "cache inside", "inside cache", "a file"])
def test_the_kit_refuses_the_checkout_its_cache_and_a_file(tmp_path, monkeypatch, where):
    from tlutils.course import kit

    lock = (kit.ROOT / "requirements.lock").read_text()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kit" / "cache"))
    dest = {"checkout": kit.ROOT, "cache inside": tmp_path / "kit",
            "inside cache": tmp_path / "kit" / "cache" / "sub", "a file": tmp_path / "f"}[where]
    if where == "a file":
        dest.write_text("x")
    with pytest.raises(assets.DataError, match="overlaps|is a file"):
        kit.build_kit(dest, ["smoke"])
    assert (kit.ROOT / "requirements.lock").read_text() == lock


def test_a_full_disk_leaves_the_kit_folder_as_it_was(tmp_path, monkeypatch):
    import errno

    from tlutils.course import kit

    def full(kit_dir, *args):
        (kit_dir / "half.whl").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(kit_dir / "half.whl"))

    dest = tmp_path / "kit"
    monkeypatch.setattr(kit, "_write_kit", _fake_parts)
    kit.build_kit(dest, ["smoke"])
    monkeypatch.setattr(kit, "_write_kit", full)
    with pytest.raises(assets.DataError, match="No space left on device.*as it was before"):
        kit.build_kit(dest, ["smoke"])
    assert (dest / "README.md").read_text() == "room" and not (dest / "half.whl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["kit"], "no temporary folder left"


def test_pip_said_names_the_cause_not_the_hint():
    from tlutils.course import kit

    stderr = ("ERROR: Could not find a version that satisfies the requirement setuptools>=77\n"
              "ERROR: No matching distribution found for setuptools>=77\n"
              "ERROR: Failed to build 'tlutils' when getting requirements to build wheel\n"
              "hint: See above for details.\n")
    assert "setuptools>=77" in kit._pip_said(stderr)
    assert kit._pip_said("") == "no message"


def test_an_unknown_platform_tag_is_named_once(tmp_path):
    from tlutils.course import kit

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\nidna==3.10\n")
    missing, lacking = kit.download_wheels(requirements, tmp_path / "wheels", ["nonsense_tag"],
                                           ["--no-index", "--find-links", str(tmp_path)])
    assert lacking == {"six==1.17.0", "idna==3.10"}
    assert missing[0].startswith("every wheel for platform 'nonsense_tag': pip found none")
    assert not any(m.startswith("six==") for m in missing)


def test_an_empty_parameter_value_is_refused_in_one_sentence():
    from tlutils.course import run

    with pytest.raises(ValueError, match=r"-p DATA_DIR= has no value \(an unset shell variable"):
        run.parse_params(["DATA_DIR="])
    assert run.parse_params(["DATA_DIR=/x", "EPOCHS=2"]) == {"DATA_DIR": "/x", "EPOCHS": 2}


# Calibration and Grad-CAM: bad input gets one sentence, not a number


@pytest.mark.parametrize("probs, y, message", [
    ([[0.9, 0.6]], [0], "not a probability vector"),
    ([[float("nan"), 1.0]], [0], "not a probability vector"),
    ([[0.5, 0.5]], [-1], "class numbers 0..1"),
    ([[0.5, 0.5]], [5], "class numbers 0..1"),
    (np.zeros((0, 2)), [], r"shape \(images, classes\)"),
])
def test_calibration_refuses_what_is_not_probabilities(probs, y, message):
    from tlutils import calibration

    for fn in (calibration.ece, calibration.nll):
        with pytest.raises(ValueError, match=message):
            fn(np.asarray(probs), np.asarray(y, dtype=int))


def test_a_temperature_needs_a_few_images():
    from tlutils import calibration

    with pytest.raises(ValueError, match="at least 3 labelled images; got 2"):
        calibration.fit_temperature(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]))


def test_gradcam_refuses_bad_classes_and_nan_images():
    from tlutils import backbones, gradcam

    model = backbones.build_classifier("mobilenet_025", 3, 32, weights=None)
    x = np.zeros((2, 32, 32, 3), "float32")
    with pytest.raises(ValueError, match="Classes must be 0..2; got -1"):
        gradcam.gradcam(model, x, [0, -1])
    with pytest.raises(ValueError, match="one class number per image"):
        gradcam.gradcam(model, x, [1])
    x[1] = np.nan
    with pytest.raises(ValueError, match="Image 1 has NaN"):
        gradcam.gradcam(model, x, [0, 1])


def test_a_cache_folder_that_cannot_be_created_is_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "file" / "cache"))
    with pytest.raises(assets.DataError, match="cannot be created .*point KERAS_HOME"):
        assets.cache_root()
