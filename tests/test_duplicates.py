"""Byte-identical copies in a learner's folder: reported by the folder check, and kept on one
side of the train/validation split (10_your_own_data)."""

import shutil

import numpy as np
import pytest
from image_folders import write_good

from tlutils import data, folders


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))


def test_copies_within_and_across_classes_are_reported(tmp_path):
    root = tmp_path / "photos"
    red = write_good(root, "red", 4)
    write_good(root, "blue", 4)
    shutil.copy(red[0], root / "red" / "again.jpg")  # downloaded twice
    shutil.copy(red[1], root / "blue" / "which.jpg")  # the same photo in two classes
    report = folders.validate_folder(root)
    assert report.duplicates == [["blue/which.jpg", "red/red_01.jpg"],
                                 ["red/again.jpg", "red/red_00.jpg"]]
    assert report.conflicts == [["blue/which.jpg", "red/red_01.jpg"]]
    text = report.summary()
    assert "duplicates: 2 (2 files are byte-identical copies of another, in 2 groups; 1 groups " \
           "span two classes)" in text
    assert "  red/again.jpg = red/red_00.jpg" in text


def test_a_copy_across_train_and_val_is_a_warning(tmp_path):
    root = tmp_path / "photos"
    for split in ["train", "val"]:
        write_good(root / split, "red", 2, seed=0 if split == "train" else 10)
        write_good(root / split, "blue", 2, seed=0 if split == "train" else 10)
    shutil.copy(root / "train" / "red" / "red_00.jpg", root / "val" / "red" / "leak.jpg")
    report = folders.validate_folder(root)
    assert any("1 images in val/ have a byte-identical copy in train/" in w
               for w in report.warnings)


def test_the_split_keeps_every_copy_on_one_side(tmp_path):
    root = tmp_path / "photos"
    for cls in ["red", "blue"]:
        for path in write_good(root, cls, 10):
            for k in range(4):  # five files per picture, as burst shots or re-downloads give
                shutil.copy(path, path.with_name(f"{path.stem}_copy{k}.jpg"))
    for _ in range(2):  # decoded, then from the decoded cache
        train, val = data.load_train_val(root, 32, val_fraction=0.2, seed=0)
        assert not set(train.groups.tolist()) & set(val.groups.tolist()), "a copy on both sides"
        assert len(train) + len(val) == 100 and 15 <= len(val) <= 25
    loose_train, loose_val = data.stratified_split(np.repeat([0, 1], 50), 0.2, 0)
    groups = data.load_image_folder(root, 32).groups
    assert set(groups[loose_train]) & set(groups[loose_val]), "without groups, copies leak"


def test_without_copies_the_split_is_the_plain_stratified_one():
    y = np.random.default_rng(1).integers(0, 3, 200)
    for seed in range(3):
        plain = data.stratified_split(y, 0.2, seed)
        grouped = data.stratified_split(y, 0.2, seed, groups=np.arange(200) * 7)
        assert all(np.array_equal(a, b) for a, b in zip(plain, grouped, strict=True))
