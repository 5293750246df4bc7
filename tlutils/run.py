"""Execute notebooks headlessly for a profile, with parameter overrides.

    python -m tlutils run notebooks/01_feature_extraction.ipynb --profile smoke -p EPOCHS=3
"""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

from tlutils.report import aggregate, build_dir, headline, repo_root


def parse_params(pairs: list[str]) -> dict:
    """["EPOCHS=3", "DATA_DIR=/x"] -> {"EPOCHS": 3, "DATA_DIR": "/x"} (Python literals kept)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"Parameters look like NAME=VALUE; got {pair!r}.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def inject_parameters(nb, params: dict) -> None:
    """Insert a cell assigning `params` right after the cell tagged `parameters`."""
    import nbformat

    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        raise ValueError("The notebook has no cell tagged 'parameters'.")
    source = "# Parameters injected by tlutils.run\n"
    source += "".join(f"{k} = {v!r}\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, cell)


def execute(notebook: str | Path, profile: str, params: dict | None = None,
            timeout: int = 1800) -> tuple[Path, str | None]:
    """Run one notebook in a fresh kernel; return (executed copy, error or None).

    The profile reaches the kernel as $TLU_PROFILE; `params` override the parameters cell.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = Path(notebook).resolve()
    nb = nbformat.read(notebook, as_version=4)
    if params:
        inject_parameters(nb, params)
    out = build_dir(profile) / "notebooks" / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    error = None
    try:
        client.execute(env={**os.environ, "TLU_PROFILE": profile})  # the kernel's only
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1]
    finally:
        nbformat.write(nb, out)
    return out, error


def run_all(notebooks: list[Path], profile: str, params: dict) -> int:
    """Execute notebooks in order, one progress line each, then write the report."""
    failures = 0
    for nb in notebooks:
        metrics_file = build_dir(profile) / "metrics" / f"{nb.stem}.json"
        metrics_file.unlink(missing_ok=True)  # never report a previous run's numbers
        start = time.perf_counter()
        out, error = execute(nb, profile, params)
        wall = time.perf_counter() - start
        if error:
            failures += 1
            print(f"FAIL {nb.stem:28s} {wall:7.1f} s  {error}  (see {out})", flush=True)
        else:
            recorded = metrics_file.exists()
            line = headline(json.loads(metrics_file.read_text())["metrics"]) if recorded else ""
            print(f"ok   {nb.stem:28s} {wall:7.1f} s  {line}", flush=True)
    try:
        md, _ = aggregate(profile)
    except FileNotFoundError as err:  # no notebook recorded metrics: no report to write
        print(f"\nNo report: {err}", flush=True)
        return failures
    print(f"\nReport: {md}\n")
    print(md.read_text())
    return failures


def all_notebooks() -> list[Path]:
    root = repo_root() or Path.cwd()
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
