"""Run report: each notebook records its metrics and wall time; the runner collects them.

Explained in 00_start_here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def repo_root(start: Path | None = None) -> Path | None:
    """The course checkout containing `start` (default: the working directory), if any."""
    for folder in [p := (start or Path.cwd()).resolve(), *p.parents]:
        if (folder / "tlutils" / "__init__.py").exists() and (folder / "notebooks").is_dir():
            return folder
    return None


def build_dir(profile: str) -> Path:
    """build/<profile>/ in the checkout ($TLU_BUILD_DIR/<profile> if set)."""
    base = os.environ.get("TLU_BUILD_DIR")
    root = Path(base).expanduser().absolute() if base else (repo_root() or Path.cwd()) / "build"
    return root / profile


def shown(path: str | Path) -> str:
    """A path as a learner reads it: relative to the course checkout when inside it
    (build/smoke/export), else unchanged (03_full_fine_tuning, 10_your_own_data)."""
    path, root = Path(path).absolute(), repo_root()
    return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)


def record(notebook: str, profile: str, metrics: dict, wall_s: float) -> Path:
    """Write build/<profile>/metrics/<notebook>.json and return its path.

    Keys: notebook, profile, backend, device, wall_s, metrics. Put the headline metric
    first in `metrics`: the runner prints it.
    """
    import keras

    from tlutils.course.profiles import device

    payload = {
        "notebook": notebook,
        "profile": profile,
        "backend": keras.backend.backend(),
        "device": device(),
        "wall_s": round(wall_s, 1),
        "metrics": metrics,
    }
    path = build_dir(profile) / "metrics" / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps(payload, indent=1, default=_plain) + "\n")
    return path


def stated_time(notebook: str, profile: str) -> float | None:
    """A notebook's time in data/notebook_times.json: seconds for smoke, minutes for cpu and
    gpu (their budgets); None where none is stated."""
    from tlutils.course.assets import project_data

    times = json.loads(project_data("notebook_times.json").read_text())["notebooks"]
    key = {"smoke": "smoke_s", "cpu": "cpu_min", "gpu": "gpu_min"}.get(profile)
    return times.get(notebook, {}).get(key)


def finish(notebook: str, profile: str, metrics: dict, wall_s: float) -> str:
    """record() the run, and say what a learner needs: this run's time next to the Overview's
    figure, and the headline metric (00_start_here)."""
    record(notebook, profile, metrics, wall_s)
    value = stated_time(notebook, profile)
    what = ("s, measured on the course's 2-core CI machine" if profile == "smoke"
            else "minutes, the budget the profile is sized for")
    took = f"{wall_s:.0f} s" if wall_s < 120 else f"{wall_s / 60:.1f} minutes"
    line = f"This run took {took} in the {profile} profile"
    if value is not None:
        line += f" (the Overview says about {value} {what}; machines differ by 1.5x or more)"
    return f"{line}. Headline: {headline(metrics)}. Saved for the run report."


def _plain(value):
    """numpy scalars and arrays to plain JSON values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def headline(metrics: dict) -> str:
    """`name=value` of the first scalar metric, for one-line progress output."""
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            return f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}"
    return ""


def _markdown_table(rows: list[dict]) -> list[str]:
    cols = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
    return lines


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def aggregate(profile: str, failed: dict[str, str] | None = None,
              sources: Path | None = None) -> tuple[Path, Path]:
    """Collect build/<profile>/metrics/*.json into report.md and report.json; `failed` maps
    the notebooks that failed in this run to their error, listed first as FAILED. Given the
    course's notebooks/ as `sources`, metrics of notebooks it no longer has (renamed or split
    since they ran) are left out and named at the end; their files stay where they are.

    Raises FileNotFoundError, naming the profiles that do have metrics, when none are recorded.
    """
    out = build_dir(profile)
    runs = [json.loads(p.read_text()) for p in sorted((out / "metrics").glob("*.json"))]
    gone = [r["notebook"] for r in runs
            if sources and not (sources / f"{r['notebook']}.ipynb").exists()]
    runs = [r for r in runs if r["notebook"] not in gone]
    if not runs:
        others = sorted({p.parent.parent.name for p in out.parent.glob("*/metrics/*.json")})
        hint = (f"; metrics exist for {', '.join(others)}: pass --profile {others[0]}" if others
                else f": run `python3 -m tlutils run --profile {profile}` first")
        raise FileNotFoundError(
            f"No metrics recorded for profile {profile!r} in {out / 'metrics'}{hint}.")
    failed = failed or {}
    _write_text(out / "report.json", json.dumps(runs, indent=1) + "\n")
    lines = [f"# Run report: profile `{profile}`", ""]
    lines += _markdown_table(
        [{"notebook": name, "wall_s": "", "backend": "", "device": "",
          "headline": f"FAILED: {error}"} for name, error in failed.items()]
        + [{"notebook": r["notebook"], "wall_s": r["wall_s"], "backend": r["backend"],
            "device": r["device"], "headline": headline(r["metrics"])}
           for r in runs if r["notebook"] not in failed])
    for r in runs:
        lines += ["", f"## {r['notebook']}", ""]
        scalars = {k: v for k, v in r["metrics"].items() if not isinstance(v, (list, dict))}
        if scalars:
            lines += _markdown_table([{"metric": k, "value": v} for k, v in scalars.items()])
        for key, value in r["metrics"].items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                lines += ["", f"**{key}**", ""] + _markdown_table(value)
            elif isinstance(value, dict):
                lines += ["", f"**{key}**", ""]
                lines += _markdown_table([{"key": k, "value": v} for k, v in value.items()])
    if gone:
        lines += ["", f"Left out: {', '.join(gone)}, metrics of notebooks the course no longer "
                  "has (their files stay in metrics/)."]
    _write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md", out / "report.json"


def _write_text(path: Path, text: str) -> None:
    """Write a result file whole or not at all (a full disk leaves the last one intact)."""
    from tlutils.course.assets import save_atomic

    save_atomic(path, lambda f: f.write(text.encode("utf-8")))
