"""Execute notebooks headlessly for a profile, with parameter overrides.

    python -m tlutils run notebooks/01_feature_extraction.ipynb --profile smoke -p EPOCHS=3
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

from tlutils.course.report import aggregate, build_dir, headline, repo_root, stated_time

PATH_PARAMETER = re.compile(r"_(DIR|PATH|FILE|IMAGE)$")  # DATA_DIR, NEW_IMAGE: a path


def parse_params(pairs: list[str]) -> dict:
    """["EPOCHS=3", "DATA_DIR=x"] -> {"EPOCHS": 3, "DATA_DIR": "/where/you/typed/x"}: Python
    literals kept, and a relative path (a name ending in _DIR, _PATH, _FILE or _IMAGE) made
    absolute against the folder the command was typed in, not the notebook's."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"Parameters look like NAME=VALUE; got {pair!r}.")
        if not value.strip():  # e.g. -p DATA_DIR=$UNSET_VARIABLE
            raise ValueError(f"-p {key}= has no value (an unset shell variable?): give one, or "
                             f"leave -p {key} out to keep the notebook's default.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
        if PATH_PARAMETER.search(key) and isinstance(params[key], str) and params[key]:
            params[key] = str(Path(params[key]).expanduser().absolute())
    return params


class ParameterError(ValueError):
    """A -p value whose type does not fit the notebook's parameter; shown as one line."""

    def _render_traceback_(self) -> list[str]:  # IPython shows the sentence, not a traceback
        return [f"{type(self).__name__}: {self}"]


def checked(name: str, default, value):
    """`value` for a parameter whose notebook default is `default`, or ParameterError when
    its type does not fit. The injected cell calls it in the kernel, right after the
    parameters cell, so a mistyped -p stops the run before any training."""
    if default is None or value is None:  # None means "not set": any value may replace it
        return value
    fits = {bool: (bool,), int: (int,), float: (int, float), str: (str,),
            list: (list, tuple), tuple: (list, tuple)}.get(type(default), (type(default),))
    if isinstance(value, fits) and (isinstance(value, bool) == isinstance(default, bool)):
        return float(value) if isinstance(default, float) else value
    raise ParameterError(f"{name}={value!r} is of type {type(value).__name__}, but this "
                         f"notebook's {name} is of type {type(default).__name__} (default "
                         f"{default!r}).")


def parameter_names(nb) -> set[str]:
    """The names the notebook's cell tagged `parameters` assigns."""
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        raise ValueError("The notebook has no cell tagged 'parameters'.")
    names = set()
    for node in ast.walk(ast.parse(tagged[0].source)):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            names |= {t.id for t in ast.walk(target) if isinstance(t, ast.Name)}
    return names


def inject_parameters(nb, params: dict) -> None:
    """Insert a cell assigning `params` right after the cell tagged `parameters`; refuse a
    name that cell does not define (a typo would otherwise be silently ignored)."""
    import nbformat

    known = parameter_names(nb)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"Unknown parameter {', '.join(unknown)}: this notebook's parameters "
                         f"are {', '.join(sorted(known))}.")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    source = "# Parameters injected by tlutils.course.run; checked() refuses a wrong type\n"
    source += "from tlutils.course.run import checked as _checked\n\n"
    source += "".join(f"{k} = _checked({k!r}, {k}, {v!r})\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, cell)


# Start-up and runtime log lines of compiled libraries that say nothing to a learner: CUDA
# probing on a machine without a GPU, oneDNN and CPU-feature notes, TFLite's delegate.
LOG_NOISE = re.compile(r"absl::InitializeLog|cudart_stub|cuda_platform|cpu_feature_guard|"
                       r"oneDNN custom operations|tf\.function retracing|XNNPACK delegate")


def log_noise(outputs: list) -> list[str]:
    """The lines of a cell's outputs (nbformat output dicts) that LOG_NOISE matches."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return [line for line in text.splitlines() if LOG_NOISE.search(line)]


def kernel_environment() -> dict[str, str]:
    """Environment variables for a notebook kernel that keeps compiled code's stderr out of
    the notebook (ipykernel's capture_fd_output=False): TensorFlow's C++ start-up lines go
    to the kernel's own stderr, which execute() keeps in a log file. Python warnings are
    unaffected and still show in the notebook. A relative KERAS_HOME or TLU_BUILD_DIR is
    made absolute, since the kernel starts in notebooks/.
    """
    profile_dir = build_dir("ipython") / "profile_default"
    profile_dir.mkdir(parents=True, exist_ok=True)
    config = profile_dir / "ipython_kernel_config.py"
    text = "c.IPKernelApp.capture_fd_output = False\n"
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    env = {"IPYTHONDIR": str(profile_dir.parent)}
    for name in ("KERAS_HOME", "TLU_BUILD_DIR"):  # the kernel runs in notebooks/: a relative
        if os.environ.get(name):  # folder means the one where the command was typed
            env[name] = str(Path(os.environ[name]).expanduser().absolute())
    return env


@contextlib.contextmanager
def native_stderr_to(log: Path):
    """Send whatever is written to file descriptor 2 (TensorFlow's C++ log lines, and Python's
    stderr too) to `log` until the block ends; a Python exception still shows afterwards."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "a") as f:
            os.dup2(f.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def quiet_start() -> Path:
    """Import Keras and look for a GPU with their start-up lines (absl, oneDNN, CUDA probing)
    in build/logs/runner.stderr.txt instead of the terminal; returns that file."""
    log = build_dir("logs") / "runner.stderr.txt"
    with native_stderr_to(log):
        import keras  # noqa: F401  (the import is what prints)

        from tlutils.course import profiles

        profiles.gpu_name()
    return log


def stated_seconds(notebook: str, profile: str) -> float | None:
    """report.stated_time in seconds, for the progress line."""
    value = stated_time(notebook, profile)
    return None if value is None else float(value) * (1 if profile == "smoke" else 60)


class Progress:
    """While a notebook runs: which cell of how many, the time so far and the stated time.

    On a terminal one line is rewritten in place; elsewhere (a log file, CI) a line is
    printed at most every `every` seconds, so the output stays short.
    """

    def __init__(self, name: str, n_cells: int, stated: float | None, stream=None,
                 every: float = 30.0):
        self.name, self.n_cells, self.stated, self.every = name, n_cells, stated, every
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = self.last = time.perf_counter()

    def line(self, index: int) -> str:
        elapsed = time.perf_counter() - self.start
        text = f"  {self.name}: cell {index + 1} of {self.n_cells}, {elapsed:.0f} s so far"
        if self.stated:
            left = self.stated - elapsed
            text += (f", about {left:.0f} s to go" if left > 0
                     else f", past the stated {self.stated:.0f} s")
        return text

    def cell_started(self, cell=None, cell_index: int = 0, **_) -> None:
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + self.line(cell_index).ljust(78)[:100])
        elif now - self.last >= self.every:
            self.stream.write(self.line(cell_index) + "\n")
        else:
            return
        self.last = now
        self.stream.flush()

    def done(self) -> None:
        if self.tty:  # clear the progress line before the notebook's result line
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


def execute(notebook: str | Path, profile: str, params: dict | None = None,
            timeout: int = 1800, progress: Progress | None = None) -> tuple[Path, str | None]:
    """Run one notebook in a fresh kernel; return (executed copy, error or None).

    The profile reaches the kernel as $TLU_PROFILE; `params` override the parameters cell.
    What compiled code writes to stderr goes to build/<profile>/logs/<notebook>.stderr.txt.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    notebook = Path(notebook).resolve()
    nb = nbformat.read(notebook, as_version=4)
    if params:
        inject_parameters(nb, params)
    out = build_dir(profile) / "notebooks" / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    log = build_dir(profile) / "logs" / f"{notebook.stem}.stderr.txt"  # compiled code's messages
    log.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    running = {}  # the cell the kernel is running, for a kernel that dies in it

    def cell_started(cell, cell_index):
        running.update(index=cell_index, line=(cell.source.strip().splitlines() or [""])[0])
        if progress:
            progress.cell_started(cell=cell, cell_index=cell_index)

    client.on_cell_start = cell_started
    error = None
    env = {**os.environ, **kernel_environment(), "TLU_PROFILE": profile}  # the kernel's only
    try:
        with open(log, "w") as stderr:
            client.execute(env=env, stderr=stderr)
    except CellExecutionError as err:
        error = ANSI.sub("", str(err).strip().splitlines()[-1])
    except DeadKernelError:
        where = (f" in cell {running['index'] + 1} ({running['line'][:60]!r})" if running else "")
        error = (f"the kernel died{where} of {notebook.name}: compiled code crashed (a damaged "
                 f"model or data file, say) or the system ran out of memory; its last messages "
                 f"are in {log}")
    finally:
        nbformat.write(nb, out)
        if progress:
            progress.done()
    return out, error


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colour codes in tracebacks


def notebook_problem(path: Path) -> str | None:
    """Why `path` cannot be run as a notebook, in one sentence, or None."""
    if not path.exists():
        return f"{path} does not exist."
    if path.is_dir():
        return f"{path} is a folder; name the notebooks in it (or none, to run them all)."
    if path.suffix != ".ipynb":
        return f"{path} is not a notebook (.ipynb)."
    return None


def run_all(notebooks: list[Path], profile: str, params: dict) -> int:
    """Execute notebooks in order, one progress line each, then write the report and the book.

    Each notebook gets the parameters its parameters cell defines; a name that no notebook
    in the run defines is refused before anything runs.
    """
    import nbformat

    problems = [p for p in map(notebook_problem, map(Path, notebooks)) if p]
    if problems:
        print("\n".join(f"FAIL {p}" for p in problems), flush=True)
        return len(problems)
    names = {nb: parameter_names(nbformat.read(nb, as_version=4)) for nb in notebooks}
    unknown = sorted(set(params) - set().union(*names.values()))
    if unknown:
        valid = ", ".join(sorted(set().union(*names.values())))
        print(f"FAIL unknown parameter {', '.join(unknown)}: the parameters are {valid}.",
              flush=True)
        return 1
    failed = {}
    for nb in notebooks:
        metrics_file = build_dir(profile) / "metrics" / f"{nb.stem}.json"
        metrics_file.unlink(missing_ok=True)  # never report a previous run's numbers
        start = time.perf_counter()
        n_cells = len(nbformat.read(nb, as_version=4).cells)
        progress = Progress(nb.stem, n_cells, stated_seconds(nb.stem, profile))
        try:
            out, error = execute(nb, profile, {k: v for k, v in params.items() if k in names[nb]},
                                 progress=progress)
        except KeyboardInterrupt:
            failed[nb.stem] = "interrupted (Ctrl-C)"
            print(f"\nInterrupted during {nb.stem}; the report lists what ran.", flush=True)
            break
        wall = time.perf_counter() - start
        if error:
            failed[nb.stem] = error
            print(f"FAIL {nb.stem:28s} {wall:7.1f} s  {error}  (see {out})", flush=True)
        else:
            recorded = metrics_file.exists()
            line = headline(json.loads(metrics_file.read_text())["metrics"]) if recorded else ""
            print(f"ok   {nb.stem:28s} {wall:7.1f} s  {line}", flush=True)
    course = all_notebooks()[0].parent if all_notebooks() else None
    # a run of the course's own notebooks leaves out the metrics of notebooks it no longer has
    sources = course if course and all(Path(nb).parent.resolve() == course.resolve()
                                       for nb in notebooks) else None
    try:
        md, _ = aggregate(profile, failed, sources)
    except FileNotFoundError as err:  # no notebook recorded metrics: no report to write
        print(f"\nNo report: {err}", flush=True)
    else:
        print(f"\nReport: {md}\n")
        print(md.read_text(encoding="utf-8"))
    from tlutils.course.book import book_line

    print(book_line(profile), flush=True)  # last: where the book is, or why there is none
    return len(failed)


def all_notebooks() -> list[Path]:
    root = repo_root() or Path.cwd()
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
