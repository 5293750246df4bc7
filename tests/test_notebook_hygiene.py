"""Every notebook is stored clean and follows the house style (shared/STYLE.md)."""

import json
import os
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
    # an assert, or claims.check(ledger), which asserts each claim's expected verdict
    check = [c for c in code if re.search(r"^(assert |claims\.check\()", c.source, re.M)]
    assert check, "a Check cell with an assert or claims.check"
    assert any("report.finish(" in c.source for c in code), "metrics recorded for the report"
    # each notebook runs in its own kernel, so each applies its profile's precision (gpu: mixed)
    assert any("profiles.configure(PROFILE)" in c.source for c in code), "no profiles.configure"


def test_environment_yml_installs_the_locked_set():
    env = (ROOT / "environment.yml").read_text()
    assert "-r requirements.lock" in env and "- -e ." in env
    py = re.search(r"python=(\d+)\.(\d+)", env).groups()
    low = re.search(r'requires-python = ">=(\d+)\.(\d+)"', PYPROJECT).groups()
    assert tuple(map(int, py)) >= tuple(map(int, low))


def test_ruff_clean():
    cmd = [sys.executable, "-m", "ruff", "check", "tlutils", "tests", "notebooks", "benchmarks"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# A Summary bullet that reports a result of the run: a measured number (0.87, 12 %, 3x), or
# words that point at the run or report an outcome.
RESULT = re.compile(r"\d+\.\d+|\d+ ?%|\d+x\b|\b(here|this run|above|measured|"
                    r"shows? (?:that|the|it|how)|showed|raised|recovered|beat|beats|outperform\w*|"
                    r"helped|hurt|improved|dropped|fell)\b", re.I)
ASSERTED = "(asserted in the Check"


def summary_cells(nb) -> list:
    """The cells from '## Summary' up to '## Exercises' (that cell cut before the heading)."""
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Summary"))
    cells = []
    for cell in nb.cells[start:]:
        head, sep, _ = cell.source.partition("## Exercises")
        cells.append(nbformat.v4.new_markdown_cell(head) if cell.cell_type == "markdown" else cell)
        if sep:
            break
    return cells


def result_bullets_without_source(nb) -> list[str]:
    """Summary bullets that state a result of the run but are neither printed nor asserted."""
    bullets = [line for c in summary_cells(nb) if c.cell_type == "markdown"
               for line in c.source.splitlines() if line.startswith("- ")]
    unbacked = [b for b in bullets if RESULT.search(re.sub(r"`[^`]*`", "", b))]
    return [b for b in unbacked if ASSERTED not in b]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_summary_results_are_printed_or_asserted(path):
    nb = nbformat.read(path, as_version=4)
    assert result_bullets_without_source(nb) == [], (
        f"Summary bullets that state a result must be printed from the metrics or end with "
        f"'{ASSERTED})' backed by an assert")
    printed = [c for c in summary_cells(nb) if c.cell_type == "code" and "print(" in c.source]
    assert printed, "the Summary prints this run's results from its numbers"


def test_the_summary_rule_catches_an_unbacked_result():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Summary\n\n- Fine-tuning beat feature extraction here.\n"
                                      "- Keep BatchNorm frozen (asserted in the Check).\n"
                                      "- Use `k=3` blocks as a start.\n\n## Exercises\n")])
    assert result_bullets_without_source(nb) == ["- Fine-tuning beat feature extraction here."]


TIMES = json.loads((ROOT / "data" / "notebook_times.json").read_text())["notebooks"]


def test_every_notebook_has_one_time_source():
    assert sorted(TIMES) == [p.stem for p in NOTEBOOKS]
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        t = TIMES[path.stem]
        nb = nbformat.read(path, as_version=4)
        overview = next(c.source for c in nb.cells if c.source.startswith("## Overview"))
        expected = (f"**Time**: about {t['smoke_s']} s (`smoke`, measured on the course's 2-core "
                    "CI machine; other machines differ by 1.5× or more), "
                    f"{t['cpu_min']} minutes (`cpu`), {t['gpu_min']} minutes (`gpu`)")
        assert expected in overview, f"{path.stem}: the Overview should say {expected!r}"
        row = f"({'notebooks/' + path.name}) |"
        line = next(x for x in readme.splitlines() if row in x)
        cells = f"| {t['smoke_s']} s | ~{t['cpu_min']} min | ~{t['gpu_min']} min |"
        assert line.endswith(cells), f"README row of {path.stem} should end with {cells!r}"


