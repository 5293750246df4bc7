"""One idea per notebook (#41): at most 350 lesson code lines and 2,500 words of prose each.

Code lines are the non-blank lines of code cells that are not comments; words are the
whitespace-separated words of markdown cells. The notebooks #41 has not cut yet are listed in
NOT_CUT_YET with today's sizes as their ceilings: each may only shrink, and a listed notebook
that meets the limits must leave the list, so the list can only get shorter.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINES, MAX_WORDS = 350, 2500
# notebook -> (code lines, words) measured when it was listed; #41 still has to cut these
NOT_CUT_YET = {
    "03_full_fine_tuning": (669, 3341),
    "06_domain_shift": (783, 3838),
    "07_your_own_data": (547, 3564),
    "10_robust_fine_tuning": (885, 5040),
    "13_ship_it_small": (415, 2102),
}


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


def test_the_list_names_notebooks_that_exist():
    assert set(NOT_CUT_YET) <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_teaches_one_idea_at_the_models_size(path):
    code, words = size(nbformat.read(path, as_version=4))
    if path.stem in NOT_CUT_YET:
        most_code, most_words = NOT_CUT_YET[path.stem]
        assert code <= most_code and words <= most_words, (
            f"{path.stem} grew to {code} code lines and {words} words; #41 has it shrink")
        assert code > MAX_CODE_LINES or words > MAX_WORDS, (
            f"{path.stem} meets the limits now: take it off NOT_CUT_YET")
    else:
        assert code <= MAX_CODE_LINES, f"{path.stem}: {code} code lines, at most {MAX_CODE_LINES}"
        assert words <= MAX_WORDS, f"{path.stem}: {words} words of prose, at most {MAX_WORDS}"
