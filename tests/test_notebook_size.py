"""One idea per notebook (#41): at most 350 lesson code lines and 2,500 words of prose each.

Code lines are the non-blank lines of code cells that are not comments; words are the
whitespace-separated words of markdown cells.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINES, MAX_WORDS = 350, 2500


def size(nb) -> tuple[int, int]:
    """(code lines, prose words) of a notebook, counted as the module docstring says."""
    code = sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))
    words = sum(len(re.findall(r"\S+", c.source)) for c in nb.cells if c.cell_type == "markdown")
    return code, words


def test_size_counts_code_and_prose():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# a comment\nx = 1\n\ny = x  # counted\n"),
        nbformat.v4.new_markdown_cell("## Two words\n\nand three more"),
    ])
    assert size(nb) == (2, 6)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_teaches_one_idea_at_the_models_size(path):
    code, words = size(nbformat.read(path, as_version=4))
    assert code <= MAX_CODE_LINES, f"{path.stem}: {code} code lines, at most {MAX_CODE_LINES}"
    assert words <= MAX_WORDS, f"{path.stem}: {words} words of prose, at most {MAX_WORDS}"
