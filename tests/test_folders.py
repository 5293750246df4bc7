"""Unit tests for tlutils.folders: the report, the skipped and converted files, the refusals."""

from pathlib import Path

import numpy as np
import pytest
from image_folders import BAD, HANDLED, make_folder, write_good
from PIL import Image

from tlutils import data, folders
from tlutils.course import assets


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> Path:
    """red/ and blue/ with 8 good images each, plus every bad and every awkward file."""
    return make_folder(tmp_path_factory.mktemp("awkward"))


@pytest.fixture(scope="module")
def awkward_report(awkward) -> folders.FolderReport:
    return folders.validate_folder(awkward)


def one_sentence(message: str) -> bool:
    """One line, ending with a full stop, with no sentence break inside."""
    return "\n" not in message and message.endswith(".") and ". " not in message[:-1]


def test_report_counts_classes_and_images(awkward_report):
    r = awkward_report
    assert r.layout == "one folder"
    assert r.class_names == ["blue", "red"]
    assert r.counts == {"blue": {"images": 8 + 3}, "red": {"images": 8 + 3}}
    assert r.n_images == 22 and r.n_skipped == 4
    assert r.imbalance == 1.0
    assert r.rows() == [{"class": "blue", "images": 11}, {"class": "red", "images": 11}]
    assert r.sizes.shape == (22, 2) and tuple(r.sizes.max(axis=0)) == (6000, 4000)
    assert r.modes == {"RGB": 18, "L": 1, "CMYK": 1, "RGBA": 1, "P": 1}


def test_each_bad_file_is_skipped_with_its_reason(awkward_report):
    assert dict(awkward_report.skipped) == BAD


def test_each_awkward_file_is_kept_and_its_conversion_noted(awkward_report):
    converted = dict(awkward_report.converted)
    assert set(converted) == set(HANDLED)
    for path, word in HANDLED.items():
        assert word in converted[path], (path, converted[path])


def test_summary_lists_counts_skipped_and_converted(awkward_report):
    text = awkward_report.summary()
    assert "2 classes, 22 usable images, 4 skipped" in text
    assert "red/truncated.jpg: truncated or corrupt image data" in text
    assert "red/rotated.jpg: EXIF orientation 6 applied" in text
    assert "largest 6000x4000" in text
    short = awkward_report.summary(max_listed=1)
    assert "... and 3 more" in short and "... and 5 more" in short


def test_validator_and_loader_skip_the_same_files(awkward, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # a private decode cache
    train, val = data.load_train_val(awkward, 32, seed=0)
    loader = {Path(p).relative_to(awkward).as_posix() for p, _ in train.skipped + val.skipped}
    assert loader == set(BAD)
    assert len(train) + len(val) == folders.validate_folder(awkward).n_images


def test_exif_rotated_photo_is_decoded_upright(awkward):
    x = data.decode_image(awkward / "red" / "rotated.jpg", 48).astype(float)
    # red class: horizontal stripes, so brightness varies down the rows, not along them
    assert x[..., 0].mean(axis=1).std() > 3 * x[..., 0].mean(axis=0).std()


def test_train_val_layout_counts_each_split_and_warns(tmp_path):
    for split, n in [("train", 4), ("val", 2)]:
        for cls in ["red", "blue"]:
            write_good(tmp_path / split, cls, n)
    write_good(tmp_path / "val", "green", 1)  # a class train/ does not have
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / "test").mkdir()
    r = folders.validate_folder(tmp_path)
    assert r.layout == "train/ and val/"
    assert r.rows()[0] == {"class": "blue", "train": 4, "val": 2, "total": 6}
    assert r.n_images == 12
    assert r.ignored == ["README.txt", "test/"]
    assert any("val/green/" in w for w in r.warnings)