def machine_speed(recorded: dict[str, float], stated: dict[str, dict]) -> float:
    """How much slower this machine ran the notebooks than the stated times: the median of
    recorded / stated over the notebooks of this run (1.0 with fewer than three, where one
    slow notebook cannot be told from a slow machine)."""
    ratios = sorted(wall / stated[name]["smoke_s"] for name, wall in recorded.items())
    return ratios[len(ratios) // 2] if len(ratios) >= 3 else 1.0


def smoke_time_mismatches(recorded: dict[str, float], stated: dict[str, dict]) -> list[str]:
    """Notebooks whose recorded wall_s is more than a factor of two (plus 10 s) off the stated
    smoke time scaled by this machine's speed (machine_speed). Speed is a benchmark, not a
    test: a uniformly slower or faster machine passes, while a notebook whose stated time is
    off by a factor of three against the others still fails. With fewer than three notebooks
    the speed is unknown, so only a factor of four (plus 10 s) is caught."""
    speed = machine_speed(recorded, stated)
    factor = 2.0 if len(recorded) >= 3 else 4.0
    bad = []
    for name, wall in recorded.items():
        want = stated[name]["smoke_s"] * speed
        if not want / factor - 10 <= wall <= factor * want + 10:
            bad.append(f"{name}: stated {stated[name]['smoke_s']} s, recorded {wall:.0f} s "
                       f"on a machine {speed:.2f}x the stated times")
    return bad


def test_time_mismatch_rule():
    stated = {"a": {"smoke_s": 40}, "b": {"smoke_s": 10}, "c": {"smoke_s": 100},
              "d": {"smoke_s": 60}}
    assert smoke_time_mismatches({"a": 40.0, "b": 11.0, "c": 95.0, "d": 62.0}, stated) == []
    # a machine three times slower (or loaded): every notebook passes
    slow = {"a": 120.0, "b": 33.0, "c": 290.0, "d": 185.0}
    assert smoke_time_mismatches(slow, stated) == []
    # one stated time wrong by a factor of three, on the machine that measured it or a slow one
    for scale in (1.0, 3.0):
        wrong = {"a": 40.0 * scale, "b": 11.0 * scale, "c": 300.0 * scale, "d": 62.0 * scale}
        assert [m.split(":")[0] for m in smoke_time_mismatches(wrong, stated)] == ["c"]
        too_fast = {**wrong, "c": 30.0 * scale}
        assert [m.split(":")[0] for m in smoke_time_mismatches(too_fast, stated)] == ["c"]
    # one or two notebooks: a factor of four is still caught, three slower is not a failure
    assert smoke_time_mismatches({"a": 120.0}, stated) == []
    assert smoke_time_mismatches({"a": 175.0}, stated) != []


@pytest.mark.after_notebooks
def test_stated_smoke_times_match_this_run():
    """Runs after nbval has executed the notebooks (conftest orders it last); prints the
    machine's speed against the stated times, which docs/performance.md reports."""
    start = float(os.environ["TLU_TEST_START"])
    files = [p for p in (ROOT / "build" / "smoke" / "metrics").glob("*.json")
             if p.stat().st_mtime >= start]
    if not files:
        pytest.skip("no notebook ran in this test session")
    recorded = {json.loads(p.read_text())["notebook"]: json.loads(p.read_text())["wall_s"]
                for p in files}
    print(f"this machine ran {len(recorded)} notebook(s) at "
          f"{machine_speed(recorded, TIMES):.2f}x their stated smoke times")
    assert smoke_time_mismatches(recorded, TIMES) == [], "update data/notebook_times.json"


def notebooks_named_without_the_name() -> list[str]:
    """tlutils functions and classes whose docstring names a notebook (or a notebook that does
    not exist) that never mentions them."""
    import importlib
    import inspect
    import pkgutil

    texts = {p.stem: p.read_text() for p in NOTEBOOKS}
    bad = []
    for info in pkgutil.walk_packages([str(ROOT / "tlutils")], prefix="tlutils."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            for notebook in re.findall(r"\b\d\d_[a-z_]+[a-z]\b", inspect.getdoc(obj) or ""):
                if name not in texts.get(notebook, ""):
                    bad.append(f"{module.__name__}.{name} names {notebook}")
    return bad


def test_docstrings_name_notebooks_that_use_the_helper():
    assert notebooks_named_without_the_name() == []
