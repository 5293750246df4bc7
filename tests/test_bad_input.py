"""Learners' folders that used to give a silent wrong result or a crash naming no file:
high bit-depth images, split folders named otherwise, non-UTF-8 and very long names."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from image_folders import write_good
from PIL import Image

from tlutils import data, folders
from tlutils.course import assets


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))


def _ramp(height=24, width=32) -> np.ndarray:
    """0..1 left to right: a grey ramp whose 8-bit rendering is known."""
    return np.tile(np.linspace(0, 1, width), (height, 1))


@pytest.mark.parametrize("mode, make", [
    ("I;16", lambda r: Image.fromarray(np.round(r * 65535).astype(np.uint16))),
    ("I", lambda r: Image.fromarray(np.round(r * 65535).astype(np.int32))),
    ("F", lambda r: Image.fromarray(r.astype(np.float32))),
])
def test_high_bit_depth_greyscale_is_scaled_not_clipped(tmp_path, mode, make):
    im = make(_ramp())
    assert im.mode == mode
    path = tmp_path / f"ramp.{'png' if mode == 'I;16' else 'tif'}"
    im.save(path)
    x = data.decode_image(path, 24)
    expected = np.round(_ramp(24, 32)[:, 4:28] * 255)  # the centre square, 8-bit
    assert x.shape == (24, 24, 3) and (x[..., 0] == x[..., 2]).all()
    assert np.abs(x[..., 0].astype(float) - expected).max() <= 12, "a ramp, not black and white"
    assert 100 < x.mean() < 155
    notes = folders.check_image(path).notes
    assert any("scaled to 8 bits" in n for n in notes), notes


@pytest.mark.parametrize("values, reason", [
    (np.array([[0, 2**20]] * 16 * 8, np.int32).reshape(16, 16), "beyond 16 bits"),
    (np.full((16, 16), 300.0, np.float32), "not 0..1"),
])
def test_high_bit_depth_without_a_known_scale_is_refused_with_a_reason(tmp_path, values, reason):
    path = tmp_path / "odd.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(ValueError, match=reason):
        data.decode_image(path, 16)
    assert reason in folders.check_image(path).problem


@pytest.mark.parametrize("train, val", [
    ("training_set", "test_set"), ("Train", "Val"), ("TRAIN", "validation"), ("train", "test"),
])
def test_common_split_names_are_splits_not_classes(tmp_path, train, val):
    tmp_path = tmp_path / "photos"  # beside the cache
    for cls in ["red", "blue"]:
        write_good(tmp_path / train, cls, 3)
        write_good(tmp_path / val, cls, 2)
    tr, va = data.load_train_val(tmp_path, 32)
    assert tr.class_names == ["blue", "red"] and (len(tr), len(va)) == (6, 4)
    report = folders.validate_folder(tmp_path)
    assert report.class_names == ["blue", "red"] and report.layout == f"{train}/ and {val}/"
    assert report.totals() == {"blue": 5, "red": 5}


def test_kaggle_double_folders_are_followed(tmp_path):
    tmp_path = tmp_path / "photos"
    for cls in ["cats", "dogs"]:
        write_good(tmp_path / "training_set" / "training_set", cls, 3, seed=1)
        write_good(tmp_path / "test_set" / "test_set", cls, 2, seed=2)
    tr, va = data.load_train_val(tmp_path, 32)
    assert tr.class_names == ["cats", "dogs"] and (len(tr), len(va)) == (6, 4)


@pytest.mark.parametrize("folders_, words", [
    (["train", "val", "cats"], "mixes split folders"),
    (["train", "Training", "val"], "has two train folders"),
    (["test", "cats_extra"], "mixes split folders"),
    (["train", "dogs_old"], "mixes split folders"),
    (["Train"], r"needs a training folder and a validation \(or test\) folder"),
])
def test_ambiguous_split_layouts_are_refused_in_one_sentence(tmp_path, folders_, words):
    tmp_path = tmp_path / "photos"
    for name in folders_:
        for cls in ["red", "blue"]:
            write_good(tmp_path / name, cls, 2)
    with pytest.raises(folders.FolderError, match=words) as err:
        folders.validate_folder(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(assets.DataError, match=words):
        data.load_train_val(tmp_path, 32)


needs_bytes_names = pytest.mark.skipif(sys.platform in ("win32", "darwin"),
                                       reason="the file system must accept non-UTF-8 bytes")


@needs_bytes_names
def test_a_non_utf8_file_name_loads_and_is_cached(tmp_path):
    root = tmp_path / "photos"
    write_good(root, "red", 3)
    write_good(root, "blue", 3)
    latin1 = os.fsdecode(b"caf\xe9.jpg")  # what an old Windows zip unpacks to
    os.rename(root / "red" / "red_00.jpg", root / "red" / latin1)
    report = folders.validate_folder(root)
    assert report.n_images == 6
    first = data.load_image_folder(root, 32)
    again = data.load_image_folder(root, 32)  # from the decoded cache
    assert len(first) == len(again) == 6 and first.key == again.key
    assert any(p.endswith(latin1) for p in again.paths)


@needs_bytes_names
def test_a_non_utf8_class_name_is_refused_in_one_sentence(tmp_path):
    root = tmp_path / "photos"
    write_good(root, "blue", 3)
    write_good(root, os.fsdecode(b"r\xe9d"), 3)
    with pytest.raises(folders.FolderError, match=r"b'r\\xe9d' .* not UTF-8 .*rename it"):
        folders.validate_folder(root)


def test_very_long_folder_names_load(tmp_path):
    root = tmp_path / ("p" * 230)  # 230 bytes: any longer file name derived from it fails
    write_good(root, "r" * 220, 3)
    write_good(root, "blue", 3)
    assert folders.validate_folder(root).n_images == 6
    first, again = data.load_image_folder(root, 32), data.load_image_folder(root, 32)
    assert len(first) == len(again) == 6
    cached = list((Path(os.environ["KERAS_HOME"]) / "tlutils" / "decoded").glob("*.npz"))
    assert len(cached) == 1 and len(cached[0].name) < 100