def test_class_missing_from_val_is_a_warning(tmp_path):
    for cls in ["red", "blue"]:
        write_good(tmp_path / "train", cls, 3)
    write_good(tmp_path / "val", "red", 2, seed=10)  # other pictures than train's
    r = folders.validate_folder(tmp_path)
    assert r.counts["blue"] == {"train": 3, "val": 0}
    assert r.warnings == ["class 'blue' has no usable image in val/, so validation cannot "
                          "measure it"]


def test_imbalance_is_largest_over_smallest(tmp_path):
    write_good(tmp_path, "red", 9)
    write_good(tmp_path, "blue", 3)
    assert folders.validate_folder(tmp_path).imbalance == 3.0


def refusal(path) -> str:
    with pytest.raises(folders.FolderError) as info:
        folders.validate_folder(path)
    message = str(info.value)
    assert one_sentence(message), message
    return message


def test_refuses_a_path_that_does_not_exist(tmp_path):
    assert refusal(tmp_path / "nope") == (
        f"{tmp_path / 'nope'} does not exist; set DATA_DIR to a folder with one sub-folder "
        "per class.")


def test_refuses_a_file(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    assert "is a file, not a folder" in refusal(tmp_path / "photo.jpg")


def test_refuses_images_without_class_folders(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.jpg")
    message = refusal(tmp_path)
    assert message.startswith(f"{tmp_path} needs at least two class sub-folders with images;")


def test_refuses_a_single_class(tmp_path):
    write_good(tmp_path, "red", 3)
    assert "needs at least two class sub-folders with images (found only 'red')" in refusal(
        tmp_path)


def test_refuses_a_class_whose_files_are_all_unusable(tmp_path):
    write_good(tmp_path, "red", 3)
    (tmp_path / "blue").mkdir()
    (tmp_path / "blue" / "empty.jpg").write_bytes(b"")
    (tmp_path / "blue" / "notes.jpg").write_text("not an image")
    message = refusal(tmp_path)
    assert message.startswith("Class 'blue' has no usable image: all 2 of its files were skipped "
                              "(blue/empty.jpg: empty file (0 bytes); blue/notes.jpg: not an "
                              "image Pillow can read); add images to ")


def test_refuses_an_empty_class_folder(tmp_path):
    write_good(tmp_path, "red", 3)
    (tmp_path / "blue").mkdir()
    assert "Class 'blue' has no usable image: its folder is empty" in refusal(tmp_path)


def test_refuses_a_class_with_one_image_when_it_must_split(tmp_path):
    write_good(tmp_path, "red", 3)
    write_good(tmp_path, "blue", 1)
    assert refusal(tmp_path).startswith("Class 'blue' has only one usable image;")


def test_refuses_train_without_val(tmp_path):
    for cls in ["red", "blue"]:
        write_good(tmp_path / "train", cls, 2)
    assert "has train/ but needs a training folder and a validation (or test) folder" in (
        refusal(tmp_path))


def test_refuses_a_train_class_without_usable_image(tmp_path):
    write_good(tmp_path / "train", "red", 2)
    (tmp_path / "train" / "blue").mkdir()
    write_good(tmp_path / "val", "red", 1)
    assert "Class 'blue' has no usable image in train/" in refusal(tmp_path)


def test_refuses_an_empty_val(tmp_path):
    for cls in ["red", "blue"]:
        write_good(tmp_path / "train", cls, 2)
    (tmp_path / "val").mkdir()
    assert refusal(tmp_path).endswith("has no usable image; put some images of each class in "
                                      "val/<class>/.")


def test_refusal_renders_as_one_line_in_ipython():
    err = folders.FolderError("The folder is empty; add images.")
    assert err._render_traceback_() == ["FolderError: The folder is empty; add images."]
    assert isinstance(err, assets.DataError)  # the command line prints DataError without traceback


def test_check_image_reports_size_and_mode(tmp_path):
    Image.fromarray(np.zeros((30, 50), np.uint8)).save(tmp_path / "g.png")
    check = folders.check_image(tmp_path / "g.png")
    assert (check.size, check.mode, check.problem) == ((50, 30), "L", None)
    assert check.notes == ["greyscale (L) to RGB"]
