"""Exercises and solutions use only names that exist (issue: notebooks a learner can poke at).

A snippet is a fenced ```python block or an inline `code` span that parses as Python, in the
markdown from a notebook's "## Exercises" heading to its end (a bare name, a file name or a
module named in prose is not a snippet). Every name it reads must be
defined by the notebook's code, by the snippet itself, or be a builtin; and `module.name`,
for a tlutils module the notebook imports, must exist in that module.
"""

import ast
import builtins
import importlib
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FENCE = re.compile(r"```python\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
FILE_NAME = re.compile(r"[\w./-]+\.[a-z0-9]+")


def _names_a_thing(snippet: str, tree: ast.AST) -> bool:
    """A bare name (`fit`, `SEVERITIES`) or an importable module (`tlutils.corruptions`):
    prose naming something, not code to type."""
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        return False
    if isinstance(body[0].value, ast.Name):
        return True
    try:
        return isinstance(body[0].value, ast.Attribute) and importlib.util.find_spec(snippet)
    except ModuleNotFoundError:
        return False


def _parse(source: str) -> ast.AST | None:
    lines = [re.sub(r"^(\s*)[%!].*", r"\1pass", ln) for ln in source.splitlines()]  # magics
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def defined_names(tree: ast.AST) -> set[str]:
    """Names a piece of code binds anywhere: assignments, loops, defs, imports, arguments."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def tlutils_modules(tree: ast.AST) -> dict[str, str]:
    """name -> module, for `from tlutils(.course) import x` and `import tlutils.x as y`."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tlutils"):
            for a in node.names:
                module = f"{node.module}.{a.name}"
                if importlib.util.find_spec(module) is not None:
                    found[a.asname or a.name] = module
    return found


def snippets(nb) -> list[list[str]]:
    """The snippets of each exercise and solution (a numbered item), item by item: a name one
    snippet defines can be used by the next one in the same item."""
    cells = [c.source for c in nb.cells if c.cell_type == "markdown"]
    start = next(i for i, s in enumerate(cells) if re.search(r"^## Exercises", s, re.M))
    text = "\n".join(cells[start:])
    text = text[re.search(r"^## Exercises", text, re.M).start():]
    items = re.split(r"\n(?=\d+\. )", text)
    return [FENCE.findall(item) + INLINE.findall(FENCE.sub("", item)) for item in items]


def _with_item_names(items: list[list[str]]):
    """(snippet, the names its item's snippets define) for every snippet."""
    for item in items:
        trees = [_parse(snippet) for snippet in item]
        own = set().union(*(defined_names(t) for t in trees if t is not None))
        yield from ((snippet, own) for snippet in item)


def undefined_in_snippets(nb) -> list[str]:
    cells = [_parse(c.source) for c in nb.cells if c.cell_type == "code"]
    assert None not in cells, "every code cell parses"
    tree = ast.Module(body=[node for cell in cells for node in cell.body], type_ignores=[])
    known = defined_names(tree) | set(dir(builtins))
    modules = tlutils_modules(tree)
    problems = []
    for snippet, own in _with_item_names(snippets(nb)):
        s_tree = _parse(snippet)
        if s_tree is None or FILE_NAME.fullmatch(snippet) or _names_a_thing(snippet, s_tree):
            continue  # prose in backticks, a file, a module, a parameter or layer named in text
        label = snippet.strip().splitlines()[0][:60]
        for node in ast.walk(s_tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id not in known | own:
                    problems.append(f"`{label}`: {node.id} is not defined")
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in modules and node.value.id not in own):
                module = importlib.import_module(modules[node.value.id])
                if not hasattr(module, node.attr):
                    problems.append(f"`{label}`: {modules[node.value.id]} has no {node.attr}")
    return sorted(set(problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_snippets_use_names_that_exist(path):
    problems = undefined_in_snippets(nbformat.read(path, as_version=4))
    assert not problems, "\n".join(problems)


def test_the_snippet_rule_catches_a_missing_name():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from tlutils import stats\nx = 1"),
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n1. Use `x + 1` and `stats.paired_gap(a, b)`.\n\n"
            "```python\nz = x * 2\nprint(z, zt, stats.no_such_helper)\n```\n"
            "Run `-p FT_LR=0.01` on the command line; see `tlutils.stats`, `data.json`, `C`."
        ),
    ])
    assert undefined_in_snippets(nb) == [
        "`stats.paired_gap(a, b)`: a is not defined",
        "`stats.paired_gap(a, b)`: b is not defined",
        "`z = x * 2`: tlutils.stats has no no_such_helper",
        "`z = x * 2`: zt is not defined",
    ]
