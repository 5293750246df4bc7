"""Notebook 07 through the runner on generated folders.

A folder with every kind of awkward file trains and exports, skipping exactly the bad files;
each folder that cannot be used stops the run right after the check with one sentence.
"""

import json
import os
from pathlib import Path

import keras
import nbformat
import pytest
from image_folders import BAD, HANDLED, make_folder, write_good
from nbclient import NotebookClient

from tlutils.course import run
from tlutils.course.cli import main

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "10_your_own_data.ipynb"
FAST = {"IMAGE_SIZE": 96, "BATCH_SIZE": 16, "FT_EPOCHS": 1, "VAL_FRACTION": 0.3}


@pytest.fixture
def build(tmp_path, monkeypatch) -> Path:
    """A private build folder, so the tests never overwrite build/smoke/."""
    monkeypatch.setenv("TLU_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build" / "smoke"


def outputs(path: Path) -> tuple[str, list[dict]]:
    """All stream text of an executed notebook, and its error outputs."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join(o.get("text", "") for c in cells for o in c.outputs)
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    return text, errors


PUBLISH = "(staging / name).rename(export_dir / name)"  # the cell that publishes export.new/


def execute_then_rerun(params: dict, rerun: str, times: int, out: Path) -> None:
    """Runs the notebook in one kernel, then the cell containing `rerun` `times` more times
    (a learner rerunning it alone); writes the executed notebook to `out`."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    run.inject_parameters(nb, params)
    again = next(c for c in nb.cells if rerun in c.source)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    env = {**os.environ, **run.kernel_environment(), "TLU_PROFILE": "smoke"}
    try:
        with client.setup_kernel(env=env):
            for i, cell in enumerate(nb.cells):
                client.execute_cell(cell, i)
            for _ in range(times):
                nb.cells.append(nbformat.v4.new_code_cell(again.source))
                client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    finally:
        nbformat.write(nb, out)


def test_awkward_folder_is_checked_trained_and_exported(tmp_path, build):
    """... and rerunning the publishing cell alone, twice, keeps export/ whole, and the
    learner's own files in export/ untouched."""
    folder = make_folder(tmp_path / "photos")
    (build / "export").mkdir(parents=True, exist_ok=True)
    (build / "export" / "notes.txt").write_text("mine")
    (build / "export" / "small.tflite").write_bytes(b"exercise 4")
    out = tmp_path / "executed.ipynb"
    execute_then_rerun({"DATA_DIR": str(folder), **FAST}, PUBLISH, 2, out)
    metrics = json.loads((build / "metrics" / "10_your_own_data.json").read_text())["metrics"]
    assert (metrics["n_classes"], metrics["n_images"], metrics["n_skipped"]) == (2, 22, 4)
    assert {s["file"]: s["reason"] for s in metrics["skipped"]} == BAD
    assert metrics["n_converted"] == len(HANDLED)
    assert metrics["n_train"] + metrics["n_val"] == 22
    assert metrics["val_acc"] > metrics["majority_acc"]
    assert metrics["folder"] == "photos"
    for key in ["keras_mb", "savedmodel_mb", "tflite_mb"]:
        assert metrics[key] > 0, key
    text, errors = outputs(out)
    assert not errors
    for path, reason in BAD.items():
        assert f"{path}: {reason}" in text
    for path in HANDLED:
        assert path in text
    assert "the loader skipped 4 file(s), the same as the check" in text
    assert "Check passed." in text
    assert {"model.keras", "labels.txt", "savedmodel", "model.tflite"} <= {
        p.name for p in (build / "export").iterdir()}
    assert (build / "export" / "labels.txt").read_text() == "blue\nred\n"
    assert (build / "export" / "notes.txt").read_text() == "mine"
    assert (build / "export" / "small.tflite").read_bytes() == b"exercise 4"
    reloaded = keras.models.load_model(build / "export" / "model.keras", safe_mode=True)
    assert reloaded.output_shape == (None, 2)


def one_class(folder: Path) -> str:
    write_good(folder, "red", 3)
    return f"{folder} needs at least two class sub-folders with images (found only 'red');"


def class_without_usable_image(folder: Path) -> str:
    write_good(folder, "red", 3)
    (folder / "blue").mkdir()
    (folder / "blue" / "empty.jpg").write_bytes(b"")
    (folder / "blue" / "notes.jpg").write_text("not an image")
    return ("Class 'blue' has no usable image: all 2 of its files were skipped (blue/empty.jpg: "
            "empty file (0 bytes); blue/notes.jpg: not an image Pillow can read);")


def too_few_to_validate(folder: Path) -> str:
    write_good(folder, "red", 3)
    write_good(folder, "blue", 3, seed=50)
    return "2 validation image(s) for 2 classes: too few to tell a model from a guess."


@pytest.mark.parametrize("make", [one_class, class_without_usable_image, too_few_to_validate])
def test_unusable_folder_stops_with_one_sentence(tmp_path, build, make):
    folder = tmp_path / "photos"
    folder.mkdir()
    expected = make(folder)
    out, error = run.execute(NOTEBOOK, "smoke", {"DATA_DIR": str(folder)})
    assert error.startswith(f"FolderError: {expected}"), error
    text, errors = outputs(out)
    assert len(errors) == 1 and errors[0]["traceback"] == [error], "one line, no traceback"
    assert errors[0]["ename"] == "FolderError"
    assert "Check passed." not in text
    assert not (build / "metrics" / "10_your_own_data.json").exists()


def test_runner_refuses_a_missing_folder_with_one_line(tmp_path, build, capsys):
    missing = tmp_path / "no" / "such" / "folder"
    assert main(["run", str(NOTEBOOK), "--profile", "smoke", "-p", f"DATA_DIR={missing}"]) == 1
    fail = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1 and "10_your_own_data" in fail[0]
    assert (f"FolderError: {missing} does not exist; set DATA_DIR to a folder with one "
            "sub-folder per class.") in fail[0]


def test_a_run_that_fails_its_check_keeps_the_previous_export(tmp_path, build):
    """Two classes of the very same images: no model can beat the majority class, so the
    Check fails after the export was written, and the last good export must survive."""
    folder = tmp_path / "twins"
    for cls in ["left", "right"]:
        write_good(folder, cls, 8, seed=0)  # identical pixels in both classes
    write_good(folder, "left", 4, seed=100)  # "left" is the majority class
    previous = build / "export"
    previous.mkdir(parents=True)
    (previous / "labels.txt").write_text("the last good model\n")
    out, error = run.execute(NOTEBOOK, "smoke", {"DATA_DIR": str(folder), **FAST})
    assert error is not None and "should beat always answering the largest class" in error
    assert (previous / "labels.txt").read_text() == "the last good model\n"
    assert (build / "export.new" / "model.keras").exists(), "the failed attempt, to inspect"
