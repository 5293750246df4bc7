"""docs/workshop.md: the three-hour plan's run times are data/notebook_times.json's, the
notebooks and exercises it names exist, and the plan fits in three hours."""

import json
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (\d):(\d\d) \| ([^|]+?) \| ([^|]*?) \| ([^|]*?) \| (.*) \|$")


def plan_rows(text: str) -> list[tuple[int, str, str, str, str]]:
    """(start in minutes, notebook or slot, profile, run, what) for each row of the plan."""
    return [(60 * int(h) + int(m), name, profile, run, what)
            for h, m, name, profile, run, what in
            (ROW.match(line).groups() for line in text.splitlines() if ROW.match(line))]


def stated_run(notebook: str, profile: str) -> str:
    t = json.loads((ROOT / "data" / "notebook_times.json").read_text())["notebooks"][notebook]
    return f"{t['smoke_s']} s" if profile == "smoke" else f"{t[profile + '_min']} min"


def test_the_plan_takes_its_times_from_notebook_times():
    rows = plan_rows((ROOT / "docs" / "workshop.md").read_text())
    notebooks = [r for r in rows if r[2]]
    assert len(notebooks) >= 5, rows
    for _, name, profile, run, _ in notebooks:
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists(), name
        assert run == stated_run(name, profile), (name, profile, run)


def test_the_plan_fits_three_hours_and_leaves_each_slot_twice_its_run():
    rows = plan_rows((ROOT / "docs" / "workshop.md").read_text())
    starts = [r[0] for r in rows]
    assert starts == sorted(starts) and starts[-1] < 180
    for (start, name, profile, run, _), (end, *_) in zip(rows, rows[1:], strict=False):
        if profile:
            value, unit = run.split()
            minutes = float(value) / (60 if unit == "s" else 1)
            assert end - start >= 2 * minutes, (name, end - start, minutes)


def test_the_exercises_the_plan_names_exist():
    for _, name, _profile, _, what in plan_rows((ROOT / "docs" / "workshop.md").read_text()):
        for number in re.findall(r"exercise (\d+)", what):
            nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
            text = "\n".join(c.source for c in nb.cells if "## Exercises" in c.source)
            assert re.search(rf"^{number}\. ", text, re.M), (name, number)
