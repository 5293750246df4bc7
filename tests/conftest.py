"""Test set-up: a writable offline cache filled from ../shared/data, the smoke profile.

Runs before collection, so nbval's notebook kernels inherit the environment.
"""

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TLU_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config):
    os.environ["TLU_TEST_START"] = str(time.time())  # which metrics files this session wrote
    os.environ.setdefault("TLU_PROFILE", "smoke")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the notebooks' kernels draw their figures inline, as JupyterLab does, so the executed
    # copies the book is built from hold the plots (no test draws in this process)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("KERAS_HOME", str(ROOT / "build" / "test-cache"))
    from tlutils.course.run import kernel_environment

    os.environ.update(kernel_environment())  # nbval's kernels: no C++ log lines in the notebooks
    config.pluginmanager.register(NotebookCells(), "notebook-cells")
    if SHARED.is_dir():
        from tlutils.course.offline import build_offline_cache

        build_offline_cache(SHARED)


@pytest.fixture(autouse=True)
def _keras_home_unchanged():
    """A test that points KERAS_HOME elsewhere without monkeypatch would send every later
    test, and the notebooks' kernels, to its temporary cache."""
    before = os.environ.get("KERAS_HOME")
    yield
    assert os.environ.get("KERAS_HOME") == before, "use monkeypatch.setenv for KERAS_HOME"


def pytest_collection_modifyitems(config, items):
    """Tests marked after_notebooks run last, once nbval has executed every notebook."""
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)


class NotebookCells:
    """Hooks for nbval's notebook cells. A conftest's hooks reach only the tests in its own
    folder, and the notebooks are not in tests/, so pytest_configure registers this plugin for
    the whole session."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Fail a notebook cell whose output carries library log noise (run.LOG_NOISE), and
        run each notebook's rerun pass (below)."""
        outcome = yield
        report = outcome.get_result()
        outputs = getattr(item, "test_outputs", None)
        if call.when == "call" and report.passed and outputs:
            from tlutils.course.run import log_noise

            noisy = log_noise(outputs)  # e.g. TensorFlow's start-up lines
            if noisy:
                report.outcome = "failed"
                report.longrepr = f"Log noise in the output, to silence at its source: {noisy[0]}"
        _save_executed(item, call)
        _rerun_pass(item, call, report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        """Before nbval runs a notebook's cell: keep its display updates (below)."""
        if hasattr(item, "cell") and hasattr(item.parent, "get_kernel_message"):
            _keep_display_updates(item.parent)


# nbval executes the notebooks in CI but saves no executed copy; the book (tlutils.course.book,
# tests/test_book.py) is built from them. So after a notebook's last cell, its cells and the
# outputs nbval recorded are written to build/<profile>/notebooks/<name>.ipynb, as `tlutils run`
# writes them.


def _keep_display_updates(notebook) -> None:
    """nbval records a cell's displays but drops their updates (update_display_data, e.g. the
    progress line of fitting.progress): each display's data becomes one object, which nbval
    stores as it is and its updates then change in place."""
    if getattr(notebook, "_tlu_displays", None) is not None:
        return
    import nbformat

    shown = notebook._tlu_displays = {}
    get = notebook.get_kernel_message

    def get_kernel_message(*args, **kwargs):
        msg = get(*args, **kwargs)
        content = msg.get("content", {})
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and "data" in content:
            data = nbformat.from_dict(content["data"])
            if msg["msg_type"] == "update_display_data":
                for node in shown.get(display_id, []):
                    node.clear()
                    node.update(data)
            else:
                content["data"] = data
                shown.setdefault(display_id, []).append(data)
        return msg

    notebook.get_kernel_message = get_kernel_message


def _save_executed(item, call) -> None:
    """After nbval's last cell of a notebook, write the notebook with the outputs of each cell
    nbval ran (an error included) to build/<profile>/notebooks/, whole or not at all."""
    if call.when != "call" or not hasattr(item, "cell") or not hasattr(item.parent, "nb") \
            or not _is_last_cell(item):
        return
    import copy

    import nbformat

    from tlutils.course import report
    from tlutils.course.assets import save_atomic

    nb = copy.deepcopy(item.parent.nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    count = 0
    for cell_item in (i for i in item.session.items if i.parent is item.parent):
        cell, outputs = code[cell_item.cell_num], cell_item.test_outputs
        cell.outputs = [nbformat.from_dict(copy.deepcopy(dict(o))) for o in outputs or []]
        count += outputs is not None
        cell.execution_count = count if outputs is not None else None
    name = Path(str(item.parent.fspath)).name
    path = report.build_dir(os.environ["TLU_PROFILE"]) / "notebooks" / name
    save_atomic(path, lambda f: f.write(nbformat.writes(nb).encode("utf-8")))


# A learner reruns cells: after finishing a notebook, they go back to a cell and run it again.
# So after nbval has run a notebook's last cell, every code cell that took less than
# RERUN_BELOW_S the first time runs again in the same kernel, from the last to the first: each
# one sees the state that the cells after it leave (in order, each would first get back the
# state of the cells before it, which hides exactly these bugs). None may fail, and no file the
# first pass left under build/ may be gone afterwards.
RERUN_BELOW_S = 3.0
_CELL_SECONDS: dict[str, list[tuple[object, float]]] = {}


def _is_last_cell(item) -> bool:
    items = item.session.items
    i = items.index(item)
    return i + 1 == len(items) or items[i + 1].parent is not item.parent


def _run_in_kernel(kernel, source: str, timeout: float = 300) -> str | None:
    """Runs source in nbval's kernel; the error it raised, in one line, or None."""
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    error = None
    while True:
        msg = kernel.get_message(stream="iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    kernel.await_reply(msg_id, timeout)
    return error


def rerun_quick_cells(notebook_item, cells: list[tuple[object, float]]) -> str | None:
    """The rerun pass described above RERUN_BELOW_S; what went wrong, or None."""
    from tlutils.course import report
    from tlutils.course.assets import files_under

    build = report.build_dir(os.environ["TLU_PROFILE"])
    before = set(files_under(build))
    for cell, seconds in reversed(cells):
        if seconds >= RERUN_BELOW_S:
            continue
        error = _run_in_kernel(notebook_item.kernel, cell.cell.source)
        if error:
            return (f"Rerunning {notebook_item.name}'s quick cells, last to first, in the same "
                    f"kernel: the cell {cell.cell.source.splitlines()[0][:60]!r} raised {error}")
    lost = sorted(str(p.relative_to(build)) for p in before - set(files_under(build)))
    if lost:
        return f"Rerunning {notebook_item.name}'s quick cells lost {len(lost)} file(s): {lost[:5]}"
    return None


def _rerun_pass(item, call, report) -> None:
    """Times each nbval cell; after a notebook's last cell, runs the rerun pass and fails that
    cell's report when it goes wrong."""
    if call.when != "call" or not hasattr(item, "cell") or not hasattr(item.parent, "kernel"):
        return
    cells = _CELL_SECONDS.setdefault(str(item.parent.fspath), [])
    if item.cell.cell_type == "code":
        cells.append((item, call.duration))
    if report.passed and _is_last_cell(item):
        problem = rerun_quick_cells(item.parent, cells)
        if problem:
            report.outcome = "failed"
            report.longrepr = problem
