"""Every notebook is stored clean and follows the house style (shared/STYLE.md)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = (ROOT / "pyproject.toml").read_text()
REPO = re.search(r'^github_repo = "([^"]+)"', PYPROJECT, re.M).group(1)
BRANCH = re.search(r'^branch = "([^"]+)"', PYPROJECT, re.M).group(1)


def test_there_are_notebooks():
    names = [nb.name for nb in NOTEBOOKS]
    assert "00_start_here.ipynb" in names and "01_feature_extraction.ipynb" in names
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_complete(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert all(not c.outputs and c.execution_count is None for c in code), "stored outputs"
    tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
    assert tags == ["parameters"], f"exactly one tag, 'parameters'; found {tags}"
    assert len(re.findall(r"^# ", markdown, re.M)) == 1, "one H1 title"
    assert nb.cells[0].source.startswith("# "), "the title comes first"
    for heading in ["## Overview", "## Setup", "## Check", "## Summary", "## Exercises"]:
        assert re.search(f"^{heading}", markdown, re.M), f"missing {heading}"
    badge = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{path.name}"
    assert badge in nb.cells[0].source, f"Colab badge should link {badge}"
    install = f'"tlutils @ git+https://github.com/{REPO}"'
    assert any('"google.colab" in sys.modules' in c.source and install in c.source for c in code)
    check = [c for c in code if re.search(r"^assert ", c.source, re.M)]
    assert check, "a Check cell with an assert"
    assert any("report.record(" in c.source for c in code), "metrics recorded for the report"
    # each notebook runs in its own kernel, so each applies its profile's precision (gpu: mixed)
    assert any("profiles.configure(PROFILE)" in c.source for c in code), "no profiles.configure"


def test_environment_yml_installs_the_pinned_project():
    env = (ROOT / "environment.yml").read_text()
    assert '-e ".[dev]"' in env
    py = re.search(r"python=(\d+)\.(\d+)", env).groups()
    low = re.search(r'requires-python = ">=(\d+)\.(\d+)"', PYPROJECT).groups()
    assert tuple(map(int, py)) >= tuple(map(int, low))
    deps = re.findall(r'^\s+"([A-Za-z0-9_.-]+)([=<>!~]=?)', PYPROJECT, re.M)
    assert deps and all(op == "==" for _, op in deps), "every dependency pinned with =="


def test_ruff_clean():
    cmd = [sys.executable, "-m", "ruff", "check", "tlutils", "tests", "notebooks", "benchmarks"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
