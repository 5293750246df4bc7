"""One vocabulary (docs/naming.md): no loop in a notebook rebinds a global a later cell reads.

A learner runs cells out of order and reads `d` three cells after `for d in ...` changed it:
a loop at a notebook's top level that rebinds a name an earlier cell set, where a later cell
reads that name before binding it again, is a name for two things.
"""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
          ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _code_cells(cells: list[dict]) -> list[ast.Module]:
    """Each code cell parsed, with `%magic` and `!shell` lines read as `pass`."""
    trees = []
    for cell in (c for c in cells if c["cell_type"] == "code"):
        lines = "".join(cell["source"]).splitlines()
        trees.append(ast.parse("\n".join(
            line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip()[:1] in "%!"
            and line.strip() else line for line in lines)))
    return trees


def _bound(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names a cell binds at the top level, those of them its for-loops bind)."""
    bound, looped = set(), set()

    def visit(node):
        if isinstance(node, SCOPES):
            bound.update([node.name] if hasattr(node, "name") else [])
            return
        if isinstance(node, ast.For | ast.AsyncFor):
            looped.update(_names(node.target))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return bound, looped  # a loop's target is a Name it stores: bound holds it too


def _read_first(tree: ast.Module) -> set[str]:
    """Globals a cell reads before it binds them itself (a nested scope's own names aside)."""
    first_read, first_store = {}, {}

    def visit(node, hidden):
        if isinstance(node, SCOPES):
            hidden = hidden | {n.arg for n in ast.walk(node) if isinstance(n, ast.arg)} | {
                n.id for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        if isinstance(node, ast.Name) and node.id not in hidden:
            first = first_read if isinstance(node.ctx, ast.Load) else first_store
            first.setdefault(node.id, (node.lineno, node.col_offset))
        for child in ast.iter_child_nodes(node):
            visit(child, hidden)

    visit(tree, frozenset())
    return {x for x, at in first_read.items() if at < first_store.get(x, (1 << 30, 0))}


def shadowed_globals(cells: list[dict]) -> list[str]:
    """'name: set in code cell i, rebound by a loop in j, read in k' for each case."""
    trees = _code_cells(cells)
    bound, reads = [_bound(t) for t in trees], [_read_first(t) for t in trees]
    found = []
    for j, (_, looped) in enumerate(bound):
        for name in sorted(looped):
            earlier = [i for i in range(j) if name in bound[i][0]]
            for k in range(j + 1, len(trees)) if earlier else []:
                if name in reads[k]:
                    found.append(f"{name}: set in code cell {earlier[-1] + 1}, rebound by a "
                                 f"loop in {j + 1}, read in {k + 1}")
                if name in reads[k] or name in bound[k][0]:
                    break
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_loop_rebinds_a_global_a_later_cell_reads(path):
    assert shadowed_globals(json.loads(path.read_text())["cells"]) == []


def test_the_rule_catches_a_loop_that_rebinds_a_global():
    def cells(*sources):
        return [{"cell_type": "code", "source": s} for s in sources]

    caught = cells('d = "pacs"', "%matplotlib inline\nfor d in range(3):\n    x = d", "print(d)")
    assert shadowed_globals(caught) == ["d: set in code cell 1, rebound by a loop in 2, read in 3"]
    assert shadowed_globals(cells('d = "pacs"', "for d in range(3):\n    x = d", "d = 1\nd")) == []
    assert shadowed_globals(cells("d = 1", "for d in range(3):\n    x = d",
                                  "print([d for d in 'ab'])", "def f(d):\n    return d")) == []
