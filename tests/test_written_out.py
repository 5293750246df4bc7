"""A method is written out where it is taught, and the helper later notebooks import is the
same code.

A notebook cell that begins `# written out from tlutils.<module>` defines functions or
classes of that module, as a learner reads and changes them; each must match the helper of
the same name, statement by statement. The notebook calls other helpers through their module
(`fitting.restore`) where the module itself uses the bare name (`restore`), so references to
tlutils modules, and `keras.ops` against `ops`, are compared without the module. No notebook
shows a method by printing its source (`inspect.getsource`): a stored or rendered notebook
would show no code.
"""

import ast
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MARK = re.compile(r"# written out from (tlutils\.\w+)\b")
MODULES = {p.stem for p in (ROOT / "tlutils").glob("*.py")} | {"assets"}


class _Unqualified(ast.NodeTransformer):
    """`fitting.restore` -> `restore`, `keras.ops.sum` -> `ops.sum`."""

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in MODULES:
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        if (isinstance(node.value, ast.Attribute) and node.value.attr == "ops"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "keras"):
            return ast.copy_location(
                ast.Attribute(value=ast.Name(id="ops", ctx=ast.Load()), attr=node.attr,
                              ctx=node.ctx), node)
        return node


def _shape(node: ast.AST) -> str:
    return ast.dump(_Unqualified().visit(node), include_attributes=False)


def written_out() -> list[tuple[str, int, str, ast.AST]]:
    """(notebook, cell number, module, definition) for every written-out definition."""
    found = []
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for number, cell in enumerate(cells, 1):
            source = "".join(cell["source"])
            mark = MARK.match(source)
            if cell["cell_type"] == "code" and mark:
                for node in ast.parse(source).body:
                    if isinstance(node, ast.FunctionDef | ast.ClassDef):
                        found.append((path.stem, number, mark.group(1), node))
    return found


DEFINITIONS = written_out()


def test_methods_are_written_out_not_printed():
    printed = [f"{p.stem}: {m}" for p in NOTEBOOKS
               for m in re.findall(r"inspect\.getsource\([^)]*\)", p.read_text())]
    assert printed == [], "write the method out (see this module's docstring)"
    assert len(DEFINITIONS) >= 16, "the methods 00-09 teach are written out"


@pytest.mark.parametrize("notebook, cell, module, node", DEFINITIONS,
                         ids=[f"{n}-{d.name}" for n, _, _, d in DEFINITIONS])
def test_the_written_out_method_is_the_helper(notebook, cell, module, node):
    helper = getattr(importlib.import_module(module), node.name, None)
    assert helper is not None, f"{notebook} cell {cell}: {module} has no {node.name}"
    (theirs,) = ast.parse(textwrap.dedent(inspect.getsource(helper))).body
    assert _shape(node) == _shape(theirs), (
        f"{notebook} cell {cell} writes out {module}.{node.name}, and the two differ: change "
        "both, so that later notebooks import what this one teaches")


def test_a_changed_copy_is_caught():
    (stem, cell, module, node) = next(d for d in DEFINITIONS if d[3].name == "stream")
    changed = ast.parse(ast.unparse(node).replace("rng.permutation(idx)", "idx")).body[0]
    (theirs,) = ast.parse(textwrap.dedent(inspect.getsource(
        importlib.import_module(module).stream))).body
    assert _shape(changed) != _shape(theirs) and _shape(node) == _shape(theirs)
