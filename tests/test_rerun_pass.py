"""The rerun pass of conftest.py (NotebookCells) fails a notebook whose cells break, or lose a
file, when a learner runs them again."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = "tests/test_exercises.py::test_the_snippet_rule_catches_a_missing_name"  # loads conftest


def run_pass(tmp_path: Path, cells: list[str]) -> str:
    """pytest (nbval) on a notebook of `cells`, from the repository root; its output."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "learner.ipynb"
    nbformat.write(nb, path)
    env = {**os.environ, "TLU_BUILD_DIR": str(tmp_path / "build"), "TLU_PROFILE": "smoke"}
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
           ANCHOR, str(path)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True).stdout


BUILD = "import os\nfrom pathlib import Path\nd = Path(os.environ['TLU_BUILD_DIR']) / 'smoke'"


@pytest.mark.parametrize("cells, expected", [
    (["x = 1", "del x"],
     "the cell 'del x' raised NameError: name 'x' is not defined"),
    ([BUILD, "d.mkdir(parents=True, exist_ok=True)\np = d / 'keep.txt'\n"
             "p.unlink() if p.exists() else p.write_text('x')"],
     "quick cells lost 1 file(s): ['keep.txt']"),
], ids=["fails", "loses a file"])
def test_rerun_pass_catches(tmp_path, cells, expected):
    out = run_pass(tmp_path, cells)
    assert expected in out and "1 failed, 2 passed" in out, out


def test_rerun_pass_accepts_cells_that_can_run_again(tmp_path):
    out = run_pass(tmp_path, [BUILD, "d.mkdir(parents=True, exist_ok=True)",
                              "(d / 'keep.txt').write_text('x')", "x = 1\ndel x"])
    assert "5 passed" in out, out
